//! An embedding index for applications: items with string ids and JSON metadata, add /
//! upsert / remove / get, top-k cosine search with a filter and a score threshold, compact
//! storage (f16, int8) and a versioned byte format (`bytes.rs`) that names the model.
//!
//! Vectors are normalised on the way in, so a dot product is the cosine similarity. int8
//! keeps one scale per vector: a search first scores every item with the query quantised the
//! same way (integer products), then re-scores the best `rerank` candidates with the float
//! query against the stored vectors and ranks by that score, which is the one reported.
//! Items keep their insertion order (removal compacts), and ties go to the earlier item.

mod bytes;
mod candidates;
mod storage;

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use super::budget::{check_together, SizeError};
pub use candidates::{CandidateError, CandidateList, CandidateRanker, CpuOnly, Finished, Prepared};
pub use storage::Storage;
use storage::Vectors;

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum IndexError {
    #[error("{what}: {got} dimensions, but the index has {expected}")]
    Dimension {
        what: String,
        expected: usize,
        got: usize,
    },
    #[error("{what}: {len} values are not a whole number of {dim}-dimensional vectors")]
    Ragged {
        what: String,
        len: usize,
        dim: usize,
    },
    #[error("a vector needs at least one dimension")]
    ZeroDimension,
    #[error("{ids} ids but {values} values: give one vector of the same dimension per id")]
    IdsValues { ids: usize, values: usize },
    #[error("{ids} ids but {metadata} metadata entries: give one per id, or none")]
    IdsMetadata { ids: usize, metadata: usize },
    #[error("id {position} is empty: every item needs a non-empty id")]
    EmptyId { position: usize },
    #[error("id {0:?} is given twice")]
    DuplicateId(String),
    #[error("id {0:?} is already in the index: remove it first, or use upsert")]
    AlreadyPresent(String),
    #[error("the vector of id {id:?} has zero length or a value that is not finite")]
    BadVector { id: String },
    #[error("the query has zero length or a value that is not finite")]
    BadQuery,
    #[error("k must be at least 1")]
    ZeroK,
    #[error("rerank must be at least k ({k}), not {rerank}")]
    Rerank { k: usize, rerank: usize },
    #[error("the score threshold must be a finite number, not {0}")]
    Threshold(f32),
    #[error("the filter failed on id {id:?}: {message}")]
    Filter { id: String, message: String },
    #[error("this index holds embeddings of {found:?}, not of {expected:?}")]
    Model { expected: String, found: String },
    #[error("not an index file: {0}")]
    Format(String),
    #[error(transparent)]
    Size(#[from] SizeError),
}

/// One search result: the item's id, its row in insertion order, its cosine similarity.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hit {
    pub id: String,
    pub row: usize,
    pub score: f32,
}

/// A filter over items: called with an item's id and metadata, in order of falling score,
/// until enough items pass. An `Err` stops the search and is reported with the id.
pub type Filter<'a> = dyn FnMut(&str, Option<&Value>) -> Result<bool, String> + 'a;

/// Search options besides the query: `rerank` is how many int8 candidates are re-scored
/// with the float query (default `max(4k, k + 32)`; ignored for f32 and f16, whose first
/// scores are already exact).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SearchOptions {
    pub k: usize,
    pub threshold: Option<f32>,
    pub rerank: Option<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EmbeddingIndex {
    model: String,
    dim: Option<usize>,
    ids: Vec<String>,
    rows: HashMap<String, usize>,
    metadata: Vec<Option<Value>>,
    vectors: Vectors,
    revision: Revision,
}

/// Which contents an index has, so that a copy of its vectors kept elsewhere (a GPU's) can
/// tell that it is out of date: every change takes a number never used before in this
/// process, so equal revisions mean equal contents (a clone shares its original's until one
/// of them changes).
///
/// Not part of an index's value: two indexes with the same items are equal (`==`) whatever
/// their revisions, as an index and its reloaded bytes are.
#[derive(Clone, Copy, Debug)]
struct Revision(u64);

impl Revision {
    fn next() -> Revision {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Revision(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }
}

impl PartialEq for Revision {
    fn eq(&self, _: &Revision) -> bool {
        true
    }
}

/// `v` scaled to unit length, or None when it has none (zero, or a value not finite).
fn unit(v: &[f32]) -> Option<Vec<f32>> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if !norm.is_finite() || norm == 0.0 {
        return None;
    }
    Some(v.iter().map(|x| x / norm).collect())
}

