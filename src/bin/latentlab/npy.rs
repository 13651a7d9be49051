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

/// Reads a 1-D array of class labels: integers of any width, booleans, or floats that are
/// whole numbers (as NumPy writes labels made with `np.array([...], float)`).
pub fn read_labels(path: &Path, what: &str) -> Result<Vec<i64>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))?;
    let array = npyz::NpyFile::new(&bytes[..])
        .with_context(|| format!("{what} {} is not a .npy file", path.display()))?;
    let shape: Vec<u64> = array.shape().to_vec();
    if !(shape.len() == 1 || (shape.len() == 2 && shape[1] == 1)) {
        bail!(
            "{what} {} has shape {shape:?}; expected a 1-D array of labels",
            path.display()
        );
    }
    let npyz::DType::Plain(t) = array.dtype() else {
        bail!(
            "{what} {} is a structured array; expected labels",
            path.display()
        );
    };
    let labels: Vec<i64> = match (t.type_char(), t.size_field()) {
        (npyz::TypeChar::Bool, _) => array
            .into_vec::<bool>()?
            .into_iter()
            .map(i64::from)
            .collect(),
        (npyz::TypeChar::Int, 1) => array.into_vec::<i8>()?.into_iter().map(i64::from).collect(),
        (npyz::TypeChar::Int, 2) => array
            .into_vec::<i16>()?
            .into_iter()
            .map(i64::from)
            .collect(),
        (npyz::TypeChar::Int, 4) => array
            .into_vec::<i32>()?
            .into_iter()
            .map(i64::from)
            .collect(),
        (npyz::TypeChar::Int, 8) => array.into_vec::<i64>()?,
        (npyz::TypeChar::Uint, 1) => array.into_vec::<u8>()?.into_iter().map(i64::from).collect(),
        (npyz::TypeChar::Uint, 2) => array
            .into_vec::<u16>()?
            .into_iter()
            .map(i64::from)
            .collect(),
        (npyz::TypeChar::Uint, 4) => array
            .into_vec::<u32>()?
            .into_iter()
            .map(i64::from)
            .collect(),
        (npyz::TypeChar::Float, 4 | 8) => {
            let values: Vec<f64> = if t.size_field() == 4 {
                array
                    .into_vec::<f32>()?
                    .into_iter()
                    .map(f64::from)
                    .collect()
            } else {
                array.into_vec::<f64>()?
            };
            values
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    if v.fract() == 0.0 && v.abs() < 1e15 {
                        Ok(v as i64)
                    } else {
                        bail!(
                            "{what} {} entry {i} is {v}; expected a whole number",
                            path.display()
                        )
                    }
                })
                .collect::<Result<_>>()?
        }
        _ => bail!(
            "{what} {} holds {}; expected integer, boolean or whole-number labels",
            path.display(),
            t
        ),
    };
    Ok(labels)
}
