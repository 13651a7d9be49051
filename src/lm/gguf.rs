//! GGUF (llama.cpp's model file, versions 2 and 3): header, metadata, tensor table, data.
//!
//! Hand-written rather than candle's reader: this one is ~300 lines, borrows the tensor
//! bytes instead of copying them, and checks every count and size against the file's real
//! length before allocating, so a corrupt or hostile file is refused by name (a wasm panic
//! would abort the whole module). BENCHMARKS.md ("Language model runtime") has the numbers
//! behind not taking candle.

use std::collections::BTreeMap;

use super::quant::GgmlType;
use super::LmRuntimeError as E;

const MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;
/// More dimensions than this is not a tensor any Llama file has.
const MAX_DIMS: u32 = 4;

#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Vec<MetaValue>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl MetaValue {
    fn type_id(&self) -> u32 {
        match self {
            MetaValue::U8(_) => 0,
            MetaValue::I8(_) => 1,
            MetaValue::U16(_) => 2,
            MetaValue::I16(_) => 3,
            MetaValue::U32(_) => 4,
            MetaValue::I32(_) => 5,
            MetaValue::F32(_) => 6,
            MetaValue::Bool(_) => 7,
            MetaValue::String(_) => 8,
            MetaValue::Array(_) => 9,
            MetaValue::U64(_) => 10,
            MetaValue::I64(_) => 11,
            MetaValue::F64(_) => 12,
        }
    }

    /// Any integer type as u64 (negative values are None).
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::U8(v) => Some(v as u64),
            MetaValue::U16(v) => Some(v as u64),
            MetaValue::U32(v) => Some(v as u64),
            MetaValue::U64(v) => Some(v),
            MetaValue::I8(v) => u64::try_from(v).ok(),
            MetaValue::I16(v) => u64::try_from(v).ok(),
            MetaValue::I32(v) => u64::try_from(v).ok(),
            MetaValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::F32(v) => Some(v as f64),
            MetaValue::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::String(s) => Some(s),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `dims[0]` is the row length (contiguous), `dims[1]` the row count.
    pub dims: Vec<u64>,
    pub dtype: GgmlType,
    /// Byte range inside the file.
    pub start: usize,
    pub len: usize,
}

impl TensorInfo {
    pub fn elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// A parsed GGUF file: metadata and the tensor table; tensor data stays in the caller's bytes.
#[derive(Clone, Debug)]
pub struct Gguf {
    pub version: u32,
    pub metadata: BTreeMap<String, MetaValue>,
    pub tensors: Vec<TensorInfo>,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], E> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let out = &self.bytes[self.at..end];
                self.at = end;
                Ok(out)
            }
            None => Err(E::Corrupt(format!(
                "{what} at byte {} needs {n} bytes, but the file ends at {} (truncated?)",
                self.at,
                self.bytes.len()
            ))),
        }
    }
    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], E> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }
    fn u32(&mut self, what: &str) -> Result<u32, E> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &str) -> Result<u64, E> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }
    /// A count that must describe at least `min_bytes` bytes per item still in the file.
    fn count(&mut self, what: &str, min_bytes: usize) -> Result<usize, E> {
        let n = self.u64(what)?;
        let fits = usize::try_from(n)
            .ok()
            .filter(|&n| n.saturating_mul(min_bytes.max(1)) <= self.remaining());
        fits.ok_or_else(|| {
            E::Corrupt(format!(
                "{what} is {n}, more than the {} bytes left in the file can hold",
                self.remaining()
            ))
        })
    }
    fn string(&mut self, what: &str) -> Result<String, E> {
        let n = self.count(what, 1)?;
        let bytes = self.take(n, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| E::Corrupt(format!("{what} is not UTF-8")))
    }
    fn value(&mut self, type_id: u32, key: &str, depth: u32) -> Result<MetaValue, E> {
        Ok(match type_id {
            0 => MetaValue::U8(self.array::<1>(key)?[0]),
            1 => MetaValue::I8(self.array::<1>(key)?[0] as i8),
            2 => MetaValue::U16(u16::from_le_bytes(self.array(key)?)),
            3 => MetaValue::I16(i16::from_le_bytes(self.array(key)?)),
            4 => MetaValue::U32(self.u32(key)?),
            5 => MetaValue::I32(i32::from_le_bytes(self.array(key)?)),
            6 => MetaValue::F32(f32::from_le_bytes(self.array(key)?)),
            7 => MetaValue::Bool(self.array::<1>(key)?[0] != 0),
            8 => MetaValue::String(self.string(key)?),
            9 => {
                if depth > 2 {
                    return Err(E::Corrupt(format!(
                        "metadata {key:?} nests arrays too deeply"
                    )));
                }
                let item_type = self.u32(key)?;
                let min = match item_type {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    // A string is at least its 8-byte length, an array its 12-byte header.
                    8 | 10..=12 => 8,
                    9 => 12,
                    other => {
                        return Err(E::Corrupt(format!(
                            "metadata {key:?} is an array of unknown type {other}"
                        )))
                    }
                };
                let n = self.count(key, min)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(item_type, key, depth + 1)?);
                }
                MetaValue::Array(items)
            }
            10 => MetaValue::U64(self.u64(key)?),
            11 => MetaValue::I64(i64::from_le_bytes(self.array(key)?)),
            12 => MetaValue::F64(f64::from_le_bytes(self.array(key)?)),
            other => {
                return Err(E::Corrupt(format!(
                    "metadata {key:?} has unknown value type {other}"
                )))
            }
        })
    }
}

