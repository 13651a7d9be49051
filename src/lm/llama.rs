//! The Llama forward pass over GGUF weights (SmolLM2 and its kin): grouped-query attention,
//! RoPE on adjacent pairs (llama.cpp's converter permutes Q/K so that the file expects its
//! "normal" mode), RMSNorm, SwiGLU, tied or separate output embeddings.
//!
//! The KV cache is a list of fixed-size blocks behind `Arc`s: cloning a state (a beam fork)
//! copies pointers, and a write copies only the one block it lands in if another state
//! still shares it. Prompts are processed in chunks of `CHUNK` tokens, which bounds the
//! scratch memory whatever the prompt's length.

use std::sync::Arc;

use super::gguf::Gguf;
use super::quant::{dequantize, dot, Activations, GgmlType, QMatrix};
use super::LmRuntimeError as E;
use crate::core::lm::{LanguageModel, LmError, Logits, Want};
use crate::core::par::for_each_chunk_mut;

/// Positions a KV block holds.
const BLOCK: usize = 64;
/// Tokens a forward pass takes at once.
const CHUNK: usize = 64;
/// Queries a prompt's attention task takes together (`Llama::attend_blocked`).
const QUERY_BLOCK: usize = 16;
/// The most logits one call returns (256 MiB of f32): a browser tab's budget.
const MAX_LOGITS: usize = 64 << 20;

#[derive(Clone, Debug, PartialEq)]
pub struct LlamaConfig {
    pub layers: usize,
    pub embedding: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub ffn: usize,
    pub context: usize,
    pub vocab: usize,
    pub rope_base: f64,
    pub rms_eps: f32,
}

struct Layer {
    attn_norm: Vec<f32>,
    q: QMatrix,
    k: QMatrix,
    v: QMatrix,
    o: QMatrix,
    ffn_norm: Vec<f32>,
    gate: QMatrix,
    up: QMatrix,
    down: QMatrix,
}

/// Elements of the SwiGLU product a parallel task takes (a third of a token's 1,536).
const SWIGLU_CHUNK: usize = 512;

pub struct Llama {
    pub config: LlamaConfig,
    embed: QMatrix,
    output: QMatrix,
    norm: Vec<f32>,
    layers: Vec<Layer>,
    /// base^(-2i/d) for each rotated pair, computed once in f64.
    inv_freq: Vec<f64>,
    activations: Activations,
}

#[derive(Clone)]
struct KvBlock {
    k: Vec<f32>,
    v: Vec<f32>,
}

/// What a sequence has read: per layer, keys and values in shared blocks.
#[derive(Clone)]
pub struct KvCache {
    layers: Vec<Vec<Arc<KvBlock>>>,
    len: usize,
    /// The final hidden state of the last position read (`LanguageModel::last_hidden`).
    last_hidden: Vec<f32>,
}

fn meta_usize(g: &Gguf, key: &str) -> Result<usize, E> {
    g.get(key)
        .and_then(|v| v.as_u64())
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| E::Metadata(format!("{key} is missing or not a count")))
}

fn meta_f64(g: &Gguf, key: &str, default: f64) -> Result<f64, E> {
    match g.get(key) {
        None => Ok(default),
        Some(v) => v
            .as_f64()
            .filter(|x| x.is_finite() && *x > 0.0)
            .ok_or_else(|| E::Metadata(format!("{key} is {v:?}, not a positive number"))),
    }
}

/// Model dimensions larger than these are no small on-device model, and would only
/// overflow sizes further on.
const MAX_DIM: usize = 1 << 16;
const MAX_VOCAB: usize = 1 << 20;
const MAX_LAYERS: usize = 512;

