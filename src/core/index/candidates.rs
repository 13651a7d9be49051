//! Finishing a search from another engine's candidates. An engine that scores every item
//! against the queries in f32 but in its own summation order (the GPU: `src/gpu/gallery.rs`)
//! keeps each query's best few; here they are scored again with the CPU search's own
//! arithmetic and ranked as it ranks them, so the answer is `search_batch`'s: the same hits,
//! the same f32 scores, the same order of ties, the same threshold.
//!
//! **Why the candidates suffice.** Each engine's f32 inner product of unit vectors is within
//! δ = γ_{d+2}·‖q‖·max‖x‖ of the exact one in any summation order, FMA or not (see
//! [`f32_dot_error_factor`]), plus a term for subnormals that GPUs may flush to zero; so the
//! two engines' scores of an item differ by at most 2δ. Let τ be the k-th best of a query's
//! candidate scores: k items score at least τ − 2δ on the CPU, so each of the CPU's top k
//! scores at least τ − 2δ there and at least θ = τ − 4δ on the other engine. The list says
//! that no item left out of it scores above its `floor` there; when the floor is below θ,
//! every top-k item is a candidate scoring at least θ, and ranking those by the CPU's scores
//! gives the CPU's top k. Otherwise (a crowd of near-ties, or a list that does not add up)
//! the query is scanned again on the CPU: slower, never wrong.
//!
//! Only f32 storage without a filter is finished here ([`CpuOnly`] says why not otherwise):
//! f16 and int8 would need their own candidate arithmetic, and a filter decides which items
//! count only after scoring.

use super::{best_first, unit, EmbeddingIndex, Hit, IndexError, SearchOptions, Storage};
use crate::core::align::{f32_dot_error_factor, row_dot};
use crate::core::par;

/// Why a search is not finished from candidates, so the caller runs the CPU search
/// ([`EmbeddingIndex::search_batch`]) instead. Never a fault of the input: that is an
/// [`IndexError`], which the CPU search would report in the same words.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CpuOnly {
    #[error("{0} storage is searched on the CPU only: candidates are scored from f32 vectors")]
    Storage(Storage),
    #[error(
        "a filtered search runs on the CPU only: the filter decides what counts after scoring"
    )]
    Filter,
    #[error("k = {k} is more than the GPU search takes (k <= {max}); use the CPU search for more")]
    K { k: usize, max: usize },
    #[error(
        "the index has changed (revision {current}) since its vectors were copied (revision \
         {copied}): copy them again, or search on the CPU"
    )]
    Stale { copied: u64, current: u64 },
}

