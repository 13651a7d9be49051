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

/// Refuses a header whose shape cannot describe this file, before npyz sees it: npyz
/// multiplies the dimensions unchecked (a debug build panics on `(2**40, 2**30)`, a release
/// build wraps and may read a huge shape as an empty array). Every element takes at least
/// one byte, so the product may not exceed the file's length. Only the `shape` tuple is read
/// here (a minimal scan, not a parser: anything unusual is left to npyz's own errors).
fn check_declared_shape(bytes: &[u8], path: &Path, what: &str) -> Result<()> {
    if bytes.len() < 10 || !bytes.starts_with(b"\x93NUMPY") {
        return Ok(()); // npyz names the bad magic
    }
    let (len, start): (usize, usize) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        _ => return Ok(()),
    };
    let Some(header) = bytes.get(start..start.saturating_add(len)) else {
        bail!(
            "{what} {} is truncated inside its .npy header",
            path.display()
        );
    };
    let header = String::from_utf8_lossy(header);
    let Some(at) = header.find("'shape'") else {
        return Ok(());
    };
    let rest = &header[at..];
    let (Some(open), Some(close)) = (rest.find('('), rest.find(')')) else {
        return Ok(());
    };
    if close < open {
        return Ok(());
    }
    let mut elements: u64 = 1;
    let mut dims = Vec::new();
    for part in rest[open + 1..close]
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let Ok(d) = part.parse::<u64>() else {
            bail!(
                "{what} {} declares a shape with {part:?}, not a size",
                path.display()
            );
        };
        dims.push(d);
        elements = elements.checked_mul(d).ok_or_else(|| {
            anyhow::anyhow!(
                "{what} {} declares shape {dims:?}…, whose number of elements overflows",
                path.display()
            )
        })?;
    }
    let data = bytes.len().saturating_sub(start + len) as u64;
    if elements > data {
        bail!(
            "{what} {} declares shape {dims:?} ({elements} elements) but holds only {data} bytes of data",
            path.display()
        );
    }
    Ok(())
}

/// Reads a 1-D or 2-D array of f32 or f64 (converted to f32) as a matrix; a 1-D array is
/// one column. Names the file and what was expected on failure.
pub fn read_matrix(path: &Path, what: &str) -> Result<Matrix> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))?;
    check_declared_shape(&bytes, path, what)?;
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
    check_declared_shape(&bytes, path, what)?;
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
