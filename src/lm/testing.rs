//! A tiny Llama GGUF with random weights, written in memory: what fast tests (Rust, CLI and
//! wasm) run instead of the 98 MB model. Its `general.name` says it is random; its output
//! is noise by design, only its arithmetic is checked.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use crate::core::lm::byte_level_chars;

use super::gguf::{GgufWriter, MetaValue};
use super::quant::{quantize, GgmlType};

/// Shapes of the tiny model.
pub struct TinyShape {
    pub layers: usize,
    pub embedding: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub ffn: usize,
    pub context: usize,
    /// Type of the matrices (the token embedding is always Q8_0, as SmolLM2's).
    pub matrices: GgmlType,
}

impl Default for TinyShape {
    fn default() -> Self {
        TinyShape {
            layers: 2,
            embedding: 64,
            heads: 4,
            kv_heads: 2,
            ffn: 96,
            context: 256,
            matrices: GgmlType::Q4_1,
        }
    }
}

/// The special tokens, then the 256 byte tokens, then a few merges.
const SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
const MERGES: [(&str, &str); 5] = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("Ġ", "a")];

/// A random tiny Llama as GGUF bytes.
pub fn random_tiny_llama(seed: u64, shape: &TinyShape) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut tokens: Vec<String> = SPECIALS.iter().map(|s| s.to_string()).collect();
    tokens.extend(byte_level_chars().iter().map(|c| c.to_string()));
    tokens.extend(MERGES.iter().map(|(a, b)| format!("{a}{b}")));
    let mut token_types = vec![3i32; SPECIALS.len()];
    token_types.resize(tokens.len(), 1);
    let vocab = tokens.len();
    let s = shape;
    let hd = s.embedding / s.heads;
    let strings = |v: Vec<String>| MetaValue::Array(v.into_iter().map(MetaValue::String).collect());
    let mut w = GgufWriter::default();
    w.meta("general.architecture", MetaValue::String("llama".into()))
        .meta(
            "general.name",
            MetaValue::String("tiny random llama (untrained, for tests)".into()),
        )
        .meta("llama.block_count", MetaValue::U32(s.layers as u32))
        .meta("llama.embedding_length", MetaValue::U32(s.embedding as u32))
        .meta("llama.attention.head_count", MetaValue::U32(s.heads as u32))
        .meta(
            "llama.attention.head_count_kv",
            MetaValue::U32(s.kv_heads as u32),
        )
        .meta("llama.feed_forward_length", MetaValue::U32(s.ffn as u32))
        .meta("llama.context_length", MetaValue::U32(s.context as u32))
        .meta("llama.rope.freq_base", MetaValue::F32(10_000.0))
        .meta(
            "llama.attention.layer_norm_rms_epsilon",
            MetaValue::F32(1e-5),
        )
        .meta("tokenizer.ggml.model", MetaValue::String("gpt2".into()))
        .meta("tokenizer.ggml.pre", MetaValue::String("smollm".into()))
        .meta("tokenizer.ggml.tokens", strings(tokens))
        .meta(
            "tokenizer.ggml.merges",
            strings(MERGES.iter().map(|(a, b)| format!("{a} {b}")).collect()),
        )
        .meta(
            "tokenizer.ggml.token_type",
            MetaValue::Array(token_types.into_iter().map(MetaValue::I32).collect()),
        )
        .meta("tokenizer.ggml.bos_token_id", MetaValue::U32(1))
        .meta("tokenizer.ggml.eos_token_id", MetaValue::U32(2));
    let mut random = |n: usize, scale: f32| -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-scale..scale)).collect()
    };
    let mut matrix = |w: &mut GgufWriter, name: &str, rows: usize, cols: usize, dtype: GgmlType| {
        let values = random(rows * cols, 1.0 / (cols as f32).sqrt() * 1.7);
        w.tensor(
            name,
            &[cols as u64, rows as u64],
            dtype,
            quantize(dtype, &values),
        );
    };
    let kv = s.kv_heads * hd;
    matrix(
        &mut w,
        "token_embd.weight",
        vocab,
        s.embedding,
        GgmlType::Q8_0,
    );
    for l in 0..s.layers {
        let p = format!("blk.{l}.");
        let norm: Vec<f32> = (0..s.embedding)
            .map(|i| 0.8 + (i % 5) as f32 * 0.1)
            .collect();
        w.tensor(
            &format!("{p}attn_norm.weight"),
            &[s.embedding as u64],
            GgmlType::F32,
            quantize(GgmlType::F32, &norm),
        );
        w.tensor(
            &format!("{p}ffn_norm.weight"),
            &[s.embedding as u64],
            GgmlType::F32,
            quantize(GgmlType::F32, &norm),
        );
        matrix(
            &mut w,
            &format!("{p}attn_q.weight"),
            s.embedding,
            s.embedding,
            s.matrices,
        );
        matrix(
            &mut w,
            &format!("{p}attn_k.weight"),
            kv,
            s.embedding,
            s.matrices,
        );
        matrix(
            &mut w,
            &format!("{p}attn_v.weight"),
            kv,
            s.embedding,
            s.matrices,
        );
        matrix(
            &mut w,
            &format!("{p}attn_output.weight"),
            s.embedding,
            s.embedding,
            s.matrices,
        );
        matrix(
            &mut w,
            &format!("{p}ffn_gate.weight"),
            s.ffn,
            s.embedding,
            s.matrices,
        );
        matrix(
            &mut w,
            &format!("{p}ffn_up.weight"),
            s.ffn,
            s.embedding,
            s.matrices,
        );
        matrix(
            &mut w,
            &format!("{p}ffn_down.weight"),
            s.embedding,
            s.ffn,
            s.matrices,
        );
    }
    let norm = vec![1.0f32; s.embedding];
    w.tensor(
        "output_norm.weight",
        &[s.embedding as u64],
        GgmlType::F32,
        quantize(GgmlType::F32, &norm),
    );
    w.to_bytes()
}
