//! Text encoders: tokenizer (the `tokenizers` crate) + ONNX graph + pooling.

use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};
use tract_onnx::prelude::Tensor;

use super::runtime::{OnnxModel, Threads};
use super::{check_sha256, EncodeError, Matrix, ModelEntry, ModelKind, Pooling};

/// Which tokenizer output an ONNX input takes.
#[derive(Clone, Copy, Debug)]
enum Feed {
    Ids,
    Mask,
    TypeIds,
}

pub struct TextEncoder {
    entry: ModelEntry,
    model: OnnxModel,
    tokenizer: Tokenizer,
    feeds: Vec<Feed>,
    output: usize,
    threads: Threads,
}

impl TextEncoder {
    /// Loads a text model and its `tokenizer.json` from bytes, checking both against the
    /// manifest's sha256 (when it gives one) and the graph against the manifest's names.
    pub fn from_bytes(
        entry: &ModelEntry,
        model: &[u8],
        tokenizer: &[u8],
    ) -> Result<TextEncoder, EncodeError> {
        entry.validate()?;
        if entry.kind != ModelKind::Text {
            return Err(EncodeError::Manifest(format!(
                "model {:?} is not a text model",
                entry.name
            )));
        }
        check_sha256(&entry.file, model, &entry.sha256)?;
        let tokenizer_name = entry.tokenizer.as_deref().unwrap_or("tokenizer");
        check_sha256(tokenizer_name, tokenizer, &entry.tokenizer_sha256)?;

        let mut tokenizer =
            Tokenizer::from_bytes(tokenizer).map_err(|e| EncodeError::Tokenizer(e.to_string()))?;
        // Pad each batch only to its longest text (tokenizer files often pad to a fixed
        // 128), keeping the file's own pad token; truncate at the model's limit.
        let mut padding = tokenizer.get_padding().cloned().unwrap_or_default();
        padding.strategy = PaddingStrategy::BatchLongest;
        tokenizer.with_padding(Some(PaddingParams { ..padding }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: entry.max_tokens,
                ..Default::default()
            }))
            .map_err(|e| EncodeError::Tokenizer(e.to_string()))?;

        let model = OnnxModel::from_bytes(&entry.name, model, None)?;
        for spec in &entry.inputs {
            model.require_input(&spec.name)?;
        }
        model.require_input("input_ids")?;
        let feeds = model
            .input_names()
            .iter()
            .map(|name| match name.as_str() {
                "input_ids" => Ok(Feed::Ids),
                "attention_mask" => Ok(Feed::Mask),
                "token_type_ids" => Ok(Feed::TypeIds),
                other => Err(EncodeError::UnknownInput {
                    what: entry.name.clone(),
                    name: other.to_string(),
                }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let output = model.output_index(&entry.embedding_output)?;
        Ok(TextEncoder {
            entry: entry.clone(),
            model,
            tokenizer,
            feeds,
            output,
            threads: Threads::default(),
        })
    }

    /// Runs on `threads` threads from now on (0: one per core; a new encoder uses one): each
    /// of tract's operations is split over them. Embeddings do not depend on the count.
    /// Natively only: wasm32 has no threads.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn set_threads(&mut self, threads: usize) -> Result<(), EncodeError> {
        self.threads = Threads::new(&self.entry.name, threads)?;
        Ok(())
    }

    /// The threads it runs on.
    pub fn threads(&self) -> usize {
        self.threads.count()
    }

    pub fn entry(&self) -> &ModelEntry {
        &self.entry
    }

    pub fn dim(&self) -> usize {
        self.entry.embedding_dim
    }

    /// Token ids of each text as this encoder sees them (special tokens included).
    pub fn token_ids(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, EncodeError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EncodeError::Tokenizer(e.to_string()))?;
        Ok(encodings
            .iter()
            .map(|e| {
                e.get_ids()
                    .iter()
                    .zip(e.get_attention_mask())
                    .filter(|(_, m)| **m == 1)
                    .map(|(id, _)| *id)
                    .collect()
            })
            .collect())
    }

    /// Embeds texts in one batch: one L2-normalised row per text.
    pub fn embed(&self, texts: &[&str]) -> Result<Matrix, EncodeError> {
        self.threads.split_ops(|| self.embed_on_this_thread(texts))
    }