impl LlamaConfig {
    pub fn from_gguf(g: &Gguf) -> Result<LlamaConfig, E> {
        let arch = g
            .get("general.architecture")
            .and_then(|v| v.as_str())
            .ok_or_else(|| E::Metadata("general.architecture is missing".into()))?;
        if arch != "llama" {
            return Err(E::Unsupported(format!(
                "architecture {arch:?} (latentlab runs \"llama\" models such as SmolLM2)"
            )));
        }
        let embedding = meta_usize(g, "llama.embedding_length")?;
        let heads = meta_usize(g, "llama.attention.head_count")?;
        let kv_heads = match g.get("llama.attention.head_count_kv") {
            None => heads,
            Some(_) => meta_usize(g, "llama.attention.head_count_kv")?,
        };
        let vocab = match g.get("tokenizer.ggml.tokens") {
            Some(super::gguf::MetaValue::Array(t)) => t.len(),
            _ => meta_usize(g, "llama.vocab_size")?,
        };
        let config = LlamaConfig {
            layers: meta_usize(g, "llama.block_count")?,
            embedding,
            heads,
            kv_heads,
            head_dim: embedding.checked_div(heads).unwrap_or(0),
            ffn: meta_usize(g, "llama.feed_forward_length")?,
            context: meta_usize(g, "llama.context_length")?,
            vocab,
            rope_base: meta_f64(g, "llama.rope.freq_base", 10_000.0)?,
            rms_eps: meta_f64(g, "llama.attention.layer_norm_rms_epsilon", 1e-5)? as f32,
        };
        let c = &config;
        let bad = |what: String| Err(E::Metadata(what));
        if c.layers == 0 || c.layers > MAX_LAYERS {
            return bad(format!("llama.block_count is {}", c.layers));
        }
        for (key, v) in [
            ("llama.embedding_length", c.embedding),
            ("llama.feed_forward_length", c.ffn),
            ("llama.attention.head_count", c.heads),
        ] {
            if v == 0 || v > MAX_DIM {
                return bad(format!("{key} is {v} (1 to {MAX_DIM} expected)"));
            }
        }
        if c.vocab == 0 || c.vocab > MAX_VOCAB {
            return bad(format!("the vocabulary has {} tokens", c.vocab));
        }
        if !c.embedding.is_multiple_of(c.heads) || !c.head_dim.is_multiple_of(2) {
            return bad(format!(
                "{} heads do not split the embedding of {} into even head sizes",
                c.heads, c.embedding
            ));
        }
        if c.kv_heads == 0 || !c.heads.is_multiple_of(c.kv_heads) {
            return bad(format!(
                "llama.attention.head_count_kv is {}, which does not divide {} heads",
                c.kv_heads, c.heads
            ));
        }
        if c.context == 0 {
            return bad("llama.context_length is 0".into());
        }
        Ok(config)
    }
}

impl Llama {
    /// Reads a Llama model from a GGUF file's bytes (the model keeps them, quantised).
    pub fn from_gguf(bytes: Arc<Vec<u8>>) -> Result<Llama, E> {
        let g = Gguf::parse(&bytes)?;
        Llama::from_parsed(&g, bytes)
    }

    pub fn from_parsed(g: &Gguf, bytes: Arc<Vec<u8>>) -> Result<Llama, E> {
        let config = LlamaConfig::from_gguf(g)?;
        let c = &config;
        let matrix = |name: &str, rows: usize, cols: usize| -> Result<QMatrix, E> {
            let t = g
                .tensor(name)
                .ok_or_else(|| E::Metadata(format!("tensor {name:?} is missing")))?;
            if t.dims != [cols as u64, rows as u64] {
                return Err(E::Metadata(format!(
                    "tensor {name:?} has shape {:?}, expected [{cols}, {rows}] for this model's metadata",
                    t.dims
                )));
            }
            Ok(QMatrix::new(t.dtype, rows, cols, bytes.clone(), t.start))
        };
        let vector = |name: &str, len: usize| -> Result<Vec<f32>, E> {
            let t = g
                .tensor(name)
                .ok_or_else(|| E::Metadata(format!("tensor {name:?} is missing")))?;
            if t.dims != [len as u64] || !matches!(t.dtype, GgmlType::F32 | GgmlType::F16) {
                return Err(E::Metadata(format!(
                    "tensor {name:?} is {} {:?}, expected F32 [{len}]",
                    t.dtype.name(),
                    t.dims
                )));
            }
            let mut out = vec![0f32; len];
            dequantize(t.dtype, &bytes[t.start..t.start + t.len], &mut out);
            Ok(out)
        };
        let kv_dim = c.kv_heads * c.head_dim;
        let mut layers = Vec::with_capacity(c.layers);
        for l in 0..c.layers {
            let p = format!("blk.{l}.");
            layers.push(Layer {
                attn_norm: vector(&format!("{p}attn_norm.weight"), c.embedding)?,
                q: matrix(&format!("{p}attn_q.weight"), c.embedding, c.embedding)?,
                k: matrix(&format!("{p}attn_k.weight"), kv_dim, c.embedding)?,
                v: matrix(&format!("{p}attn_v.weight"), kv_dim, c.embedding)?,
                o: matrix(&format!("{p}attn_output.weight"), c.embedding, c.embedding)?,
                ffn_norm: vector(&format!("{p}ffn_norm.weight"), c.embedding)?,
                gate: matrix(&format!("{p}ffn_gate.weight"), c.ffn, c.embedding)?,
                up: matrix(&format!("{p}ffn_up.weight"), c.ffn, c.embedding)?,
                down: matrix(&format!("{p}ffn_down.weight"), c.embedding, c.ffn)?,
            });
        }
        let embed = matrix("token_embd.weight", c.vocab, c.embedding)?;
        let output = if g.tensor("output.weight").is_some() {
            matrix("output.weight", c.vocab, c.embedding)?
        } else {
            embed.clone()
        };
        let inv_freq = (0..c.head_dim / 2)
            .map(|i| libm::pow(c.rope_base, -2.0 * i as f64 / c.head_dim as f64))
            .collect();
        Ok(Llama {
            norm: vector("output_norm.weight", c.embedding)?,
            config,
            embed,
            output,
            layers,
            inv_freq,
            activations: Activations::default(),
        })
    }

