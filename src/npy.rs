//! `.npy` bytes → matrices and class labels (NumPy's format, through npyz): the CLI's
//! reader, kept in the library so the fuzz targets (`fuzz/tests/fuzz.rs`) reach the same code.
//! Native only: the browser package takes typed arrays, not files.

use npyz::{DType, NpyFile, TypeChar};

use crate::core::matrix::Matrix;

/// What is wrong with a `.npy` file, in words that name it (`label` below is what the caller
/// calls the file, e.g. `--x data.npy`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NpyError(String);

/// Refuses a header whose shape cannot describe this file, before npyz sees it: npyz
/// multiplies the dimensions unchecked (a debug build panics on `(2**40, 2**30)`, a release
/// build wraps and may read a huge shape as an empty array). Every element takes at least
/// one byte, so the product may not exceed the file's length. Only the `shape` tuple is read
/// here (a minimal scan, not a parser: anything unusual is left to npyz's own errors).
fn check_declared_shape(bytes: &[u8], label: &str) -> Result<(), NpyError> {
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
        return Err(NpyError(format!(
            "{label} is truncated inside its .npy header"
        )));
    };
    let depth = bracket_depth(header);
    if depth > MAX_HEADER_DEPTH {
        return Err(NpyError(format!(
            "{label} has a .npy header whose brackets nest {depth} deep; a header describing an \
             array of numbers nests 2"
        )));
    }
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
            return Err(NpyError(format!(
                "{label} declares a shape with {part:?}, not a size"
            )));
        };
        dims.push(d);
        elements = elements.checked_mul(d).ok_or_else(|| {
            NpyError(format!(
                "{label} declares shape {dims:?}…, whose number of elements overflows"
            ))
        })?;
    }
    let data = bytes.len().saturating_sub(start + len) as u64;
    if elements > data {
        return Err(NpyError(format!(
            "{label} declares shape {dims:?} ({elements} elements) but holds only {data} bytes of data"
        )));
    }
    Ok(())
}

/// The deepest bracket nesting a header may have. npyz reads headers with a backtracking
/// grammar (py_literal, on pest) whose time grows exponentially with unclosed brackets: the
/// fuzzer found a 143-byte file with fifteen `{` that took 11 minutes to refuse
/// (`fuzz/tests/__fuzz__/targets__npy/corpus/slow-header-nested-braces`). A plain array's
/// header nests 2 (`{… 'shape': (2, 3)}`); structured dtypes, which the readers refuse
/// anyway, rarely pass 4.
const MAX_HEADER_DEPTH: usize = 4;

/// The deepest nesting of `(`, `[` and `{` in `bytes`, quotes ignored: a bracket inside a
/// string is counted too, which only makes the limit stricter for headers nobody writes.
fn bracket_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for &b in bytes {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn open<'a>(bytes: &'a [u8], label: &str) -> Result<NpyFile<&'a [u8]>, NpyError> {
    check_declared_shape(bytes, label)?;
    NpyFile::new(bytes).map_err(|e| NpyError(format!("{label} is not a .npy file: {e}")))
}

/// The values of `array` as `T`, or an error naming the file (npyz fails on short data).
fn values<T: npyz::Deserialize>(array: NpyFile<&[u8]>, label: &str) -> Result<Vec<T>, NpyError> {
    array
        .into_vec::<T>()
        .map_err(|e| NpyError(format!("{label}: cannot read its values: {e}")))
}

/// Reads a 1-D or 2-D array of f32 or f64 (converted to f32) as a matrix; a 1-D array is
/// one column.
pub fn matrix_from_npy(bytes: &[u8], label: &str) -> Result<Matrix, NpyError> {
    let array = open(bytes, label)?;
    let shape: Vec<u64> = array.shape().to_vec();
    let (rows, cols) = match shape.as_slice() {
        [n] => (*n, 1),
        [r, c] => (*r, *c),
        other => {
            return Err(NpyError(format!(
                "{label} has shape {other:?}; expected a 1-D or 2-D array"
            )))
        }
    };
    // check_declared_shape bounded the product by the file's length, so both fit a usize.
    let (rows, cols) = (rows as usize, cols as usize);
    let data: Vec<f32> = match array.dtype() {
        DType::Plain(t) if t.type_char() == TypeChar::Float && t.size_field() == 4 => {
            values::<f32>(array, label)?
        }
        DType::Plain(t) if t.type_char() == TypeChar::Float && t.size_field() == 8 => {
            values::<f64>(array, label)?
                .into_iter()
                .map(|v| v as f32)
                .collect()
        }
        other => {
            return Err(NpyError(format!(
                "{label} holds {}; expected float32 or float64",
                other.descr()
            )))
        }
    };
    Matrix::new(rows, cols, data, label).map_err(|e| NpyError(e.to_string()))
}

