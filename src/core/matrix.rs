//! A row-major `f32` matrix with its shape: the currency of embeddings between modules.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    /// `rows * cols` values, row after row.
    pub data: Vec<f32>,
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ShapeError {
    #[error("{what}: {len} values do not make a {rows}×{cols} matrix ({expected} expected)")]
    Mismatch {
        what: String,
        len: usize,
        rows: usize,
        cols: usize,
        expected: usize,
    },
}

impl Matrix {
    pub fn new(rows: usize, cols: usize, data: Vec<f32>, what: &str) -> Result<Matrix, ShapeError> {
        let expected = rows.saturating_mul(cols);
        if data.len() != expected {
            return Err(ShapeError::Mismatch {
                what: what.to_string(),
                len: data.len(),
                rows,
                cols,
                expected,
            });
        }
        Ok(Matrix { rows, cols, data })
    }

    pub fn zeros(rows: usize, cols: usize) -> Matrix {
        Matrix {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    pub fn row_mut(&mut self, i: usize) -> &mut [f32] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    pub fn iter_rows(&self) -> impl Iterator<Item = &[f32]> {
        self.data.chunks_exact(self.cols.max(1)).take(self.rows)
    }

    /// Scales every row to unit L2 norm; rows of norm zero are left as they are and
    /// reported by index, so callers can refuse them by name.
    pub fn normalize_rows(&mut self) -> Vec<usize> {
        let cols = self.cols;
        let mut zero = Vec::new();
        for (i, row) in self.data.chunks_exact_mut(cols.max(1)).enumerate() {
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            if norm > 0.0 && norm.is_finite() {
                row.iter_mut().for_each(|v| *v /= norm);
            } else {
                zero.push(i);
            }
        }
        zero
    }

    /// Rows of `self` followed by rows of `other`; both must have the same width.
    pub fn append(&mut self, other: &Matrix) -> Result<(), ShapeError> {
        if self.rows > 0 && other.cols != self.cols {
            return Err(ShapeError::Mismatch {
                what: "appended rows".into(),
                len: other.data.len(),
                rows: other.rows,
                cols: self.cols,
                expected: other.rows * self.cols,
            });
        }
        if self.rows == 0 {
            self.cols = other.cols;
        }
        self.data.extend_from_slice(&other.data);
        self.rows += other.rows;
        Ok(())
    }
}

/// A label read as a float (a float `.npy` file, a numpy float array): the whole number it
/// holds, or None for a fraction, a value that is not finite, or one past 1e15 (beyond which
/// f64 no longer tells neighbouring integers apart). The CLI and the Python package share it.
pub fn whole_number(v: f64) -> Option<i64> {
    (v.fract() == 0.0 && v.abs() < 1e15).then_some(v as i64)
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (na, nb) = (dot(a, a).sqrt(), dot(b, b).sqrt());
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot(a, b) / (na * nb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_checked() {
        assert!(Matrix::new(2, 3, vec![0.0; 6], "x").is_ok());
        let err = Matrix::new(2, 3, vec![0.0; 5], "x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "x: 5 values do not make a 2×3 matrix (6 expected)"
        );
    }

    #[test]
    fn normalizes_and_reports_zero_rows() {
        let mut m = Matrix::new(2, 2, vec![3.0, 4.0, 0.0, 0.0], "x").unwrap();
        assert_eq!(m.normalize_rows(), vec![1]);
        assert_eq!(m.row(0), &[0.6, 0.8]);
        assert!((cosine(&[1.0, 0.0], &[1.0, 1.0]) - 0.70710677).abs() < 1e-6);
    }
}