    /// Chooses how the products with quantised weights treat their inputs (for every
    /// position: prompt, scoring and generation alike, so one model gives one answer).
    pub fn set_activations(&mut self, activations: Activations) {
        self.activations = activations;
    }

    pub fn activations(&self) -> Activations {
        self.activations
    }

    fn product(&self, w: &QMatrix, x: &[f32], out: &mut [f32]) {
        match self.activations {
            Activations::F32 => w.matmul(x, out),
            Activations::Int8 => w.matmul_int8(x, out),
        }
    }

    fn rms_norm(&self, x: &[f32], weight: &[f32], out: &mut [f32]) {
        let d = self.config.embedding;
        for (xr, or) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
            let mean = dot(xr, xr) / d as f32;
            let scale = 1.0 / (mean + self.config.rms_eps).sqrt();
            for ((o, &v), &w) in or.iter_mut().zip(xr).zip(weight) {
                *o = w * (v * scale);
            }
        }
    }

    /// Rotates adjacent pairs of every head of `x` (rows of `heads × head_dim`).
    /// (sin, cos) of every rotated pair's angle at positions `first_pos..first_pos + t`:
    /// the same for every head and layer, so computed once per chunk (f64 libm, 1,920 pairs a
    /// token when each layer computed its own).
    fn rope_table(&self, first_pos: usize, t: usize) -> Vec<(f32, f32)> {
        (first_pos..first_pos + t)
            .flat_map(|p| {
                self.inv_freq.iter().map(move |&f| {
                    let angle = p as f64 * f;
                    (libm::sin(angle) as f32, libm::cos(angle) as f32)
                })
            })
            .collect()
    }

    fn rope(&self, x: &mut [f32], heads: usize, table: &[(f32, f32)]) {
        let hd = self.config.head_dim;
        let pairs = self.inv_freq.len();
        for (t, row) in x.chunks_exact_mut(heads * hd).enumerate() {
            for (i, &(s, c)) in table[t * pairs..(t + 1) * pairs].iter().enumerate() {
                for h in 0..heads {
                    let a = h * hd + 2 * i;
                    let (x0, x1) = (row[a], row[a + 1]);
                    row[a] = x0 * c - x1 * s;
                    row[a + 1] = x0 * s + x1 * c;
                }
            }
        }
    }

    /// One chunk of tokens through every layer; returns the final hidden states.
    fn forward_chunk(&self, cache: &mut KvCache, tokens: &[u32]) -> Vec<f32> {
        let c = &self.config;
        let (d, t, hd) = (c.embedding, tokens.len(), c.head_dim);
        let kv_dim = c.kv_heads * hd;
        let first = cache.len;
        let mut x = vec![0f32; t * d];
        for (row, &tok) in x.chunks_exact_mut(d).zip(tokens) {
            self.embed.row_into(tok as usize, row);
        }
        let mut h = vec![0f32; t * d];
        let (mut q, mut k, mut v) = (
            vec![0f32; t * d],
            vec![0f32; t * kv_dim],
            vec![0f32; t * kv_dim],
        );
        let mut attn = vec![0f32; t * d];
        let mut proj = vec![0f32; t * d];
        let (mut g, mut u) = (vec![0f32; t * c.ffn], vec![0f32; t * c.ffn]);
        let angles = self.rope_table(first, t);
        for (l, layer) in self.layers.iter().enumerate() {
            self.rms_norm(&x, &layer.attn_norm, &mut h);
            QMatrix::matvec_group(
                &mut [(&layer.q, &mut q), (&layer.k, &mut k), (&layer.v, &mut v)],
                &h,
                self.activations,
            );
            self.rope(&mut q, c.heads, &angles);
            self.rope(&mut k, c.kv_heads, &angles);
            cache.write(l, first, &k, &v, kv_dim);
            self.attend(cache, l, first, &q, &mut attn);
            self.product(&layer.o, &attn, &mut proj);
            x.iter_mut().zip(&proj).for_each(|(a, b)| *a += b);
            self.rms_norm(&x, &layer.ffn_norm, &mut h);
            QMatrix::matvec_group(
                &mut [(&layer.gate, &mut g), (&layer.up, &mut u)],
                &h,
                self.activations,
            );
            // SwiGLU, on every core: 1,536 exp a token and layer were a serial tenth of
            // generation with two threads. Element by element, so the split changes no bit.
            let up = &u;
            for_each_chunk_mut(&mut g, SWIGLU_CHUNK, |i, gc| {
                let uc = &up[i * SWIGLU_CHUNK..i * SWIGLU_CHUNK + gc.len()];
                #[cfg(target_arch = "x86_64")]
                if super::avx512::supported() {
                    // SAFETY: AVX-512 F was detected (same bits: `avx512::swiglu`'s test).
                    unsafe { super::avx512::swiglu(gc, uc) };
                    return;
                }
                for (gv, uv) in gc.iter_mut().zip(uc) {
                    *gv = *gv / (1.0 + libm::expf(-*gv)) * uv;
                }
            });
            self.product(&layer.down, &g, &mut proj);
            x.iter_mut().zip(&proj).for_each(|(a, b)| *a += b);
        }
        cache.len += t;
        let mut out = vec![0f32; t * d];
        self.rms_norm(&x, &self.norm, &mut out);
        out
    }

    /// Causal attention of the chunk's queries (positions `first..`) over the cache. A few
    /// queries (generation) are taken one (position, head) at a time; a prompt's chunk in
    /// blocks of queries that read each key and value once for all of them.
    fn attend(&self, cache: &KvCache, layer: usize, first: usize, q: &[f32], out: &mut [f32]) {
        let t = q.len() / (self.config.heads * self.config.head_dim);
        if t < QUERY_BLOCK {
            self.attend_each(cache, layer, first, q, out)
        } else {
            self.attend_blocked(cache, layer, first, q, out)
        }
    }

    /// One task per (position, head), each reading every key and value it attends to.
    fn attend_each(&self, cache: &KvCache, layer: usize, first: usize, q: &[f32], out: &mut [f32]) {
        let c = &self.config;
        let hd = c.head_dim;
        let group = c.heads / c.kv_heads;
        let kv_dim = c.kv_heads * hd;
        let scale = 1.0 / (hd as f32).sqrt();
        let blocks = &cache.layers[layer];
        // One task per (position, head): each owns its `hd` outputs.
        #[cfg(target_arch = "x86_64")]
        let avx512 = super::avx512::supported();
        for_each_chunk_mut(out, hd, |task, o| {
            let (t, head) = (task / c.heads, task % c.heads);
            let kvh = head / group;
            let qv = &q[task * hd..(task + 1) * hd];
            let row = |p: usize, kv: fn(&KvBlock) -> &Vec<f32>| {
                let at = (p % BLOCK) * kv_dim + kvh * hd;
                &kv(&blocks[p / BLOCK])[at..at + hd]
            };
            let (key, value) = (|p| row(p, |b| &b.k), |p| row(p, |b| &b.v));
            let upto = first + t + 1;
            #[cfg(target_arch = "x86_64")]
            if avx512 {
                // SAFETY: AVX-512 F was detected.
                unsafe { super::avx512::attend_one(qv, upto, key, value, scale, o) };
                return;
            }
            attend_one(qv, upto, key, value, scale, o, |s| {
                s.iter_mut().for_each(|s| *s = libm::expf(*s))
            });
        });
    }
    /// `attend_each` with the loops turned inside out, for a prompt's chunk: one task per
    /// (key/value head, block of `QUERY_BLOCK` queries) reads each cached key and value once
    /// for the block's queries of every head that shares it (grouped-query attention), where
    /// one task per (query, head) streamed the whole cache from memory again. At a 973-token
    /// prompt attention was 37% of the time (`perf`: `dot` 17%, this loop 15%, `expf` 6%);
    /// blocked, the prompt took 5.8 s instead of 6.3 s (int8, 2 threads, BENCHMARKS.md): the
    /// rest is arithmetic, not memory. Each query's own
    /// arithmetic is `attend_each`'s in the same order (scores by `dot`, max, exp and sum by
    /// position, values added by position), so the bits are the same (a test checks).
    fn attend_blocked(
        &self,
        cache: &KvCache,
        layer: usize,
        first: usize,
        q: &[f32],
        out: &mut [f32],
    ) {
        let c = &self.config;
        let hd = c.head_dim;
        let group = c.heads / c.kv_heads;
        let kv_dim = c.kv_heads * hd;
        let d = c.heads * hd;
        let scale = 1.0 / (hd as f32).sqrt();
        let blocks = &cache.layers[layer];
        let t = q.len() / d;
        let query_blocks = t.div_ceil(QUERY_BLOCK);
        // Per task: its block's queries × the group's heads, `hd` outputs each.
        let task_len = QUERY_BLOCK * group * hd;
        let mut by_task = vec![0f32; c.kv_heads * query_blocks * task_len];
        #[cfg(target_arch = "x86_64")]
        let avx512 = super::avx512::supported() && super::avx512::supports(hd);
        for_each_chunk_mut(&mut by_task, task_len, |task, o| {
            let (kvh, qb) = (task / query_blocks, task % query_blocks);
            let t0 = qb * QUERY_BLOCK;
            let n = QUERY_BLOCK.min(t - t0);
            let keys = first + t0 + n;
            #[cfg(target_arch = "x86_64")]
            if avx512 {
                let row = |p: usize, kv: fn(&KvBlock) -> &Vec<f32>| {
                    let at = (p % BLOCK) * kv_dim + kvh * hd;
                    &kv(&blocks[p / BLOCK])[at..at + hd]
                };
                let queries: Vec<&[f32]> = (0..n * group)
                    .map(|r| {
                        let (i, g) = (r / group, r % group);
                        let at = (t0 + i) * d + (kvh * group + g) * hd;
                        &q[at..at + hd]
                    })
                    .collect();
                let task = super::avx512::AttentionTask {
                    key: |p| row(p, |b| &b.k),
                    value: |p| row(p, |b| &b.v),
                    hd,
                    group,
                    queries: &queries,
                    first: first + t0,
                    scale,
                };
                // SAFETY: AVX-512 F was detected and `supports(hd)`; positions up to
                // `keys` are in the cache (written before attention).
                unsafe { task.run(o) };
                return;
            }
            // Row r = (query i, head g) of the block: its scores, then weights, by position.
            let rows = n * group;
            let mut scores = vec![0f32; rows * keys];
            let upto = |r: usize| first + t0 + r / group + 1;
            let query = |r: usize| {
                let (i, g) = (r / group, r % group);
                let at = (t0 + i) * d + (kvh * group + g) * hd;
                &q[at..at + hd]
            };
            for p in 0..keys {
                let b = &blocks[p / BLOCK];
                let at = (p % BLOCK) * kv_dim + kvh * hd;
                let k = &b.k[at..at + hd];
                for r in (0..rows).filter(|&r| p < upto(r)) {
                    scores[r * keys + p] = dot(query(r), k) * scale;
                }
            }
            let mut sums = vec![0f32; rows];
            for (r, sum) in sums.iter_mut().enumerate() {
                let row = &mut scores[r * keys..r * keys + upto(r)];
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                for s in row.iter_mut() {
                    *s = libm::expf(*s - max);
                    *sum += *s;
                }
            }
            o.fill(0.0);
            for p in 0..keys {
                let b = &blocks[p / BLOCK];
                let at = (p % BLOCK) * kv_dim + kvh * hd;
                let v = &b.v[at..at + hd];
                for r in (0..rows).filter(|&r| p < upto(r)) {
                    let w = scores[r * keys + p] / sums[r];
                    for (ov, vv) in o[r * hd..(r + 1) * hd].iter_mut().zip(v) {
                        *ov += w * vv;
                    }
                }
            }
        });
        for kvh in 0..c.kv_heads {
            for qb in 0..query_blocks {
                let task = &by_task[(kvh * query_blocks + qb) * task_len..][..task_len];
                let t0 = qb * QUERY_BLOCK;
                for i in 0..QUERY_BLOCK.min(t - t0) {
                    let at = (t0 + i) * d + kvh * group * hd;
                    out[at..at + group * hd]
                        .copy_from_slice(&task[i * group * hd..(i + 1) * group * hd]);
                }
            }
        }
    }
}