/// Reads a 1-D array of class labels: integers of any width, booleans, or floats that are
/// whole numbers (as NumPy writes labels made with `np.array([...], float)`).
pub fn labels_from_npy(bytes: &[u8], label: &str) -> Result<Vec<i64>, NpyError> {
    let array = open(bytes, label)?;
    let shape: Vec<u64> = array.shape().to_vec();
    if !(shape.len() == 1 || (shape.len() == 2 && shape[1] == 1)) {
        return Err(NpyError(format!(
            "{label} has shape {shape:?}; expected a 1-D array of labels"
        )));
    }
    let DType::Plain(t) = array.dtype() else {
        return Err(NpyError(format!(
            "{label} is a structured array; expected labels"
        )));
    };
    fn widen<T: Into<i64>>(v: Vec<T>) -> Vec<i64> {
        v.into_iter().map(Into::into).collect()
    }
    let labels: Vec<i64> = match (t.type_char(), t.size_field()) {
        (TypeChar::Bool, _) => widen(values::<bool>(array, label)?),
        (TypeChar::Int, 1) => widen(values::<i8>(array, label)?),
        (TypeChar::Int, 2) => widen(values::<i16>(array, label)?),
        (TypeChar::Int, 4) => widen(values::<i32>(array, label)?),
        (TypeChar::Int, 8) => values::<i64>(array, label)?,
        (TypeChar::Uint, 1) => widen(values::<u8>(array, label)?),
        (TypeChar::Uint, 2) => widen(values::<u16>(array, label)?),
        (TypeChar::Uint, 4) => widen(values::<u32>(array, label)?),
        (TypeChar::Float, 4 | 8) => {
            let floats: Vec<f64> = if t.size_field() == 4 {
                values::<f32>(array, label)?
                    .into_iter()
                    .map(f64::from)
                    .collect()
            } else {
                values::<f64>(array, label)?
            };
            floats
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    crate::core::matrix::whole_number(v).ok_or_else(|| {
                        NpyError(format!("{label} entry {i} is {v}; expected a whole number"))
                    })
                })
                .collect::<Result<_, _>>()?
        }
        _ => {
            return Err(NpyError(format!(
                "{label} holds {t}; expected integer, boolean or whole-number labels"
            )))
        }
    };
    Ok(labels)
}

/// `.npy` bytes written by hand, header and all, so tests can make the malformed files no
/// writer would (shapes larger than the data, odd dtypes): the CLI's and the fuzz targets'.
pub mod testing {
    /// A `.npy` file: the magic, `version` (1 or 2), the header dictionary padded with spaces
    /// to a multiple of 64 bytes, then `data` as given.
    pub fn npy_file(version: u8, dict: &str, data: &[u8]) -> Vec<u8> {
        let prefix = if version == 1 { 10 } else { 12 };
        let mut header = dict.to_string();
        while !(prefix + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut out = vec![0x93, b'N', b'U', b'M', b'P', b'Y', version, 0];
        if version == 1 {
            out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(dict: &str, data: &[u8]) -> Vec<u8> {
        testing::npy_file(1, dict, data)
    }

    #[test]
    fn reads_a_matrix_and_labels() {
        let data: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let bytes = npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
            &data,
        );
        let m = matrix_from_npy(&bytes, "--x a.npy").unwrap();
        assert_eq!((m.rows, m.cols), (2, 3));
        assert_eq!(m.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let labels = npy(
            "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }",
            &[0, 1, 7],
        );
        assert_eq!(labels_from_npy(&labels, "--y").unwrap(), vec![0, 1, 7]);
    }

    #[test]
    fn refuses_a_shape_larger_than_the_file() {
        let bytes = npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1073741824), }",
            &[0; 8],
        );
        let err = matrix_from_npy(&bytes, "--x big.npy").unwrap_err();
        assert!(err.to_string().contains("overflows"), "{err}");
        let bytes = npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1000, 1000), }",
            &[0; 8],
        );
        let err = matrix_from_npy(&bytes, "--x big.npy").unwrap_err();
        assert!(err.to_string().contains("holds only 8 bytes"), "{err}");
    }

    #[test]
    fn refuses_deeply_nested_headers_before_parsing_them() {
        // The fuzzer's file (fifteen unclosed braces) took npyz 11 minutes; now it is refused
        // at once, and a structured-looking header of ordinary depth still reaches npyz.
        let started = std::time::Instant::now();
        let bytes = npy(
            "{'descr': {{{{{{{{{{{{{{{'|b1', 'fortran_order': False, 'shape': (3,9, }",
            &[0; 4],
        );
        let err = labels_from_npy(&bytes, "--y deep.npy").unwrap_err();
        assert!(err.to_string().contains("nest 17 deep"), "{err}");
        assert!(started.elapsed().as_secs() < 1);
        let bytes = npy(
            "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }",
            &[0; 4],
        );
        let err = matrix_from_npy(&bytes, "--x structured.npy").unwrap_err();
        assert!(err.to_string().contains("expected float32"), "{err}");
    }

    #[test]
    fn refuses_short_data_and_wrong_types_by_name() {
        let bytes = npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
            &[0; 8],
        );
        let err = matrix_from_npy(&bytes, "--x short.npy").unwrap_err();
        assert!(err.to_string().starts_with("--x short.npy"), "{err}");
        let bytes = npy(
            "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }",
            &[0; 8],
        );
        let err = matrix_from_npy(&bytes, "--x ints.npy").unwrap_err();
        assert!(err.to_string().contains("expected float32"), "{err}");
        let bytes = npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }",
            &0.5f64.to_le_bytes(),
        );
        let err = labels_from_npy(&bytes, "--y half.npy").unwrap_err();
        assert!(err.to_string().contains("whole number"), "{err}");
    }
}