impl Gguf {
    /// Parses the header and tensor table of `bytes` and checks that every tensor's data
    /// lies inside the file.
    pub fn parse(bytes: &[u8]) -> Result<Gguf, E> {
        let mut r = Reader { bytes, at: 0 };
        if r.take(4, "the magic number")? != MAGIC {
            return Err(E::NotGguf);
        }
        let version = r.u32("the version")?;
        if !(2..=3).contains(&version) {
            return Err(E::Unsupported(format!(
                "GGUF version {version} (latentlab reads versions 2 and 3)"
            )));
        }
        // A tensor-table entry is at least 8 + 4 + 8 + 4 + 8 bytes, a metadata entry 8 + 4 + 1.
        let n_tensors = r.count("the tensor count", 32)?;
        let n_meta = r.count("the metadata count", 13)?;
        let mut metadata = BTreeMap::new();
        for _ in 0..n_meta {
            let key = r.string("a metadata key")?;
            let type_id = r.u32(&key)?;
            let value = r.value(type_id, &key, 0)?;
            metadata.insert(key, value);
        }
        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(v) => v
                .as_u64()
                .filter(|a| a.is_power_of_two())
                .ok_or_else(|| E::Corrupt(format!("general.alignment is {v:?}")))?,
        };
        let mut raw = Vec::with_capacity(n_tensors);
        for _ in 0..n_tensors {
            let name = r.string("a tensor name")?;
            let n_dims = r.u32(&name)?;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return Err(E::Corrupt(format!(
                    "tensor {name:?} has {n_dims} dimensions (1 to {MAX_DIMS} expected)"
                )));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(r.u64(&name)?);
            }
            let type_id = r.u32(&name)?;
            let dtype = GgmlType::from_id(type_id).ok_or_else(|| {
                E::Unsupported(format!(
                    "tensor {name:?} has ggml type {type_id} ({}); latentlab runs {}",
                    GgmlType::name_of(type_id),
                    GgmlType::SUPPORTED
                ))
            })?;
            let offset = r.u64(&name)?;
            raw.push((name, dims, dtype, offset));
        }
        let data_start = (r.at as u64).div_ceil(alignment) * alignment;
        let mut tensors = Vec::with_capacity(raw.len());
        for (name, dims, dtype, offset) in raw {
            let len = dtype.byte_len(&dims).ok_or_else(|| {
                E::Corrupt(format!(
                    "tensor {name:?} of shape {dims:?} is not a whole number of {} blocks or overflows",
                    dtype.name()
                ))
            })?;
            let start = data_start.checked_add(offset);
            let end = start.and_then(|s| s.checked_add(len));
            match (start, end) {
                (Some(start), Some(end)) if end <= bytes.len() as u64 => tensors.push(TensorInfo {
                    name,
                    dims,
                    dtype,
                    start: start as usize,
                    len: len as usize,
                }),
                _ => {
                    return Err(E::Corrupt(format!(
                        "tensor {name:?} ({len} bytes at offset {offset}) lies beyond the end of the file ({} bytes; truncated?)",
                        bytes.len()
                    )))
                }
            }
        }
        Ok(Gguf {
            version,
            metadata,
            tensors,
        })
    }

    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.get(key)
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