/// One query's attention over positions `0..upto` (`Llama::attend_each`'s task): scores by
/// `dot`, their max, exp and sum by position, then the values weighted in position order.
/// Inlined into `avx512::attend_one`, which compiles the same code with AVX-512 (`dot` in
/// vector registers, the exps 16 at a time): the same operations, so the same bits.
#[inline(always)]
pub(crate) fn attend_one<'a>(
    qv: &[f32],
    upto: usize,
    key: impl Fn(usize) -> &'a [f32],
    value: impl Fn(usize) -> &'a [f32],
    scale: f32,
    o: &mut [f32],
    exp: impl Fn(&mut [f32]),
) {
    let mut scores: Vec<f32> = (0..upto).map(|p| dot(qv, key(p)) * scale).collect();
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    scores.iter_mut().for_each(|s| *s -= max);
    exp(&mut scores);
    let sum = scores.iter().fold(0f32, |sum, s| sum + s);
    o.fill(0.0);
    for (p, s) in scores.iter().enumerate() {
        let w = s / sum;
        for (ov, vv) in o.iter_mut().zip(value(p)) {
            *ov += w * vv;
        }
    }
}

impl KvCache {
    fn new(layers: usize) -> KvCache {
        KvCache {
            layers: vec![Vec::new(); layers],
            len: 0,
            last_hidden: Vec::new(),
        }
    }

