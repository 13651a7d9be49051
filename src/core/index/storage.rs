//! How an index keeps its vectors: f32 as given, f16 (half the memory, ~3 significant
//! digits), or int8 with one scale per vector (a quarter of the memory).

use std::fmt;
use std::str::FromStr;

use half::f16;
use serde::{Deserialize, Serialize};

use crate::core::matrix::dot;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    F32,
    F16,
    Int8,
}

impl Storage {
    pub const NAMES: [&'static str; 3] = ["f32", "f16", "int8"];

    /// Bytes one stored vector of `dim` values takes (int8: the codes and a f32 scale).
    pub fn bytes_per_vector(self, dim: usize) -> usize {
        match self {
            Storage::F32 => 4 * dim,
            Storage::F16 => 2 * dim,
            Storage::Int8 => dim + 4,
        }
    }

    /// Bytes of one element, for the memory budget (int8's scales are counted per vector).
    pub(super) fn element_bytes(self) -> usize {
        match self {
            Storage::F32 => 4,
            Storage::F16 => 2,
            Storage::Int8 => 1,
        }
    }
}

impl fmt::Display for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Storage::F32 => "f32",
            Storage::F16 => "f16",
            Storage::Int8 => "int8",
        })
    }
}

impl FromStr for Storage {
    type Err = String;
    fn from_str(s: &str) -> Result<Storage, String> {
        match s {
            "f32" => Ok(Storage::F32),
            "f16" => Ok(Storage::F16),
            "int8" => Ok(Storage::Int8),
            other => Err(format!(
                "unknown storage {other:?}: use one of {}",
                Storage::NAMES.join(", ")
            )),
        }
    }
}

/// Symmetric int8 codes of a vector: `x ≈ code · scale` with max |x| ↦ 127.
pub(super) fn quantize(v: &[f32]) -> (Vec<i8>, f32) {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 {
        return (vec![0; v.len()], 1.0);
    }
    let scale = max / 127.0;
    let codes = v
        .iter()
        .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8)
        .collect();
    (codes, scale)
}

/// Integer dot product of two code vectors. |code| ≤ 127, so a sum over fewer than 2^17
/// dimensions cannot overflow i32.
pub(super) fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(&x, &y)| x as i32 * y as i32).sum()
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Vectors {
    F32(Vec<f32>),
    F16(Vec<f16>),
    Int8 { codes: Vec<i8>, scales: Vec<f32> },
}

impl Vectors {
    pub(super) fn new(storage: Storage) -> Vectors {
        match storage {
            Storage::F32 => Vectors::F32(Vec::new()),
            Storage::F16 => Vectors::F16(Vec::new()),
            Storage::Int8 => Vectors::Int8 {
                codes: Vec::new(),
                scales: Vec::new(),
            },
        }
    }

    pub(super) fn storage(&self) -> Storage {
        match self {
            Vectors::F32(_) => Storage::F32,
            Vectors::F16(_) => Storage::F16,
            Vectors::Int8 { .. } => Storage::Int8,
        }
    }

    /// Appends one (normalised) vector.
    pub(super) fn push(&mut self, v: &[f32]) {
        match self {
            Vectors::F32(data) => data.extend_from_slice(v),
            Vectors::F16(data) => data.extend(v.iter().map(|&x| f16::from_f32(x))),
            Vectors::Int8 { codes, scales } => {
                let (c, s) = quantize(v);
                codes.extend_from_slice(&c);
                scales.push(s);
            }
        }
    }

    /// Overwrites row `row` with `v`.
    pub(super) fn set(&mut self, row: usize, dim: usize, v: &[f32]) {
        let span = row * dim..(row + 1) * dim;
        match self {
            Vectors::F32(data) => data[span].copy_from_slice(v),
            Vectors::F16(data) => {
                for (d, &x) in data[span].iter_mut().zip(v) {
                    *d = f16::from_f32(x);
                }
            }
            Vectors::Int8 { codes, scales } => {
                let (c, s) = quantize(v);
                codes[span].copy_from_slice(&c);
                scales[row] = s;
            }
        }
    }