    fn embed_on_this_thread(&self, texts: &[&str]) -> Result<Matrix, EncodeError> {
        if texts.is_empty() {
            return Err(EncodeError::NothingToEncode("text"));
        }
        if let Some(index) = texts.iter().position(|t| t.trim().is_empty()) {
            return Err(EncodeError::EmptyText { index });
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EncodeError::Tokenizer(e.to_string()))?;
        let batch = encodings.len();
        let seq = encodings.iter().map(|e| e.len()).max().unwrap_or(0);
        let gather = |f: fn(&tokenizers::Encoding) -> &[u32]| -> Vec<i64> {
            encodings
                .iter()
                .flat_map(|e| {
                    let mut v: Vec<i64> = f(e).iter().map(|&x| x as i64).collect();
                    v.resize(seq, 0);
                    v
                })
                .collect()
        };
        let ids = gather(|e| e.get_ids());
        let mask = gather(|e| e.get_attention_mask());
        let types = gather(|e| e.get_type_ids());
        let tensor = |values: &[i64]| {
            Tensor::from_shape(&[batch, seq], values).map_err(|e| EncodeError::Inference {
                what: self.entry.name.clone(),
                message: format!("{e:#}"),
            })
        };
        let inputs = self
            .feeds
            .iter()
            .map(|feed| match feed {
                Feed::Ids => tensor(&ids),
                Feed::Mask => tensor(&mask),
                Feed::TypeIds => tensor(&types),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut outputs = self.model.run(inputs, &[self.output])?;
        let (shape, values) = outputs.remove(0);
        let dim = self.entry.embedding_dim;
        let pooled = match (self.entry.pooling, shape.as_slice()) {
            (Pooling::Mean, &[b, s, d]) if b == batch && s == seq && d == dim => {
                mean_pool(&values, &mask, batch, seq, dim)
            }
            (Pooling::Cls, &[b, s, d]) if b == batch && s == seq && d == dim => (0..batch)
                .flat_map(|i| values[i * seq * dim..i * seq * dim + dim].to_vec())
                .collect(),
            (Pooling::None, &[b, d]) if b == batch && d == dim => values,
            (pooling, shape) => {
                return Err(EncodeError::Manifest(format!(
                    "model {:?}: output {:?} has shape {shape:?}, which {pooling:?} pooling to {dim} dimensions cannot use",
                    self.entry.name, self.entry.embedding_output
                )))
            }
        };
        let mut out = Matrix {
            rows: batch,
            cols: dim,
            data: pooled,
        };
        if self.entry.normalize {
            out.normalize_rows();
        }
        Ok(out)
    }

    /// Embeds many texts in batches of `batch_size`, reporting (done, total) after each; rows
    /// in the texts' order.
    ///
    /// Batches are made of texts of the same length in tokens, longest first: a batch is
    /// padded to its longest text, so mixing lengths made the model run on padding (as
    /// sentence-transformers' `encode` does with its length-sorted batches of 32). Each text's
    /// row is its own whatever its batch: the same bits as the text embedded alone (tested).
    pub fn embed_batched(
        &self,
        texts: &[&str],
        batch_size: usize,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Matrix, EncodeError> {
        if texts.is_empty() {
            return Err(EncodeError::NothingToEncode("text"));
        }
        if let Some(index) = texts.iter().position(|t| t.trim().is_empty()) {
            return Err(EncodeError::EmptyText { index });
        }
        let lengths: Vec<usize> = self.token_ids(texts)?.iter().map(Vec::len).collect();
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
        let dim = self.dim();
        let mut all = Matrix::zeros(texts.len(), dim);
        let mut done = 0;
        // Batches of equal token lengths, no padding: a run of the sorted order with one length,
        // cut into batches of at most `batch_size`. Over the 430 Tux Paint captions (lengths 4
        // to 43), batches of 32 of mixed length carried 26% padding rows (4,408 rows for 3,505
        // tokens), all of them through every matrix product; twice as many batches cost less
        // than those rows, and fewer batches with a little padding (chosen to minimise padded
        // rows plus a cost per batch) were no faster (BENCHMARKS.md, "Native encoders").
        let batches = order
            .chunk_by(|&a, &b| lengths[a] == lengths[b])
            .flat_map(|same_length| same_length.chunks(batch_size.max(1)));
        // One batch after another, each with tract's operations split over the threads:
        // batches side by side (one thread each) were no faster in the measurement that
        // chose (BENCHMARKS.md, "Native encoders, 2026-12-06"), and this keeps the progress
        // reports in order.
        for chunk in batches {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
            let part = self.embed(&batch)?;
            for (row, &i) in chunk.iter().enumerate() {
                all.data[i * dim..(i + 1) * dim]
                    .copy_from_slice(&part.data[row * dim..(row + 1) * dim]);
            }
            done += chunk.len();
            progress(done, texts.len());
        }
        Ok(all)
    }
}

/// Mean of the token states over the attention mask, as sentence-transformers pools.
fn mean_pool(states: &[f32], mask: &[i64], batch: usize, seq: usize, dim: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; batch * dim];
    for b in 0..batch {
        let mut count = 0.0f32;
        let acc = &mut out[b * dim..(b + 1) * dim];
        for t in 0..seq {
            if mask[b * seq + t] == 0 {
                continue;
            }
            count += 1.0;
            let row = &states[(b * seq + t) * dim..(b * seq + t + 1) * dim];
            acc.iter_mut().zip(row).for_each(|(a, v)| *a += v);
        }
        let count = count.max(1e-9);
        acc.iter_mut().for_each(|a| *a /= count);
    }
    out
}