/// Writes GGUF version 3 files: the tests' tiny random models, and any tool that needs one.
#[derive(Default)]
pub struct GgufWriter {
    metadata: Vec<(String, MetaValue)>,
    tensors: Vec<(String, Vec<u64>, GgmlType, Vec<u8>)>,
}

impl GgufWriter {
    pub fn meta(&mut self, key: &str, value: MetaValue) -> &mut Self {
        self.metadata.push((key.to_string(), value));
        self
    }

    /// `data` must already be encoded in `dtype` (see `quant::quantize`).
    pub fn tensor(
        &mut self,
        name: &str,
        dims: &[u64],
        dtype: GgmlType,
        data: Vec<u8>,
    ) -> &mut Self {
        self.tensors
            .push((name.to_string(), dims.to_vec(), dtype, data));
        self
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        fn string(out: &mut Vec<u8>, s: &str) {
            out.extend((s.len() as u64).to_le_bytes());
            out.extend(s.as_bytes());
        }
        fn value(out: &mut Vec<u8>, v: &MetaValue) {
            match v {
                MetaValue::U8(x) => out.push(*x),
                MetaValue::I8(x) => out.push(*x as u8),
                MetaValue::U16(x) => out.extend(x.to_le_bytes()),
                MetaValue::I16(x) => out.extend(x.to_le_bytes()),
                MetaValue::U32(x) => out.extend(x.to_le_bytes()),
                MetaValue::I32(x) => out.extend(x.to_le_bytes()),
                MetaValue::F32(x) => out.extend(x.to_le_bytes()),
                MetaValue::Bool(x) => out.push(*x as u8),
                MetaValue::String(s) => string(out, s),
                MetaValue::Array(items) => {
                    let item_type = items.first().map_or(4, MetaValue::type_id);
                    out.extend(item_type.to_le_bytes());
                    out.extend((items.len() as u64).to_le_bytes());
                    for item in items {
                        value(out, item);
                    }
                }
                MetaValue::U64(x) => out.extend(x.to_le_bytes()),
                MetaValue::I64(x) => out.extend(x.to_le_bytes()),
                MetaValue::F64(x) => out.extend(x.to_le_bytes()),
            }
        }
        let mut out = Vec::new();
        out.extend(MAGIC);
        out.extend(3u32.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend((self.metadata.len() as u64).to_le_bytes());
        for (key, v) in &self.metadata {
            string(&mut out, key);
            out.extend(v.type_id().to_le_bytes());
            value(&mut out, v);
        }
        let mut offset = 0u64;
        let mut offsets = Vec::new();
        for (name, dims, dtype, data) in &self.tensors {
            string(&mut out, name);
            out.extend((dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend(d.to_le_bytes());
            }
            out.extend(dtype.id().to_le_bytes());
            out.extend(offset.to_le_bytes());
            offsets.push(offset);
            offset = (offset + data.len() as u64).div_ceil(DEFAULT_ALIGNMENT) * DEFAULT_ALIGNMENT;
        }
        let data_start = (out.len() as u64).div_ceil(DEFAULT_ALIGNMENT) * DEFAULT_ALIGNMENT;
        out.resize(data_start as usize, 0);
        for ((_, _, _, data), off) in self.tensors.iter().zip(offsets) {
            out.resize((data_start + off) as usize, 0);
            out.extend(data);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Vec<u8> {
        let mut w = GgufWriter::default();
        w.meta("general.architecture", MetaValue::String("llama".into()))
            .meta(
                "tokenizer.ggml.tokens",
                MetaValue::Array(vec![
                    MetaValue::String("a".into()),
                    MetaValue::String("b".into()),
                ]),
            )
            .tensor("t", &[2, 3], GgmlType::F32, vec![0u8; 24])
            .tensor("u", &[32], GgmlType::Q8_0, vec![1u8; 34]);
        w.to_bytes()
    }

    #[test]
    fn written_files_read_back() {
        let bytes = small();
        let g = Gguf::parse(&bytes).unwrap();
        assert_eq!(g.version, 3);
        assert_eq!(
            g.get("general.architecture").unwrap().as_str(),
            Some("llama")
        );
        let t = g.tensor("t").unwrap();
        assert_eq!((t.dims.clone(), t.len), (vec![2, 3], 24));
        let u = g.tensor("u").unwrap();
        assert_eq!(u.start % 32, 0);
        assert_eq!(&bytes[u.start..u.start + u.len], &[1u8; 34][..]);
    }

    #[test]
    fn every_truncation_is_refused_by_name() {
        let bytes = small();
        for n in 0..bytes.len() - 1 {
            match Gguf::parse(&bytes[..n]) {
                Err(E::Corrupt(_)) | Err(E::NotGguf) => {}
                other => panic!("{n} bytes: {other:?}"),
            }
        }
    }

    #[test]
    fn huge_counts_and_sizes_are_refused_before_allocating() {
        let mut bytes = small();
        // The tensor count (bytes 8..16) claims 2^60 tensors.
        bytes[8..16].copy_from_slice(&(1u64 << 60).to_le_bytes());
        let err = Gguf::parse(&bytes).unwrap_err().to_string();
        assert!(
            err.contains("the tensor count is 1152921504606846976"),
            "{err}"
        );
        let mut w = GgufWriter::default();
        w.tensor("big", &[1 << 40, 1 << 30], GgmlType::F32, vec![]);
        let err = Gguf::parse(&w.to_bytes()).unwrap_err().to_string();
        assert!(err.contains("\"big\""), "{err}");
        let mut w = GgufWriter::default();
        w.tensor("q", &[33], GgmlType::Q4_1, vec![0; 20]);
        let err = Gguf::parse(&w.to_bytes()).unwrap_err().to_string();
        assert!(err.contains("whole number of Q4_1 blocks"), "{err}");
    }

    #[test]
    fn unknown_types_are_named() {
        assert!(matches!(Gguf::parse(b"GGML\x03\0\0\0"), Err(E::NotGguf)));
        let mut bytes = small();
        bytes[4..8].copy_from_slice(&9u32.to_le_bytes());
        assert!(Gguf::parse(&bytes)
            .unwrap_err()
            .to_string()
            .contains("version 9"));
        let mut w = GgufWriter::default();
        w.tensor("k", &[256], GgmlType::F32, vec![0; 1024]);
        let mut bytes = w.to_bytes();
        // The tensor's type id sits after its name (8 + 1), n_dims (4) and one dim (8).
        let at = 24 + 9 + 4 + 8;
        bytes[at..at + 4].copy_from_slice(&12u32.to_le_bytes());
        let err = Gguf::parse(&bytes).unwrap_err().to_string();
        assert!(err.contains("ggml type 12 (Q4_K)"), "{err}");
    }
}
