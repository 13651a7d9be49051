//! The index's byte format (version 1), the same from Rust, the CLI, Python and JS:
//!
//! ```text
//! offset  size  content
//! 0       8     magic "LLINDEX\0"
//! 8       4     format version, u32 little-endian (1)
//! 12      4     header length H, u32 little-endian
//! 16      H     header, UTF-8 JSON: {"model": string, "dim": number|null, "count": number,
//!               "storage": "f32"|"f16"|"int8", "ids": [string], "metadata": [any|null]}
//! 16+H    V     vectors, row-major little-endian: f32 (count·dim·4 bytes), f16 (count·dim·2),
//!               or int8: count f32 scales, then count·dim signed bytes
//! 16+H+V  32    sha256 of every byte before it
//! ```
//!
//! Vectors are stored normalised. Loading checks everything before allocating the vectors
//! (sizes against the bytes actually there and the memory budget) and names what is wrong.

use half::f16;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::storage::{Storage, Vectors};
use super::{EmbeddingIndex, IndexError};
use crate::core::budget::checked_len;

pub const MAGIC: &[u8; 8] = b"LLINDEX\0";
pub const VERSION: u32 = 1;
const CHECKSUM: usize = 32;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    model: String,
    dim: Option<usize>,
    count: usize,
    storage: Storage,
    ids: Vec<String>,
    metadata: Vec<Option<Value>>,
}

fn format_error(what: impl Into<String>) -> IndexError {
    IndexError::Format(what.into())
}

