//! `.npy` arrays in and out (NumPy's format, via npyz).

use std::path::Path;

use anyhow::{bail, Context, Result};
use latentlab::core::matrix::Matrix;
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

/// Reads a 1-D or 2-D array of f32 or f64 (converted to f32) as a matrix; a 1-D array is
/// one column. Names the file and what was expected on failure.
pub fn read_matrix(path: &Path, what: &str) -> Result<Matrix> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))?;
    let array = npyz::NpyFile::new(&bytes[..])
        .with_context(|| format!("{what} {} is not a .npy file", path.display()))?;
    let shape: Vec<usize> = array.shape().iter().map(|&d| d as usize).collect();
    let (rows, cols) = match shape.as_slice() {
        [n] => (*n, 1),
        [r, c] => (*r, *c),
        other => bail!(
            "{what} {} has shape {other:?}; expected a 1-D or 2-D array",
            path.display()
        ),
    };
    let data: Vec<f32> = match array.dtype() {
        npyz::DType::Plain(t) if t.type_char() == npyz::TypeChar::Float && t.size_field() == 4 => {
            array.into_vec::<f32>()?
        }
        npyz::DType::Plain(t) if t.type_char() == npyz::TypeChar::Float && t.size_field() == 8 => {
            array
                .into_vec::<f64>()?
                .into_iter()
                .map(|v| v as f32)
                .collect()
        }
        other => bail!(
            "{what} {} holds {}; expected float32 or float64",
            path.display(),
            other.descr()
        ),
    };
    Ok(Matrix::new(rows, cols, data, what)?)
}