/// Orders hits as every search reports them (score falling, ties to the earlier item), then
/// keeps the best `k` that reach `threshold`.
fn best_first(hits: &mut Vec<Hit>, k: usize, threshold: Option<f32>) {
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.row.cmp(&b.row)));
    if let Some(t) = threshold {
        hits.retain(|h| h.score >= t);
    }
    hits.truncate(k);
}

impl EmbeddingIndex {
    /// An empty index for embeddings of `model` (a name the byte format keeps, checked
    /// when the bytes are loaded again); `dim`, when given, is checked from the first add.
    pub fn new(
        model: &str,
        dim: Option<usize>,
        storage: Storage,
    ) -> Result<EmbeddingIndex, IndexError> {
        if dim == Some(0) {
            return Err(IndexError::ZeroDimension);
        }
        Ok(EmbeddingIndex {
            model: model.to_string(),
            dim,
            ids: Vec::new(),
            rows: HashMap::new(),
            metadata: Vec::new(),
            vectors: Vectors::new(storage),
            revision: Revision::next(),
        })
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    pub fn dim(&self) -> Option<usize> {
        self.dim
    }

    pub fn storage(&self) -> Storage {
        self.vectors.storage()
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// The revision of the contents: it changes whenever items are added, replaced or
    /// removed, and two indexes with the same revision hold the same items (see
    /// [`CandidateRanker`], which refuses to finish a search on an index changed since).
    pub fn revision(&self) -> u64 {
        self.revision.0
    }

    /// The stored unit vectors, row-major, when they are kept as f32 (what a GPU copy of
    /// the index uploads); None for f16 and int8 storage.
    pub fn f32_vectors(&self) -> Option<&[f32]> {
        match &self.vectors {
            Vectors::F32(data) => Some(data),
            _ => None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Every id, in insertion order.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    pub fn contains(&self, id: &str) -> bool {
        self.rows.contains_key(id)
    }

    pub fn row_of(&self, id: &str) -> Option<usize> {
        self.rows.get(id).copied()
    }

    pub fn metadata(&self, row: usize) -> Option<&Value> {
        self.metadata.get(row).and_then(Option::as_ref)
    }

    /// The stored (normalised, and for f16/int8 rounded) vector and the metadata of `id`.
    pub fn get(&self, id: &str) -> Option<(Vec<f32>, Option<&Value>)> {
        let row = self.row_of(id)?;
        let dim = self.dim?;
        Some((self.vectors.row(row, dim), self.metadata(row)))
    }

    /// The dimension of `len` values given for `count` ids: the index's, or (for the first
    /// add) `len / count`.
    fn dim_for(&self, what: &str, len: usize, count: usize) -> Result<usize, IndexError> {
        let values = || IndexError::IdsValues {
            ids: count,
            values: len,
        };
        match self.dim {
            Some(expected) => {
                if count > 0 && len > 0 && len.is_multiple_of(count) && len / count != expected {
                    return Err(IndexError::Dimension {
                        what: what.into(),
                        expected,
                        got: len / count,
                    });
                }
                if !len.is_multiple_of(expected) {
                    return Err(IndexError::Ragged {
                        what: what.into(),
                        len,
                        dim: expected,
                    });
                }
                if len / expected != count {
                    return Err(values());
                }
                Ok(expected)
            }
            None if count == 0 && len == 0 => Ok(0),
            None if count == 0 || !len.is_multiple_of(count) => Err(values()),
            None if len == 0 => Err(IndexError::ZeroDimension),
            None => Ok(len / count),
        }
    }

    /// Checks a batch of new items and returns their unit vectors (row-major).
    fn checked_batch(
        &self,
        ids: &[String],
        vectors: &[f32],
        metadata: &[Option<Value>],
        replacing: bool,
    ) -> Result<(usize, Vec<f32>), IndexError> {
        if !metadata.is_empty() && metadata.len() != ids.len() {
            return Err(IndexError::IdsMetadata {
                ids: ids.len(),
                metadata: metadata.len(),
            });
        }
        let dim = self.dim_for("the added vectors", vectors.len(), ids.len())?;
        let mut seen = std::collections::HashSet::new();
        for (position, id) in ids.iter().enumerate() {
            if id.is_empty() {
                return Err(IndexError::EmptyId { position });
            }
            if !seen.insert(id.as_str()) {
                return Err(IndexError::DuplicateId(id.clone()));
            }
            if !replacing && self.contains(id) {
                return Err(IndexError::AlreadyPresent(id.clone()));
            }
        }
        let new_rows = ids.iter().filter(|id| !self.contains(id)).count();
        let storage = self.storage();
        check_together(
            "the embedding index",
            &[
                (
                    "vectors",
                    &[("items", self.len() + new_rows), ("dimensions", dim)],
                    storage.element_bytes(),
                ),
                (
                    "per-item scales",
                    &[("items", self.len() + new_rows)],
                    if storage == Storage::Int8 { 4 } else { 0 },
                ),
            ],
        )?;
        let mut units = Vec::with_capacity(vectors.len());
        for (id, v) in ids.iter().zip(vectors.chunks(dim.max(1))) {
            units.extend(unit(v).ok_or_else(|| IndexError::BadVector { id: id.clone() })?);
        }
        Ok((dim, units))
    }

    /// Adds items (`vectors` row-major, one per id; `metadata` one per id or empty). Nothing
    /// is added when anything is wrong: an id already present, given twice or empty, a
    /// vector of the wrong dimension, zero or not finite.
    pub fn add(
        &mut self,
        ids: &[String],
        vectors: &[f32],
        metadata: Vec<Option<Value>>,
    ) -> Result<(), IndexError> {
        let (dim, units) = self.checked_batch(ids, vectors, &metadata, false)?;
        self.append(ids, dim, &units, metadata);
        self.revision = Revision::next();
        Ok(())
    }

    /// Adds items, replacing the vector and metadata of ids already present (in place:
    /// they keep their row).
    pub fn upsert(
        &mut self,
        ids: &[String],
        vectors: &[f32],
        metadata: Vec<Option<Value>>,
    ) -> Result<(), IndexError> {
        let (dim, units) = self.checked_batch(ids, vectors, &metadata, true)?;
        let mut metadata = if metadata.is_empty() {
            vec![None; ids.len()]
        } else {
            metadata
        };
        let (mut new_ids, mut new_units, mut new_meta) = (Vec::new(), Vec::new(), Vec::new());
        for (i, id) in ids.iter().enumerate() {
            let v = &units[i * dim..(i + 1) * dim];
            match self.row_of(id) {
                Some(row) => {
                    self.vectors.set(row, dim, v);
                    self.metadata[row] = metadata[i].take();
                }
                None => {
                    new_ids.push(id.clone());
                    new_units.extend_from_slice(v);
                    new_meta.push(metadata[i].take());
                }
            }
        }
        self.append(&new_ids, dim, &new_units, new_meta);
        self.revision = Revision::next();
        Ok(())
    }

    fn append(&mut self, ids: &[String], dim: usize, units: &[f32], metadata: Vec<Option<Value>>) {
        if ids.is_empty() {
            return;
        }
        self.dim = Some(dim);
        for (id, v) in ids.iter().zip(units.chunks(dim)) {
            self.rows.insert(id.clone(), self.ids.len());
            self.ids.push(id.clone());
            self.vectors.push(v);
        }
        if metadata.is_empty() {
            self.metadata.resize(self.ids.len(), None);
        } else {
            self.metadata.extend(metadata);
        }
    }

    /// Removes the items with these ids; returns how many there were (unknown ids are
    /// not an error, as with a map's delete).
    pub fn remove(&mut self, ids: &[String]) -> usize {
        let gone: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
        let keep: Vec<bool> = self
            .ids
            .iter()
            .map(|id| !gone.contains(id.as_str()))
            .collect();
        let gone = keep.iter().filter(|k| !**k).count();
        if gone == 0 {
            return 0;
        }
        let mut flags = keep.iter();
        self.ids.retain(|_| *flags.next().unwrap_or(&true));
        let mut flags = keep.iter();
        self.metadata.retain(|_| *flags.next().unwrap_or(&true));
        if let Some(dim) = self.dim {
            self.vectors.retain_rows(dim, &keep);
        }
        self.rows = self
            .ids
            .iter()
            .enumerate()
            .map(|(row, id)| (id.clone(), row))
            .collect();
        self.revision = Revision::next();
        gone
    }

    /// The `options.k` items most similar to `query` (best first) that pass `filter` and
    /// score at least `options.threshold`. An empty index gives no hits.
    pub fn search(
        &self,
        query: &[f32],
        options: SearchOptions,
        filter: Option<&mut Filter>,
    ) -> Result<Vec<Hit>, IndexError> {
        let rerank = self.checked_options(options)?;
        let Some(dim) = self.dim else {
            return Ok(Vec::new());
        };
        if query.len() != dim {
            return Err(IndexError::Dimension {
                what: "the query".into(),
                expected: dim,
                got: query.len(),
            });
        }
        let q = unit(query).ok_or(IndexError::BadQuery)?;
        self.search_unit(&q, dim, options, rerank, filter)
    }

    /// Checks `options` as `search` does and returns how many first-pass candidates it
    /// re-scores (`rerank`: k except for int8).
    fn checked_options(&self, options: SearchOptions) -> Result<usize, IndexError> {
        let SearchOptions { k, threshold, .. } = options;
        if k == 0 {
            return Err(IndexError::ZeroK);
        }
        if let Some(t) = threshold.filter(|t| !t.is_finite()) {
            return Err(IndexError::Threshold(t));
        }
        match (self.storage(), options.rerank) {
            (Storage::Int8, Some(r)) if r < k => Err(IndexError::Rerank { k, rerank: r }),
            (Storage::Int8, Some(r)) => Ok(r),
            (Storage::Int8, None) => Ok((4 * k).max(k + 32)),
            _ => Ok(k),
        }
    }

    /// `search` from the unit query `q` on, its options checked: the one ranking both the
    /// CPU search and a finished GPU search (`candidates.rs`, for its rescans) go through.
    fn search_unit(
        &self,
        q: &[f32],
        dim: usize,
        options: SearchOptions,
        rerank: usize,
        mut filter: Option<&mut Filter>,
    ) -> Result<Vec<Hit>, IndexError> {
        let SearchOptions { k, threshold, .. } = options;
        let first = self.vectors.scan(self.len(), dim, q);
        let better = |a: &u32, b: &u32| {
            first[*b as usize]
                .total_cmp(&first[*a as usize])
                .then(a.cmp(b))
        };
        let mut order: Vec<u32> = (0..self.len() as u32).collect();
        // Without a filter only the first `rerank` rows in score order are needed.
        if filter.is_none() && rerank < order.len() {
            order.select_nth_unstable_by(rerank, better);
            order.truncate(rerank);
        }
        order.sort_unstable_by(better);
        let mut hits = Vec::with_capacity(rerank.min(order.len()));
        for row in order {
            let row = row as usize;
            let id = &self.ids[row];
            if let Some(f) = filter.as_deref_mut() {
                let keep = f(id, self.metadata(row)).map_err(|message| IndexError::Filter {
                    id: id.clone(),
                    message,
                })?;
                if !keep {
                    continue;
                }
            }
            let score = match self.storage() {
                Storage::Int8 => self.vectors.score(row, dim, q),
                _ => first[row],
            };
            hits.push(Hit {
                id: id.clone(),
                row,
                score,
            });
            if hits.len() == rerank {
                break;
            }
        }
        best_first(&mut hits, k, threshold);
        Ok(hits)
    }

    /// `search` for each row of `queries` (row-major, the index's dimension).
    pub fn search_batch(
        &self,
        queries: &[f32],
        options: SearchOptions,
        mut filter: Option<&mut Filter>,
    ) -> Result<Vec<Vec<Hit>>, IndexError> {
        let Some(dim) = self.dim else {
            return Ok(Vec::new());
        };
        if !queries.len().is_multiple_of(dim) {
            return Err(IndexError::Ragged {
                what: "the queries".into(),
                len: queries.len(),
                dim,
            });
        }
        queries
            .chunks(dim)
            .map(|q| self.search(q, options, filter.as_deref_mut()))
            .collect()
    }

    /// Bytes one item's vector takes in memory (ids and metadata aside).
    pub fn bytes_per_vector(&self) -> Option<usize> {
        self.dim.map(|d| self.storage().bytes_per_vector(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use serde_json::json;

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn opts(k: usize) -> SearchOptions {
        SearchOptions {
            k,
            ..Default::default()
        }
    }

    fn three(storage: Storage) -> EmbeddingIndex {
        let mut index = EmbeddingIndex::new("m", None, storage).unwrap();
        index
            .add(
                &ids(&["east", "north", "diagonal"]),
                &[1.0, 0.0, 0.0, 2.0, 1.0, 1.0],
                vec![
                    Some(json!({"kind": "axis"})),
                    Some(json!({"kind": "axis"})),
                    None,
                ],
            )
            .unwrap();
        index
    }

    #[test]
    fn searches_by_cosine_with_ids_filter_and_threshold() {
        for storage in [Storage::F32, Storage::F16, Storage::Int8] {
            let index = three(storage);
            let hits = index.search(&[0.0, 5.0], opts(2), None).unwrap();
            assert_eq!(hits[0].id, "north", "{storage}");
            assert!((hits[0].score - 1.0).abs() < 1e-2, "{storage}");
            assert_eq!(hits[1].id, "diagonal", "{storage}");
            let mut axes_only = |_: &str, m: Option<&Value>| Ok(m.is_some());
            let hits = index
                .search(&[0.0, 5.0], opts(2), Some(&mut axes_only))
                .unwrap();
            assert_eq!(
                hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
                ["north", "east"]
            );
            let close = SearchOptions {
                k: 3,
                threshold: Some(0.5),
                rerank: None,
            };
            assert_eq!(index.search(&[0.0, 5.0], close, None).unwrap().len(), 2);
        }
    }

    #[test]
    fn add_upsert_remove_get_keep_ids_and_rows_consistent() {
        let mut index = three(Storage::F32);
        assert_eq!(
            index.add(&ids(&["east"]), &[0.0, 1.0], vec![]),
            Err(IndexError::AlreadyPresent("east".into()))
        );
        index
            .upsert(&ids(&["east", "west"]), &[0.0, 3.0, -1.0, 0.0], vec![])
            .unwrap();
        assert_eq!(index.ids(), ["east", "north", "diagonal", "west"]);
        assert_eq!(index.get("east").unwrap().0, vec![0.0, 1.0]);
        assert_eq!(index.get("east").unwrap().1, None);
        assert_eq!(index.remove(&ids(&["north", "nowhere"])), 1);
        assert_eq!(index.ids(), ["east", "diagonal", "west"]);
        assert_eq!(index.row_of("west"), Some(2));
        assert_eq!(index.get("west").unwrap().0, vec![-1.0, 0.0]);
        let top = index.search(&[-1.0, 0.0], opts(1), None).unwrap();
        assert_eq!((top[0].id.as_str(), top[0].row), ("west", 2));
        assert_eq!(index.get("diagonal").unwrap().1, None);
        // Ties go to the earlier item.
        index.add(&ids(&["east2"]), &[0.0, 1.0], vec![]).unwrap();
        let tie = index.search(&[0.0, 1.0], opts(2), None).unwrap();
        assert_eq!(tie[0].id, "east");
        assert_eq!(tie[1].id, "east2");
    }

    #[test]
    fn refuses_bad_input_by_name_and_changes_nothing() {
        let mut index = three(Storage::F32);
        let before = index.clone();
        let e = index.add(&ids(&["a", "b"]), &[1.0, 0.0, 0.0], vec![]);
        assert!(matches!(e, Err(IndexError::Ragged { .. })), "{e:?}");
        let e = index.add(&ids(&["a"]), &[1.0, 0.0, 0.0], vec![]);
        assert_eq!(
            e,
            Err(IndexError::Dimension {
                what: "the added vectors".into(),
                expected: 2,
                got: 3
            })
        );
        let e = index.add(&ids(&["a", "a"]), &[1.0, 0.0, 0.0, 1.0], vec![]);
        assert_eq!(e, Err(IndexError::DuplicateId("a".into())));
        let e = index.add(&ids(&["a", ""]), &[1.0, 0.0, 0.0, 1.0], vec![]);
        assert_eq!(e, Err(IndexError::EmptyId { position: 1 }));
        let e = index.add(&ids(&["a", "b"]), &[1.0, 0.0, 0.0, 0.0], vec![]);
        assert_eq!(e, Err(IndexError::BadVector { id: "b".into() }));
        let e = index.add(&ids(&["a"]), &[f32::NAN, 0.0], vec![]);
        assert_eq!(e, Err(IndexError::BadVector { id: "a".into() }));
        let e = index.add(&ids(&["a"]), &[1.0, 0.0], vec![None, None]);
        assert!(matches!(e, Err(IndexError::IdsMetadata { .. })));
        assert_eq!(index, before);
        assert_eq!(
            index.search(&[1.0], opts(1), None).unwrap_err().to_string(),
            "the query: 1 dimensions, but the index has 2"
        );
        assert_eq!(
            index.search(&[0.0, 0.0], opts(1), None),
            Err(IndexError::BadQuery)
        );
        assert_eq!(
            index.search(&[1.0, 0.0], opts(0), None),
            Err(IndexError::ZeroK)
        );
        let nan = SearchOptions {
            k: 1,
            threshold: Some(f32::NAN),
            rerank: None,
        };
        assert!(matches!(
            index.search(&[1.0, 0.0], nan, None),
            Err(IndexError::Threshold(_))
        ));
        let mut failing = |_: &str, _: Option<&Value>| Err("boom".to_string());
        assert_eq!(
            index
                .search(&[1.0, 0.0], opts(1), Some(&mut failing))
                .unwrap_err()
                .to_string(),
            "the filter failed on id \"east\": boom"
        );
        let empty = EmbeddingIndex::new("m", None, Storage::Int8).unwrap();
        assert_eq!(empty.search(&[1.0, 0.0], opts(3), None), Ok(vec![]));
        assert_eq!(
            EmbeddingIndex::new("m", Some(0), Storage::F32),
            Err(IndexError::ZeroDimension)
        );
        let mut sized = EmbeddingIndex::new("m", Some(3), Storage::F32).unwrap();
        assert!(sized.add(&ids(&["a"]), &[1.0, 0.0], vec![]).is_err());
        let e = index.add(&ids(&["x"]), &[1.0; 2], vec![]);
        assert!(e.is_ok());
        let mut huge = EmbeddingIndex::new("m", Some(1 << 20), Storage::F32).unwrap();
        let many: Vec<String> = (0..5000).map(|i| i.to_string()).collect();
        let e = huge.add(&many, &[], vec![]);
        assert!(matches!(e, Err(IndexError::IdsValues { .. })), "{e:?}");
    }

    /// On random unit vectors with structure (clusters), int8 with re-ranking finds the
    /// same top 10 as f32 almost always; f16 even more so.
    #[test]
    fn compact_storage_keeps_the_top_ten() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let (n, dim) = (2000, 64);
        let centres: Vec<Vec<f32>> = (0..20)
            .map(|_| (0..dim).map(|_| rng.random::<f32>() - 0.5).collect())
            .collect();
        let data: Vec<f32> = (0..n)
            .flat_map(|i| {
                let c = &centres[i % 20];
                (0..dim)
                    .map(|j| c[j] + 0.3 * (rng.random::<f32>() - 0.5))
                    .collect::<Vec<_>>()
            })
            .collect();
        let names: Vec<String> = (0..n).map(|i| format!("item{i}")).collect();
        let build = |storage| {
            let mut index = EmbeddingIndex::new("random", None, storage).unwrap();
            index.add(&names, &data, vec![]).unwrap();
            index
        };
        let (exact, half, int8) = (
            build(Storage::F32),
            build(Storage::F16),
            build(Storage::Int8),
        );
        let (mut found_half, mut found_int8) = (0, 0);
        for qi in 0..50 {
            let q = &data[qi * 37 * dim..(qi * 37 + 1) * dim];
            let truth: Vec<String> = exact
                .search(q, opts(10), None)
                .unwrap()
                .into_iter()
                .map(|h| h.id)
                .collect();
            let count = |index: &EmbeddingIndex| {
                index
                    .search(q, opts(10), None)
                    .unwrap()
                    .iter()
                    .filter(|h| truth.contains(&h.id))
                    .count()
            };
            found_half += count(&half);
            found_int8 += count(&int8);
        }
        assert!(
            found_half as f64 / 500.0 >= 0.99,
            "f16 recall {found_half}/500"
        );
        assert!(
            found_int8 as f64 / 500.0 >= 0.97,
            "int8 recall {found_int8}/500"
        );
        assert_eq!(int8.bytes_per_vector(), Some(68));
    }
}