impl EmbeddingIndex {
    /// The index in the byte format above.
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&Header {
            model: self.model.clone(),
            dim: self.dim,
            count: self.len(),
            storage: self.storage(),
            ids: self.ids.clone(),
            metadata: self.metadata.clone(),
        })
        .expect("a header of strings and JSON values serialises");
        let mut out = Vec::with_capacity(16 + header.len() + CHECKSUM);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        match &self.vectors {
            Vectors::F32(data) => data.iter().for_each(|x| out.extend(x.to_le_bytes())),
            Vectors::F16(data) => data.iter().for_each(|x| out.extend(x.to_le_bytes())),
            Vectors::Int8 { codes, scales } => {
                scales.iter().for_each(|x| out.extend(x.to_le_bytes()));
                out.extend(codes.iter().map(|&c| c as u8));
            }
        }
        let sum = Sha256::digest(&out);
        out.extend_from_slice(&sum);
        out
    }

    /// An index from `to_bytes`' output. With `expected_model`, an index of another model
    /// is refused by name.
    pub fn from_bytes(
        bytes: &[u8],
        expected_model: Option<&str>,
    ) -> Result<EmbeddingIndex, IndexError> {
        if bytes.len() < 16 + CHECKSUM || &bytes[..8] != MAGIC {
            return Err(format_error(format!(
                "{} bytes that do not start with latentlab's index magic \"LLINDEX\"",
                bytes.len()
            )));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != VERSION {
            return Err(format_error(format!(
                "format version {version}, but this build reads version {VERSION}"
            )));
        }
        let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM);
        if Sha256::digest(body).as_slice() != sum {
            return Err(format_error(
                "the checksum does not match: the bytes are damaged or cut short",
            ));
        }
        let header_len = u32::from_le_bytes(body[12..16].try_into().expect("4 bytes")) as usize;
        let header_bytes = body
            .get(16..16usize.saturating_add(header_len))
            .ok_or_else(|| {
                format_error(format!("a header of {header_len} bytes runs past the end"))
            })?;
        let header: Header = serde_json::from_slice(header_bytes)
            .map_err(|e| format_error(format!("the header is not valid: {e}")))?;
        if let Some(expected) = expected_model {
            if expected != header.model {
                return Err(IndexError::Model {
                    expected: expected.to_string(),
                    found: header.model,
                });
            }
        }
        if header.ids.len() != header.count || header.metadata.len() != header.count {
            return Err(format_error(format!(
                "the header counts {} items but lists {} ids and {} metadata entries",
                header.count,
                header.ids.len(),
                header.metadata.len()
            )));
        }
        let dim = match header.dim {
            Some(0) => return Err(format_error("the header gives dimension 0")),
            None if header.count > 0 => {
                return Err(format_error("the header lists items but no dimension"))
            }
            d => d,
        };
        let values = checked_len(
            "the index's vectors",
            &[("items", header.count), ("dimensions", dim.unwrap_or(0))],
            header.storage.element_bytes(),
        )?;
        let vector_bytes = values * header.storage.element_bytes()
            + if header.storage == Storage::Int8 {
                4 * header.count
            } else {
                0
            };
        let data = &body[16 + header_len..];
        if data.len() != vector_bytes {
            return Err(format_error(format!(
                "{} items of {} dimensions in {} need {vector_bytes} bytes of vectors, but {} are there",
                header.count,
                dim.unwrap_or(0),
                header.storage,
                data.len()
            )));
        }
        let vectors = match header.storage {
            Storage::F32 => Vectors::F32(
                data.chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                    .collect(),
            ),
            Storage::F16 => Vectors::F16(
                data.chunks_exact(2)
                    .map(|b| f16::from_le_bytes(b.try_into().expect("2 bytes")))
                    .collect(),
            ),
            Storage::Int8 => {
                let (scales, codes) = data.split_at(4 * header.count);
                Vectors::Int8 {
                    scales: scales
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                        .collect(),
                    codes: codes.iter().map(|&b| b as i8).collect(),
                }
            }
        };
        let mut index = EmbeddingIndex::new(&header.model, dim, header.storage)?;
        index.vectors = vectors;
        for (position, id) in header.ids.iter().enumerate() {
            if id.is_empty() {
                return Err(format_error(format!("id {position} is empty")));
            }
            if index.rows.insert(id.clone(), position).is_some() {
                return Err(format_error(format!("id {id:?} appears twice")));
            }
        }
        index.ids = header.ids;
        index.metadata = header
            .metadata
            .into_iter()
            .map(|m| m.filter(|v| !v.is_null()))
            .collect();
        if let Some(dim) = dim {
            for row in 0..index.len() {
                let v = index.vectors.row(row, dim);
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                if !(norm - 1.0).abs().lt(&0.02) {
                    return Err(format_error(format!(
                        "the vector of id {:?} has length {norm}, not 1",
                        index.ids[row]
                    )));
                }
            }
        }
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::index::SearchOptions;
    use serde_json::json;

    fn sample(storage: Storage) -> EmbeddingIndex {
        let mut index = EmbeddingIndex::new("minilm-l6-v2", None, storage).unwrap();
        let ids: Vec<String> = ["cat", "dog", "car"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        index
            .add(
                &ids,
                &[1.0, 0.2, 0.0, 0.9, 0.3, 0.1, -0.2, 0.1, 1.0],
                vec![Some(json!({"legs": 4})), None, Some(json!("wheels"))],
            )
            .unwrap();
        index
    }

    #[test]
    fn bytes_round_trip_every_storage() {
        for storage in [Storage::F32, Storage::F16, Storage::Int8] {
            let index = sample(storage);
            let bytes = index.to_bytes();
            assert_eq!(&bytes[..8], MAGIC);
            let back = EmbeddingIndex::from_bytes(&bytes, Some("minilm-l6-v2")).unwrap();
            assert_eq!(back, index, "{storage}");
            let q = [1.0, 0.0, 0.0];
            let opts = SearchOptions {
                k: 3,
                ..Default::default()
            };
            assert_eq!(back.search(&q, opts, None), index.search(&q, opts, None));
        }
        let empty = EmbeddingIndex::new("m", None, Storage::F32).unwrap();
        assert_eq!(
            EmbeddingIndex::from_bytes(&empty.to_bytes(), None).unwrap(),
            empty
        );
    }

    #[test]
    fn damaged_or_foreign_bytes_are_refused_by_name() {
        let bytes = sample(Storage::Int8).to_bytes();
        let e = EmbeddingIndex::from_bytes(&bytes, Some("clip")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "this index holds embeddings of \"minilm-l6-v2\", not of \"clip\""
        );
        for at in [20, bytes.len() / 2, bytes.len() - 40, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 1;
            let e = EmbeddingIndex::from_bytes(&bad, None)
                .unwrap_err()
                .to_string();
            assert!(e.contains("checksum does not match"), "byte {at}: {e}");
        }
        let e = EmbeddingIndex::from_bytes(&bytes[..bytes.len() - 5], None).unwrap_err();
        assert!(e.to_string().contains("checksum"), "{e}");
        let e =
            EmbeddingIndex::from_bytes(b"PK\x03\x04 not an index at all, a zip file......", None);
        assert!(e.unwrap_err().to_string().contains("magic"));
        let mut future = bytes.clone();
        future[8] = 2;
        let e = EmbeddingIndex::from_bytes(&future, None).unwrap_err();
        assert!(e.to_string().contains("format version 2"), "{e}");
        // A well-formed file (right checksum) whose header lies about its sizes.
        let forge = |header: &str, vectors: &[u8]| {
            let mut out = MAGIC.to_vec();
            out.extend(VERSION.to_le_bytes());
            out.extend((header.len() as u32).to_le_bytes());
            out.extend(header.as_bytes());
            out.extend(vectors);
            let sum = Sha256::digest(&out);
            out.extend(sum);
            EmbeddingIndex::from_bytes(&out, None)
                .unwrap_err()
                .to_string()
        };
        let e = forge(
            r#"{"model":"m","dim":4000000,"count":4000000,"storage":"f32","ids":[],"metadata":[]}"#,
            &[],
        );
        assert!(e.contains("lists 0 ids"), "{e}");
        let e = forge(
            r#"{"model":"m","dim":2,"count":1,"storage":"f32","ids":["a"],"metadata":[null]}"#,
            &[0; 4],
        );
        assert!(
            e.contains("need 8 bytes of vectors, but 4 are there"),
            "{e}"
        );
        let e = forge(
            r#"{"model":"m","dim":1,"count":2,"storage":"f32","ids":["a","a"],"metadata":[null,null]}"#,
            &[0, 0, 128, 63, 0, 0, 128, 63],
        );
        assert!(e.contains("\"a\" appears twice"), "{e}");
        let e = forge(
            r#"{"model":"m","dim":1,"count":1,"storage":"f32","ids":["a"],"metadata":[null]}"#,
            &[0; 4],
        );
        assert!(e.contains("has length 0"), "{e}");
        let e = forge(
            r#"{"model":"m","dim":1,"count":0,"storage":"q4","ids":[],"metadata":[]}"#,
            &[],
        );
        assert!(e.contains("header is not valid"), "{e}");
    }
}