    /// Keeps the rows whose `keep` flag is set, in order.
    pub(super) fn retain_rows(&mut self, dim: usize, keep: &[bool]) {
        fn retain<T: Copy>(data: &mut Vec<T>, width: usize, keep: &[bool]) {
            let mut out = 0;
            for (row, &k) in keep.iter().enumerate() {
                if k {
                    data.copy_within(row * width..(row + 1) * width, out * width);
                    out += 1;
                }
            }
            data.truncate(out * width);
        }
        match self {
            Vectors::F32(data) => retain(data, dim, keep),
            Vectors::F16(data) => retain(data, dim, keep),
            Vectors::Int8 { codes, scales } => {
                retain(codes, dim, keep);
                retain(scales, 1, keep);
            }
        }
    }

    /// Row `row` as f32 (the stored values: rounded for f16 and int8).
    pub(super) fn row(&self, row: usize, dim: usize) -> Vec<f32> {
        let span = row * dim..(row + 1) * dim;
        match self {
            Vectors::F32(data) => data[span].to_vec(),
            Vectors::F16(data) => data[span].iter().map(|x| x.to_f32()).collect(),
            Vectors::Int8 { codes, scales } => codes[span]
                .iter()
                .map(|&c| c as f32 * scales[row])
                .collect(),
        }
    }

    /// The float query's dot product with stored row `row`.
    pub(super) fn score(&self, row: usize, dim: usize, query: &[f32]) -> f32 {
        let span = row * dim..(row + 1) * dim;
        match self {
            Vectors::F32(data) => dot(&data[span], query),
            Vectors::F16(data) => data[span]
                .iter()
                .zip(query)
                .map(|(x, q)| x.to_f32() * q)
                .sum(),
            Vectors::Int8 { codes, scales } => {
                let sum: f32 = codes[span]
                    .iter()
                    .zip(query)
                    .map(|(&c, q)| c as f32 * q)
                    .sum();
                sum * scales[row]
            }
        }
    }

    /// Every row's score against `query`: exact for f32 and f16; for int8 the first pass,
    /// with the query quantised too (integer products), which the caller re-scores.
    pub(super) fn scan(&self, rows: usize, dim: usize, query: &[f32]) -> Vec<f32> {
        match self {
            Vectors::Int8 { codes, scales } => {
                let (q, q_scale) = quantize(query);
                (0..rows)
                    .map(|r| {
                        dot_i8(&codes[r * dim..(r + 1) * dim], &q) as f32 * scales[r] * q_scale
                    })
                    .collect()
            }
            _ => (0..rows).map(|r| self.score(r, dim, query)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantised_vectors_keep_their_direction() {
        let v = [0.6f32, -0.8, 0.0, 0.001];
        let (codes, scale) = quantize(&v);
        assert_eq!(codes[1], -127);
        for (c, x) in codes.iter().zip(v) {
            assert!((*c as f32 * scale - x).abs() <= scale / 2.0 + 1e-7);
        }
        let mut stored = Vectors::new(Storage::Int8);
        stored.push(&v);
        let exact = stored.score(0, 4, &v);
        let scanned = stored.scan(1, 4, &v)[0];
        assert!((exact - 1.0).abs() < 0.01, "{exact}");
        assert!((scanned - 1.0).abs() < 0.02, "{scanned}");
    }

    #[test]
    fn retain_and_set_move_whole_rows() {
        for storage in [Storage::F32, Storage::F16, Storage::Int8] {
            let mut v = Vectors::new(storage);
            for row in [[1.0f32, 0.0], [0.0, 1.0], [0.5, 0.5]] {
                v.push(&row);
            }
            v.retain_rows(2, &[true, false, true]);
            v.set(0, 2, &[0.0, -1.0]);
            let back = v.row(1, 2);
            assert!(
                (back[0] - 0.5).abs() < 0.01 && (back[1] - 0.5).abs() < 0.01,
                "{storage}"
            );
            assert!((v.row(0, 2)[1] + 1.0).abs() < 0.01, "{storage}");
        }
        assert_eq!("int8".parse::<Storage>(), Ok(Storage::Int8));
        assert!("q4"
            .parse::<Storage>()
            .unwrap_err()
            .contains("f32, f16, int8"));
    }
}
