//! Data parallelism for the core: on every core natively (rayon), in order on wasm32, where a
//! page has no threads. Results do not depend on the split: each chunk is computed alone.

/// Calls `f(chunk_index, chunk)` for every `chunk_len`-long chunk of `out` (the last may be
/// shorter).
pub(crate) fn for_each_chunk_mut<T, F>(out: &mut [T], chunk_len: usize, f: F)
where
    T: Send,
    F: Fn(usize, &mut [T]) + Sync + Send,
{
    let chunk_len = chunk_len.max(1);
    #[cfg(not(target_arch = "wasm32"))]
    if rayon::current_num_threads() > 1 {
        use rayon::prelude::*;
        out.par_chunks_mut(chunk_len)
            .enumerate()
            .for_each(|(i, chunk)| f(i, chunk));
        return;
    }
    // One thread (wasm32, or a pool of one): in order on this thread, without waking a
    // worker per call (that profiled at a sixth of single-thread generation time).
    {
        out.chunks_mut(chunk_len)
            .enumerate()
            .for_each(|(i, chunk)| f(i, chunk));
    }
}

/// `f(chunk_index, chunk)` for every `chunk_len`-long chunk of `out`, results in chunk order.
pub(crate) fn map_chunks_mut<T, R, F>(out: &mut [T], chunk_len: usize, f: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(usize, &mut [T]) -> R + Sync + Send,
{
    let chunk_len = chunk_len.max(1);
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(chunk_len)
            .enumerate()
            .map(|(i, chunk)| f(i, chunk))
            .collect()
    }
    #[cfg(target_arch = "wasm32")]
    {
        out.chunks_mut(chunk_len)
            .enumerate()
            .map(|(i, chunk)| f(i, chunk))
            .collect()
    }
}

/// Calls `f` on every owned item (e.g. disjoint `&mut` chunks of several outputs), on all
/// cores natively, in order on wasm32 or with a pool of one.
pub(crate) fn for_each_owned<T, F>(items: Vec<T>, f: F)
where
    T: Send,
    F: Fn(T) + Sync + Send,
{
    #[cfg(not(target_arch = "wasm32"))]
    if rayon::current_num_threads() > 1 {
        use rayon::prelude::*;
        items.into_par_iter().for_each(f);
        return;
    }
    items.into_iter().for_each(f);
}

/// Calls `f` on every item, on all cores natively, in order on wasm32.
pub(crate) fn for_each<T, F>(items: &[T], f: F)
where
    T: Sync,
    F: Fn(&T) + Sync + Send,
{
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        items.par_iter().for_each(f);
    }
    #[cfg(target_arch = "wasm32")]
    items.iter().for_each(f);
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_chunk_once_with_its_index() {
        let mut v = vec![0usize; 10];
        super::for_each_chunk_mut(&mut v, 3, |i, c| c.iter_mut().for_each(|x| *x = i + 1));
        assert_eq!(v, [1, 1, 1, 2, 2, 2, 3, 3, 3, 4]);
        let sums = super::map_chunks_mut(&mut v, 4, |i, c| (i, c.iter().sum::<usize>()));
        assert_eq!(sums, [(0, 5), (1, 10), (2, 7)]);
    }
}