/// Bad input (in the CPU search's words), a search to run on the CPU instead, or candidate
/// lists that do not match the queries (a fault of the caller's code, not of the input).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CandidateError {
    #[error(transparent)]
    Input(#[from] IndexError),
    #[error(transparent)]
    CpuOnly(#[from] CpuOnly),
    #[error("{queries} queries but {lists} candidate lists: give one list per query")]
    Lists { queries: usize, lists: usize },
}

/// One query's candidates from the other engine: items (`rows`) and that engine's scores of
/// them, in any order, each item at most once; no item left out scores above `floor` there
/// (−∞ when none was left out).
#[derive(Clone, Debug, PartialEq)]
pub struct CandidateList {
    pub scores: Vec<f32>,
    pub rows: Vec<u32>,
    pub floor: f32,
}

/// What a candidate search needs before any scan.
#[derive(Clone, Debug, PartialEq)]
pub enum Prepared {
    /// The answer is known without a scan (no queries, or an index without items or
    /// dimension): `search_batch`'s, as it is.
    Answered(Vec<Vec<Hit>>),
    /// The queries at unit length, exactly as the CPU search scales them (row-major): what
    /// the other engine scores, and what [`CandidateRanker::finish`] takes back.
    Scan(Vec<f32>),
}

/// A finished candidate search: `search_batch`'s hits, and how many queries had to be
/// scanned again on the CPU because their candidates might have missed a top-k item.
#[derive(Clone, Debug, PartialEq)]
pub struct Finished {
    pub hits: Vec<Vec<Hit>>,
    pub rescanned: usize,
}

/// Finishes searches of one revision of an index (f32 storage) from candidates. Built once
/// per copy of the vectors (it measures their longest norm, which the error bound needs);
/// it refuses an index changed since ([`CpuOnly::Stale`]).
#[derive(Clone, Debug, PartialEq)]
pub struct CandidateRanker {
    revision: u64,
    rows: usize,
    dim: usize,
    max_norm: f64,
    gamma: f64,
}

impl EmbeddingIndex {
    /// A [`CandidateRanker`] for the index as it is now; f32 storage only.
    pub fn candidate_ranker(&self) -> Result<CandidateRanker, CpuOnly> {
        let Some(data) = self.f32_vectors() else {
            return Err(CpuOnly::Storage(self.storage()));
        };
        let dim = self.dim.unwrap_or(0);
        let max_norm = data
            .chunks_exact(dim.max(1))
            .map(|r| row_dot(r, r).sqrt())
            .fold(0.0f64, f64::max);
        Ok(CandidateRanker {
            revision: self.revision(),
            rows: self.len(),
            dim,
            max_norm,
            gamma: f32_dot_error_factor(dim),
        })
    }
}

impl CandidateRanker {
    /// Items in the index this ranker was built for.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Their dimension (0 while the index has none).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The index revision this ranker finishes searches of.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// How many candidates per query the other engine should keep for a top-k search: a
    /// margin over k, so that near-ties rarely force a rescan.
    pub fn keep(&self, k: usize) -> usize {
        k.saturating_mul(2).saturating_add(16).min(self.rows)
    }

    fn check_current(&self, index: &EmbeddingIndex) -> Result<(), CpuOnly> {
        if index.revision() != self.revision {
            return Err(CpuOnly::Stale {
                copied: self.revision,
                current: index.revision(),
            });
        }
        Ok(())
    }

    /// Checks a batch of queries (row-major) as `search_batch` does, refusing with the same
    /// errors, and scales them as it does. `filtered`: whether the caller has a filter.
    pub fn prepare(
        &self,
        index: &EmbeddingIndex,
        queries: &[f32],
        options: SearchOptions,
        filtered: bool,
    ) -> Result<Prepared, CandidateError> {
        self.check_current(index)?;
        if filtered {
            return Err(CpuOnly::Filter.into());
        }
        let Some(dim) = index.dim else {
            return Ok(Prepared::Answered(Vec::new()));
        };
        if !queries.len().is_multiple_of(dim) {
            return Err(IndexError::Ragged {
                what: "the queries".into(),
                len: queries.len(),
                dim,
            }
            .into());
        }
        let mut units = Vec::with_capacity(queries.len());
        for q in queries.chunks(dim) {
            index.checked_options(options)?;
            units.extend(unit(q).ok_or(IndexError::BadQuery)?);
        }
        if index.is_empty() || units.is_empty() {
            return Ok(Prepared::Answered(vec![Vec::new(); queries.len() / dim]));
        }
        Ok(Prepared::Scan(units))
    }

    /// `search_batch`'s answer for the unit queries of [`Prepared::Scan`] (row-major), from
    /// one candidate list per query.
    pub fn finish(
        &self,
        index: &EmbeddingIndex,
        units: &[f32],
        options: SearchOptions,
        lists: &[CandidateList],
    ) -> Result<Finished, CandidateError> {
        self.check_current(index)?;
        let dim = self.dim.max(1);
        if !units.len().is_multiple_of(dim) {
            return Err(IndexError::Ragged {
                what: "the queries".into(),
                len: units.len(),
                dim,
            }
            .into());
        }
        let queries = units.len() / dim;
        if lists.len() != queries {
            return Err(CandidateError::Lists {
                queries,
                lists: lists.len(),
            });
        }
        let rerank = index.checked_options(options)?;
        // Each query's hits and whether it was rescanned.
        type Answer = Result<(Vec<Hit>, bool), IndexError>;
        let mut out: Vec<Option<Answer>> = vec![None; queries];
        par::for_each_chunk_mut(&mut out, 1, |i, slot| {
            let q = &units[i * dim..(i + 1) * dim];
            slot[0] = Some(match self.candidate_rows(q, &lists[i], options.k) {
                Some(rows) => {
                    let mut hits: Vec<Hit> = rows
                        .into_iter()
                        .map(|row| Hit {
                            id: index.ids[row].clone(),
                            row,
                            score: index.vectors.score(row, dim, q),
                        })
                        .collect();
                    best_first(&mut hits, options.k, options.threshold);
                    Ok((hits, false))
                }
                None => index
                    .search_unit(q, dim, options, rerank, None)
                    .map(|hits| (hits, true)),
            });
        });
        let mut finished = Finished {
            hits: Vec::with_capacity(queries),
            rescanned: 0,
        };
        for slot in out {
            let (hits, rescanned) = slot.expect("every query was finished")?;
            finished.hits.push(hits);
            finished.rescanned += usize::from(rescanned);
        }
        Ok(finished)
    }

    /// Half the widest gap between the two engines' scores of one item for query `q` (δ
    /// above, subnormals included): |f32 dot − exact| ≤ γ·‖q‖·‖x‖ while nothing underflows,
    /// and a flushed subnormal (an input, a product or a partial sum) moves a sum by less
    /// than 2⁻¹²⁶ times the largest factor, at most d + 2 times.
    fn delta(&self, q: &[f32]) -> f64 {
        let scale = row_dot(q, q).sqrt() * self.max_norm;
        let flushed = 4.0 * (self.dim as f64 + 2.0) * f64::from(f32::MIN_POSITIVE);
        self.gamma * scale + flushed * scale.max(1.0)
    }

    /// The items of `list` that can be among the CPU's top k for the unit query `q` (see the
    /// module's comment), or None when the list may miss one or does not add up (scores not
    /// finite, items out of range or repeated, a "complete" list without every item).
    fn candidate_rows(&self, q: &[f32], list: &CandidateList, k: usize) -> Option<Vec<usize>> {
        let n = self.rows;
        if list.scores.len() != list.rows.len() || list.floor.is_nan() {
            return None;
        }
        let mut pairs: Vec<(f32, u32)> = list
            .scores
            .iter()
            .copied()
            .zip(list.rows.iter().copied())
            .collect();
        if pairs
            .iter()
            .any(|&(s, j)| !s.is_finite() || j as usize >= n)
        {
            return None;
        }
        // The argument counts k *different* items at or above τ.
        let mut rows: Vec<u32> = list.rows.clone();
        rows.sort_unstable();
        if rows.windows(2).any(|w| w[0] == w[1]) {
            return None;
        }
        let complete = list.floor == f32::NEG_INFINITY;
        if complete && pairs.len() != n {
            return None;
        }
        if pairs.len() < k {
            // Fewer candidates than k can only be every item (an index smaller than k).
            return complete.then(|| rows.iter().map(|&j| j as usize).collect());
        }
        pairs.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0));
        let theta = f64::from(pairs[k - 1].0) - 4.0 * self.delta(q);
        if theta.is_nan() || f64::from(list.floor) >= theta {
            return None;
        }
        Some(
            pairs
                .iter()
                .filter(|p| f64::from(p.0) >= theta)
                .map(|p| p.1 as usize)
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("item{i}")).collect()
    }

    fn index_of(dim: usize, data: &[f32]) -> EmbeddingIndex {
        let mut index = EmbeddingIndex::new("m", None, Storage::F32).unwrap();
        index.add(&names(data.len() / dim), data, vec![]).unwrap();
        index
    }

    fn random_index(n: usize, dim: usize, seed: u64) -> (EmbeddingIndex, ChaCha8Rng) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let data: Vec<f32> = (0..n * dim).map(|_| rng.random::<f32>() - 0.5).collect();
        (index_of(dim, &data), rng)
    }

    fn opts(k: usize) -> SearchOptions {
        SearchOptions {
            k,
            ..Default::default()
        }
    }

    fn scan_units(prepared: Prepared) -> Vec<f32> {
        match prepared {
            Prepared::Scan(units) => units,
            Prepared::Answered(hits) => panic!("answered without a scan: {hits:?}"),
        }
    }

    /// Another engine: each score summed in reverse (a different rounding from the CPU's),
    /// the best `keep` kept, the floor the best score left out (as a heap's minimum bounds it).
    fn other_engine(index: &EmbeddingIndex, units: &[f32], keep: usize) -> Vec<CandidateList> {
        let dim = index.dim().unwrap();
        let data = index.f32_vectors().unwrap();
        units
            .chunks(dim)
            .map(|q| {
                let mut all: Vec<(f32, u32)> = data
                    .chunks(dim)
                    .enumerate()
                    .map(|(j, x)| {
                        let s = x
                            .iter()
                            .zip(q)
                            .rev()
                            .fold(0.0f32, |acc, (a, b)| acc + a * b);
                        (s, j as u32)
                    })
                    .collect();
                all.sort_by(|a, b| b.0.total_cmp(&a.0));
                let floor = all.get(keep).map_or(f32::NEG_INFINITY, |p| p.0);
                all.truncate(keep);
                CandidateList {
                    scores: all.iter().map(|p| p.0).collect(),
                    rows: all.iter().map(|p| p.1).collect(),
                    floor,
                }
            })
            .collect()
    }

    #[test]
    fn candidates_from_another_summation_order_give_search_batchs_answer() {
        for (n, dim) in [(1, 3), (40, 3), (300, 17), (500, 64)] {
            let (index, mut rng) = random_index(n, dim, n as u64);
            let ranker = index.candidate_ranker().unwrap();
            let queries: Vec<f32> = (0..20 * dim).map(|_| rng.random::<f32>() - 0.5).collect();
            for k in [1, 10, 64] {
                for threshold in [None, Some(0.1)] {
                    let o = SearchOptions {
                        k,
                        threshold,
                        rerank: None,
                    };
                    let units = scan_units(ranker.prepare(&index, &queries, o, false).unwrap());
                    let lists = other_engine(&index, &units, ranker.keep(k));
                    let got = ranker.finish(&index, &units, o, &lists).unwrap();
                    let want = index.search_batch(&queries, o, None).unwrap();
                    assert_eq!(got.hits, want, "n {n} dim {dim} k {k} {threshold:?}");
                    assert_eq!(got.rescanned, 0, "n {n} dim {dim} k {k}");
                }
            }
        }
    }

    #[test]
    fn identical_items_tie_by_row_as_on_the_cpu() {
        // four copies of one vector and three of another: every score ties with others
        let data: Vec<f32> = [[1.0, 2.0, 2.0], [0.0, 3.0, 4.0]]
            .iter()
            .cycle()
            .take(7)
            .flatten()
            .copied()
            .collect();
        let index = index_of(3, &data);
        let ranker = index.candidate_ranker().unwrap();
        let queries = [1.0, 2.0, 2.0, 0.0, 3.0, 4.0, 1.0, 1.0, 1.0];
        for k in 1..=7 {
            let units = scan_units(ranker.prepare(&index, &queries, opts(k), false).unwrap());
            let lists = other_engine(&index, &units, ranker.keep(k).min(k + 1));
            let got = ranker.finish(&index, &units, opts(k), &lists).unwrap();
            assert_eq!(
                got.hits,
                index.search_batch(&queries, opts(k), None).unwrap()
            );
        }
    }

    #[test]
    fn a_list_that_misses_a_top_item_is_rescanned() {
        // unit vectors at 0°, 10°, 20°, 30°, 40° from the query's direction
        let deg = |a: f32| [a.to_radians().cos(), a.to_radians().sin()];
        let data: Vec<f32> = [0.0, 10.0, 20.0, 30.0, 40.0]
            .into_iter()
            .flat_map(deg)
            .collect();
        let index = index_of(2, &data);
        let ranker = index.candidate_ranker().unwrap();
        let units = scan_units(ranker.prepare(&index, &[1.0, 0.0], opts(2), false).unwrap());
        let want = index.search_batch(&[1.0, 0.0], opts(2), None).unwrap();
        assert_eq!(want[0][0].row, 0);
        let cos = |a: f32| a.to_radians().cos();
        // the best item (row 0, score 1) left out: truthfully, the floor is its score
        let missing = CandidateList {
            scores: vec![cos(10.0), cos(20.0), cos(30.0)],
            rows: vec![1, 2, 3],
            floor: 1.0,
        };
        let got = ranker
            .finish(&index, &units, opts(2), std::slice::from_ref(&missing))
            .unwrap();
        assert_eq!((got.hits.clone(), got.rescanned), (want.clone(), 1));
        // the same list with the floor below the second candidate decides alone (and here
        // wrongly, because the floor lies: the list's word is what the bound relies on)
        let trusted = CandidateList {
            floor: cos(40.0),
            ..missing.clone()
        };
        let got = ranker.finish(&index, &units, opts(2), &[trusted]).unwrap();
        assert_eq!(got.rescanned, 0);
        assert_eq!(got.hits[0][0].row, 1);
        // a floor within the error bound of the k-th candidate is a possible near-tie
        let close = CandidateList {
            scores: vec![1.0, cos(10.0), cos(20.0)],
            rows: vec![0, 1, 2],
            floor: cos(10.0) - 1e-7,
        };
        let got = ranker.finish(&index, &units, opts(2), &[close]).unwrap();
        assert_eq!((got.hits.clone(), got.rescanned), (want.clone(), 1));
        let clear = CandidateList {
            scores: vec![1.0, cos(10.0), cos(20.0)],
            rows: vec![0, 1, 2],
            floor: cos(10.0) - 1e-3,
        };
        let got = ranker.finish(&index, &units, opts(2), &[clear]).unwrap();
        assert_eq!((got.hits, got.rescanned), (want, 0));
    }

    #[test]
    fn lists_that_do_not_add_up_are_rescanned() {
        let (index, mut rng) = random_index(60, 8, 3);
        let ranker = index.candidate_ranker().unwrap();
        let queries: Vec<f32> = (0..8).map(|_| rng.random::<f32>() - 0.5).collect();
        let units = scan_units(ranker.prepare(&index, &queries, opts(5), false).unwrap());
        let want = index.search_batch(&queries, opts(5), None).unwrap();
        let good = other_engine(&index, &units, ranker.keep(5)).remove(0);
        let broken = |edit: &dyn Fn(&mut CandidateList)| {
            let mut list = good.clone();
            edit(&mut list);
            list
        };
        let faults = [
            broken(&|l| l.scores[3] = f32::NAN),
            broken(&|l| l.scores[0] = f32::INFINITY),
            broken(&|l| l.rows[2] = 60),
            broken(&|l| l.rows[1] = l.rows[0]),
            broken(&|l| l.floor = f32::NAN),
            broken(&|l| l.floor = f32::NEG_INFINITY), // claims every item, holds 26
            broken(&|l| l.scores.pop().map_or((), drop)),
            broken(&|l| {
                l.scores.truncate(4);
                l.rows.truncate(4);
            }),
        ];
        for (i, list) in faults.into_iter().enumerate() {
            let got = ranker.finish(&index, &units, opts(5), &[list]).unwrap();
            assert_eq!((&got.hits, got.rescanned), (&want, 1), "fault {i}");
        }
    }

    #[test]
    fn refusals_and_answers_without_a_scan_match_search_batch() {
        let (mut index, _) = random_index(10, 4, 5);
        let ranker = index.candidate_ranker().unwrap();
        let prepare = |index: &EmbeddingIndex, q: &[f32], o| ranker.prepare(index, q, o, false);
        let input = |e: IndexError| Err(CandidateError::Input(e));
        let q = [0.5f32, 0.5, 0.0, 0.1];
        for (queries, o) in [
            (&q[..3], opts(3)),
            (&q[..], opts(0)),
            (&[0.0; 4][..], opts(3)),
            (
                &q[..],
                SearchOptions {
                    k: 1,
                    threshold: Some(f32::INFINITY),
                    rerank: None,
                },
            ),
        ] {
            let want = index.search_batch(queries, o, None).unwrap_err();
            assert_eq!(prepare(&index, queries, o), input(want));
        }
        assert_eq!(
            prepare(&index, &[], opts(0)),
            Ok(Prepared::Answered(vec![]))
        );
        assert_eq!(
            ranker.prepare(&index, &q, opts(3), true),
            Err(CandidateError::CpuOnly(CpuOnly::Filter))
        );
        let units = scan_units(prepare(&index, &q, opts(3)).unwrap());
        assert_eq!(
            ranker.finish(&index, &units, opts(3), &[]),
            Err(CandidateError::Lists {
                queries: 1,
                lists: 0
            })
        );
        // a k beyond the index: every item, as on the CPU
        let lists = other_engine(&index, &units, ranker.keep(30));
        let got = ranker.finish(&index, &units, opts(30), &lists).unwrap();
        assert_eq!(got.hits, index.search_batch(&q, opts(30), None).unwrap());
        assert_eq!(got.hits[0].len(), 10);
        // changed after the copy: refused, whatever the change
        let before = index.revision();
        index
            .upsert(&names(1), &[1.0, 0.0, 0.0, 0.0], vec![])
            .unwrap();
        assert_ne!(index.revision(), before);
        let stale = CandidateError::CpuOnly(CpuOnly::Stale {
            copied: before,
            current: index.revision(),
        });
        assert_eq!(prepare(&index, &q, opts(3)), Err(stale.clone()));
        assert_eq!(ranker.finish(&index, &units, opts(3), &lists), Err(stale));
        for storage in [Storage::F16, Storage::Int8] {
            let other = EmbeddingIndex::new("m", None, storage).unwrap();
            assert_eq!(other.candidate_ranker(), Err(CpuOnly::Storage(storage)));
        }
        let empty = EmbeddingIndex::new("m", Some(4), Storage::F32).unwrap();
        let none = empty.candidate_ranker().unwrap();
        assert_eq!(
            none.prepare(&empty, &[q, q].concat(), opts(3), false),
            Ok(Prepared::Answered(vec![vec![], vec![]]))
        );
        let blank = EmbeddingIndex::new("m", None, Storage::F32).unwrap();
        let none = blank.candidate_ranker().unwrap();
        assert_eq!(
            none.prepare(&blank, &q, opts(0), false),
            Ok(Prepared::Answered(vec![]))
        );
    }

    #[test]
    fn revisions_follow_changes_not_equality() {
        let (mut index, _) = random_index(5, 3, 9);
        let copy = index.clone();
        assert_eq!(copy.revision(), index.revision());
        let reloaded = EmbeddingIndex::from_bytes(&index.to_bytes(), None).unwrap();
        assert_eq!(reloaded, index);
        assert_ne!(reloaded.revision(), index.revision());
        let mut seen = vec![index.revision()];
        index
            .add(&["new".into()], &[1.0, 1.0, 0.0], vec![])
            .unwrap();
        seen.push(index.revision());
        index.remove(&["item0".into()]);
        seen.push(index.revision());
        index
            .upsert(&["item1".into()], &[0.0, 1.0, 0.0], vec![])
            .unwrap();
        seen.push(index.revision());
        seen.dedup();
        assert_eq!(seen.len(), 4, "{seen:?}");
        // a refused change changes nothing, so the revision stays
        assert!(index
            .add(&["new".into()], &[1.0, 1.0, 0.0], vec![])
            .is_err());
        assert_eq!(index.revision(), seen[3]);
    }
}