    fn write(&mut self, layer: usize, first: usize, k: &[f32], v: &[f32], kv_dim: usize) {
        let blocks = &mut self.layers[layer];
        for (i, (kr, vr)) in k
            .chunks_exact(kv_dim)
            .zip(v.chunks_exact(kv_dim))
            .enumerate()
        {
            let p = first + i;
            if p / BLOCK == blocks.len() {
                blocks.push(Arc::new(KvBlock {
                    k: vec![0.0; BLOCK * kv_dim],
                    v: vec![0.0; BLOCK * kv_dim],
                }));
            }
            let block = Arc::make_mut(&mut blocks[p / BLOCK]);
            let at = (p % BLOCK) * kv_dim;
            block.k[at..at + kv_dim].copy_from_slice(kr);
            block.v[at..at + kv_dim].copy_from_slice(vr);
        }
    }

    /// Positions read.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl LanguageModel for Llama {
    type State = KvCache;

    fn vocab_size(&self) -> usize {
        self.config.vocab
    }

    fn context_length(&self) -> usize {
        self.config.context
    }

    fn new_state(&self) -> KvCache {
        KvCache::new(self.config.layers)
    }

    fn state_len(&self, state: &KvCache) -> usize {
        state.len
    }

    fn extend(&self, state: &mut KvCache, tokens: &[u32], want: Want) -> Result<Logits, LmError> {
        crate::core::lm::check_tokens(self, "the input", state.len, tokens)?;
        if state.layers.len() != self.config.layers {
            return Err(LmError::Model("this state belongs to another model".into()));
        }
        let (d, vocab) = (self.config.embedding, self.config.vocab);
        if want == Want::All && tokens.len().saturating_mul(vocab) > MAX_LOGITS {
            return Err(LmError::BadOption {
                name: "input",
                value: format!("{} tokens", tokens.len()),
                why: "too long to return logits for every position at once (score it in parts)",
            });
        }
        let mut data = Vec::new();
        let chunks = tokens.len().div_ceil(CHUNK);
        for (i, chunk) in tokens.chunks(CHUNK).enumerate() {
            let hidden = self.forward_chunk(state, chunk);
            if i + 1 == chunks {
                state.last_hidden = hidden[hidden.len() - d..].to_vec();
            }
            let rows: &[f32] = match want {
                Want::All => &hidden,
                Want::Last if i + 1 == chunks => &hidden[hidden.len() - d..],
                Want::Last => continue,
            };
            let mut logits = vec![0f32; rows.len() / d * vocab];
            self.product(&self.output, rows, &mut logits);
            data.extend(logits);
        }
        Ok(Logits { vocab, data })
    }

