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

/// A pool of threads of its own, for work whose caller chose the thread count (the encoders'
/// `threads`), whatever the global pool's size: natively a rayon pool (none for one thread),
/// on wasm32 always one thread, in order. Cloning shares the pool. Only the encoders use it, so
/// it exists where they do (the core-only wasm module leaves it out).
#[cfg(feature = "models")]
#[derive(Clone, Debug, Default)]
pub(crate) struct Pool {
    #[cfg(not(target_arch = "wasm32"))]
    pool: Option<std::sync::Arc<rayon::ThreadPool>>,
}

#[cfg(feature = "models")]
impl Pool {
    /// A pool of `threads` threads; 0 means one per core (as onnxruntime's 0 does). Native
    /// only (wasm32 has no threads: its pool is the default, one). Err: the operating system
    /// refused the threads.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn new(threads: usize) -> Result<Pool, String> {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads
        };
        if threads == 1 {
            return Ok(Pool { pool: None });
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("latentlab-encode-{i}"))
            .build()
            .map(|pool| Pool {
                pool: Some(std::sync::Arc::new(pool)),
            })
            .map_err(|e| format!("cannot start {threads} threads: {e}"))
    }

    pub(crate) fn threads(&self) -> usize {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(pool) = &self.pool {
            return pool.current_num_threads();
        }
        1
    }

    /// The rayon pool, natively, when there is more than one thread.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn rayon(&self) -> Option<&std::sync::Arc<rayon::ThreadPool>> {
        self.pool.as_ref()
    }

    /// `f(index, item)` for every item, spread over the pool's threads; results in item order.
    pub(crate) fn map<T, R, F>(&self, items: &[T], f: F) -> Vec<R>
    where
        T: Sync,
        R: Send,
        F: Fn(usize, &T) -> R + Sync + Send,
    {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(pool) = &self.pool {
            use rayon::prelude::*;
            return pool.install(|| {
                items
                    .par_iter()
                    .enumerate()
                    .map(|(i, item)| f(i, item))
                    .collect()
            });
        }
        items
            .iter()
            .enumerate()
            .map(|(i, item)| f(i, item))
            .collect()
    }
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

    #[cfg(all(feature = "models", not(target_arch = "wasm32")))]
    #[test]
    fn a_pool_maps_in_order_on_its_own_threads() {
        let items: Vec<usize> = (0..100).collect();
        for threads in [1, 3] {
            let pool = super::Pool::new(threads).unwrap();
            assert_eq!(pool.threads(), threads);
            let got = pool.map(&items, |i, x| (i, x * 2));
            assert_eq!(got, items.iter().map(|&x| (x, x * 2)).collect::<Vec<_>>());
        }
        assert!(super::Pool::new(0).unwrap().threads() >= 1);
    }
}
