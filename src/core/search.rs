//! Composed queries and retrieval evaluation (Recall@k, median rank); the searchable index
//! itself is `core::index`.

use serde::Serialize;

use super::matrix::{dot, Matrix};

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SearchError {
    #[error("the query has {got} dimensions but the index has {expected}")]
    Dimension { expected: usize, got: usize },
    #[error(
        "{what} row {row} has zero length or is not finite, so it has no direction to compare"
    )]
    ZeroVector { what: String, row: usize },
    #[error("the fusion weight must lie in [0, 1], not {0}")]
    Weight(f32),
    #[error("{what}: {queries} queries but {targets} targets; query i must match target i")]
    Unpaired {
        what: String,
        queries: usize,
        targets: usize,
    },
    #[error("the {what} is empty")]
    Empty { what: String },
}

fn normalized(mut m: Matrix, what: &str) -> Result<Matrix, SearchError> {
    if let Some(&row) = m.normalize_rows().first() {
        return Err(SearchError::ZeroVector {
            what: what.to_string(),
            row,
        });
    }
    if m.data.iter().any(|v| !v.is_finite()) {
        return Err(SearchError::ZeroVector {
            what: what.to_string(),
            row: 0,
        });
    }
    Ok(m)
}

/// A composed query from an image and an instruction, MagicLens-style in spirit:
/// normalize((1 − w)·image + w·text) with both inputs normalised first. `w = 0` is the
/// image alone, `w = 1` the instruction alone. A learned fusion model, when one is
/// supplied, replaces this function and nothing else.
pub fn fuse(image: &[f32], text: &[f32], weight: f32) -> Result<Vec<f32>, SearchError> {
    if !(0.0..=1.0).contains(&weight) {
        return Err(SearchError::Weight(weight));
    }
    if image.len() != text.len() {
        return Err(SearchError::Dimension {
            expected: image.len(),
            got: text.len(),
        });
    }
    let both = normalized(
        Matrix {
            rows: 2,
            cols: image.len(),
            data: [image, text].concat(),
        },
        "fusion input",
    )?;
    let fused: Vec<f32> = both
        .row(0)
        .iter()
        .zip(both.row(1))
        .map(|(a, b)| (1.0 - weight) * a + weight * b)
        .collect();
    Ok(normalized(
        Matrix {
            rows: 1,
            cols: fused.len(),
            data: fused,
        },
        "fused query",
    )?
    .data)
}

/// Paired retrieval quality: query i's correct target is target i.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RetrievalReport {
    pub n: usize,
    pub recall_at_1: f64,
    pub recall_at_5: f64,
    pub recall_at_10: f64,
    /// Median 1-based rank of the correct target.
    pub median_rank: f64,
    /// 1-based rank of every query's correct target.
    pub ranks: Vec<usize>,
}

/// Ranks each query's own target among all targets by cosine similarity. A target
/// scoring exactly as high as the correct one counts against it (pessimistic ties).
pub fn evaluate_retrieval(
    queries: &Matrix,
    targets: &Matrix,
) -> Result<RetrievalReport, SearchError> {
    if queries.rows != targets.rows {
        return Err(SearchError::Unpaired {
            what: "retrieval evaluation".into(),
            queries: queries.rows,
            targets: targets.rows,
        });
    }
    if queries.rows == 0 {
        return Err(SearchError::Empty {
            what: "evaluation set".into(),
        });
    }
    if queries.cols != targets.cols {
        return Err(SearchError::Dimension {
            expected: targets.cols,
            got: queries.cols,
        });
    }
    // Vectors of no values: nothing to rank (and their row count is unchecked by their data).
    if queries.cols == 0 {
        return Err(SearchError::Empty {
            what: "embeddings (dimension 0)".into(),
        });
    }
    let q = normalized(queries.clone(), "query")?;
    let t = normalized(targets.clone(), "target")?;
    let ranks: Vec<usize> = (0..q.rows)
        .map(|i| {
            let own = dot(q.row(i), t.row(i));
            1 + (0..t.rows)
                .filter(|&j| j != i && dot(q.row(i), t.row(j)) >= own)
                .count()
        })
        .collect();
    let n = ranks.len();
    let recall = |k: usize| ranks.iter().filter(|&&r| r <= k).count() as f64 / n as f64;
    let mut sorted = ranks.clone();
    sorted.sort_unstable();
    let median_rank = if n % 2 == 1 {
        sorted[n / 2] as f64
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) as f64 / 2.0
    };
    Ok(RetrievalReport {
        n,
        recall_at_1: recall(1),
        recall_at_5: recall(5),
        recall_at_10: recall(10),
        median_rank,
        ranks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(rows: usize, cols: usize, data: &[f32]) -> Matrix {
        Matrix::new(rows, cols, data.to_vec(), "test").unwrap()
    }

    #[test]
    fn fusion_interpolates_directions() {
        assert_eq!(fuse(&[2.0, 0.0], &[0.0, 1.0], 0.0).unwrap(), vec![1.0, 0.0]);
        assert_eq!(fuse(&[2.0, 0.0], &[0.0, 1.0], 1.0).unwrap(), vec![0.0, 1.0]);
        let half = fuse(&[2.0, 0.0], &[0.0, 1.0], 0.5).unwrap();
        assert!((half[0] - half[1]).abs() < 1e-6);
        assert_eq!(fuse(&[1.0], &[1.0], 1.5), Err(SearchError::Weight(1.5)));
    }

    #[test]
    fn retrieval_ranks_and_recall() {
        let queries = m(3, 2, &[1.0, 0.0, 0.0, 1.0, 1.0, 0.1]);
        let targets = m(3, 2, &[1.0, 0.0, 0.0, 1.0, 0.0, 1.0]);
        let r = evaluate_retrieval(&queries, &targets).unwrap();
        // Query 2 ≈ target 0, so its own target (0, 1) ranks behind target 0 and ties
        // with target 1 (same vector), which counts against it: rank 3.
        assert_eq!(r.ranks, vec![1, 2, 3]);
        assert!((r.recall_at_1 - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(r.median_rank, 2.0);
        assert!(evaluate_retrieval(&queries, &m(1, 2, &[1.0, 0.0])).is_err());
    }
}