    fn last_hidden(&self, state: &KvCache) -> Option<Vec<f32>> {
        (!state.last_hidden.is_empty()).then(|| state.last_hidden.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lm::testing::{random_tiny_llama, TinyShape};

    /// The blocked prompt attention and the one-query-at-a-time one give the scalar
    /// definition's bits for every query, across cache blocks and with queries that start
    /// after earlier positions. (With AVX-512 both run `avx512`'s code; checked here at
    /// head sizes 16 and 64 — SmolLM2's — and 2 or 3 query heads per key/value head.)
    #[test]
    fn blocked_attention_gives_the_bits_of_one_query_at_a_time() {
        let smollm_like = TinyShape {
            embedding: 192,
            heads: 3,
            kv_heads: 1,
            ..TinyShape::default()
        };
        for shape in [TinyShape::default(), smollm_like] {
            let bytes = Arc::new(random_tiny_llama(9, &shape));
            let model = Llama::from_gguf(bytes).unwrap();
            let c = &model.config;
            let (d, kv_dim) = (c.heads * c.head_dim, c.kv_heads * c.head_dim);
            let mut cache = KvCache::new(c.layers);
            let value = |i: usize| ((i * 7919 % 1009) as f32 - 504.0) / 97.0;
            // 70 earlier positions (two cache blocks), then a chunk of 37 queries.
            let (first, t) = (70, 37);
            let k: Vec<f32> = (0..(first + t) * kv_dim).map(value).collect();
            let v: Vec<f32> = (0..(first + t) * kv_dim).map(|i| value(i + 13)).collect();
            cache.write(0, 0, &k, &v, kv_dim);
            let q: Vec<f32> = (0..t * d).map(|i| value(i + 101)).collect();
            let (mut each, mut blocked) = (vec![0f32; t * d], vec![0f32; t * d]);
            model.attend_each(&cache, 0, first, &q, &mut each);
            model.attend_blocked(&cache, 0, first, &q, &mut blocked);
            // The definition, scalar whatever the CPU: `attend_one` with `libm::expf`.
            let hd = c.head_dim;
            let group = c.heads / c.kv_heads;
            let mut scalar = vec![0f32; t * d];
            for (task, o) in scalar.chunks_mut(hd).enumerate() {
                let (i, head) = (task / c.heads, task % c.heads);
                let at = |p: usize| p * kv_dim + head / group * hd;
                let (k, v) = (&k, &v);
                attend_one(
                    &q[task * hd..(task + 1) * hd],
                    first + i + 1,
                    |p| &k[at(p)..at(p) + hd],
                    |p| &v[at(p)..at(p) + hd],
                    1.0 / (hd as f32).sqrt(),
                    o,
                    |s| s.iter_mut().for_each(|s| *s = libm::expf(*s)),
                );
            }
            let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&each), bits(&scalar), "head size {}", c.head_dim);
            assert_eq!(bits(&blocked), bits(&scalar), "head size {}", c.head_dim);
        }
    }
}
