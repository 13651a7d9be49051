//! `.npy` arrays in and out (NumPy's format, via npyz): files here, bytes in `latentlab::npy`.

use std::path::Path;

use anyhow::{Context, Result};
use latentlab::core::matrix::Matrix;
use latentlab::npy::{labels_from_npy, matrix_from_npy};
use npyz::WriterBuilder;

/// Writes a 2-D little-endian f32 array.
pub fn write_matrix(path: &Path, m: &Matrix) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut writer = npyz::WriteOptions::<f32>::new()
        .default_dtype()
        .shape(&[m.rows as u64, m.cols as u64])
        .writer(std::io::BufWriter::new(file))
        .begin_nd()
        .with_context(|| format!("cannot write {}", path.display()))?;
    writer
        .extend(m.data.iter().copied())
        .with_context(|| format!("cannot write {}", path.display()))?;
    writer
        .finish()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Writes a 1-D little-endian int64 array (labels).
pub fn write_labels(path: &Path, labels: &[i64]) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut writer = npyz::WriteOptions::<i64>::new()
        .default_dtype()
        .shape(&[labels.len() as u64])
        .writer(std::io::BufWriter::new(file))
        .begin_nd()
        .with_context(|| format!("cannot write {}", path.display()))?;
    writer
        .extend(labels.iter().copied())
        .with_context(|| format!("cannot write {}", path.display()))?;
    writer
        .finish()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Reads a 1-D or 2-D array of f32 or f64 (converted to f32) as a matrix; a 1-D array is
/// one column. Names the file and what was expected on failure.
pub fn read_matrix(path: &Path, what: &str) -> Result<Matrix> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))?;
    Ok(matrix_from_npy(
        &bytes,
        &format!("{what} {}", path.display()),
    )?)
}

/// Reads a 1-D array of class labels (integers, booleans or whole-number floats).
pub fn read_labels(path: &Path, what: &str) -> Result<Vec<i64>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))?;
    Ok(labels_from_npy(
        &bytes,
        &format!("{what} {}", path.display()),
    )?)
}
