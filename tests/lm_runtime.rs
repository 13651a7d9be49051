//! The language-model runtime (src/lm) from outside: a tiny random Llama written by the
//! test runs against a plain f64 reference of the same equations; KV-cache forks, chunking
//! and decoding agree with full recomputation; bad files are refused by name.

use std::collections::HashMap;
use std::sync::Arc;

use latentlab::core::lm::{LanguageModel, Tokenize, Want};
use latentlab::encode::BpeTokenizer;
use latentlab::lm::quant::dequantize;
use latentlab::lm::testing::{random_tiny_llama, TinyShape};
use latentlab::lm::{GgmlType, Gguf, GgufModel, Llama, LmRuntimeError};

/// The plain reference: every tensor dequantised to f64, every position recomputed from
/// scratch, no cache, no chunks, no threads.
struct Reference {
    t: HashMap<String, (Vec<u64>, Vec<f64>)>,
    layers: usize,
    d: usize,
    heads: usize,
    kv_heads: usize,
    base: f64,
}

impl Reference {
    fn new(bytes: &[u8], shape: &TinyShape) -> Reference {
        let g = Gguf::parse(bytes).unwrap();
        let mut t = HashMap::new();
        for info in &g.tensors {
            let mut out = vec![0f32; info.elements() as usize];
            dequantize(
                info.dtype,
                &bytes[info.start..info.start + info.len],
                &mut out,
            );
            t.insert(
                info.name.clone(),
                (info.dims.clone(), out.into_iter().map(f64::from).collect()),
            );
        }
        Reference {
            t,
            layers: shape.layers,
            d: shape.embedding,
            heads: shape.heads,
            kv_heads: shape.kv_heads,
            base: 10_000.0,
        }
    }

    fn w(&self, name: &str) -> &Vec<f64> {
        &self.t[name].1
    }

    /// y = W x for W stored as rows of x.len().
    fn mv(&self, name: &str, x: &[f64]) -> Vec<f64> {
        self.w(name)
            .chunks(x.len())
            .map(|r| r.iter().zip(x).map(|(a, b)| a * b).sum())
            .collect()
    }

    fn norm(&self, x: &[f64], name: &str) -> Vec<f64> {
        let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
        let s = 1.0 / (ms + 1e-5).sqrt();
        x.iter().zip(self.w(name)).map(|(v, w)| v * s * w).collect()
    }

    fn rope(&self, x: &mut [f64], pos: usize) {
        let hd = self.d / self.heads;
        for head in x.chunks_mut(hd) {
            for i in 0..hd / 2 {
                let a = pos as f64 * self.base.powf(-2.0 * i as f64 / hd as f64);
                let (x0, x1) = (head[2 * i], head[2 * i + 1]);
                head[2 * i] = x0 * a.cos() - x1 * a.sin();
                head[2 * i + 1] = x0 * a.sin() + x1 * a.cos();
            }
        }
    }

    /// Logits after the last token of `ids`.
    fn logits(&self, ids: &[u32]) -> Vec<f64> {
        let (d, hd) = (self.d, self.d / self.heads);
        let emb = self.w("token_embd.weight");
        let mut xs: Vec<Vec<f64>> = ids
            .iter()
            .map(|&i| emb[i as usize * d..(i as usize + 1) * d].to_vec())
            .collect();
        for l in 0..self.layers {
            let p = format!("blk.{l}.");
            let hs: Vec<Vec<f64>> = xs
                .iter()
                .map(|x| self.norm(x, &format!("{p}attn_norm.weight")))
                .collect();
            let mut qs = Vec::new();
            let mut ks = Vec::new();
            let mut vs = Vec::new();
            for (pos, h) in hs.iter().enumerate() {
                let mut q = self.mv(&format!("{p}attn_q.weight"), h);
                let mut k = self.mv(&format!("{p}attn_k.weight"), h);
                self.rope(&mut q, pos);
                self.rope(&mut k, pos);
                qs.push(q);
                ks.push(k);
                vs.push(self.mv(&format!("{p}attn_v.weight"), h));
            }
            for pos in 0..xs.len() {
                let mut o = vec![0f64; d];
                for head in 0..self.heads {
                    let kvh = head / (self.heads / self.kv_heads);
                    let q = &qs[pos][head * hd..(head + 1) * hd];
                    let s: Vec<f64> = (0..=pos)
                        .map(|j| {
                            q.iter()
                                .zip(&ks[j][kvh * hd..(kvh + 1) * hd])
                                .map(|(a, b)| a * b)
                                .sum::<f64>()
                                / (hd as f64).sqrt()
                        })
                        .collect();
                    let m = s.iter().cloned().fold(f64::MIN, f64::max);
                    let z: f64 = s.iter().map(|v| (v - m).exp()).sum();
                    for j in 0..=pos {
                        let w = (s[j] - m).exp() / z;
                        for c in 0..hd {
                            o[head * hd + c] += w * vs[j][kvh * hd + c];
                        }
                    }
                }
                let proj = self.mv(&format!("{p}attn_output.weight"), &o);
                xs[pos].iter_mut().zip(proj).for_each(|(a, b)| *a += b);
                let h = self.norm(&xs[pos], &format!("{p}ffn_norm.weight"));
                let g = self.mv(&format!("{p}ffn_gate.weight"), &h);
                let u = self.mv(&format!("{p}ffn_up.weight"), &h);
                let a: Vec<f64> = g
                    .iter()
                    .zip(&u)
                    .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
                    .collect();
                let down = self.mv(&format!("{p}ffn_down.weight"), &a);
                xs[pos].iter_mut().zip(down).for_each(|(a, b)| *a += b);
            }
        }
        let last = self.norm(xs.last().unwrap(), "output_norm.weight");
        self.mv("token_embd.weight", &last)
    }
}

fn tiny(shape: &TinyShape) -> (Vec<u8>, Llama) {
    let bytes = random_tiny_llama(7, shape);
    let model = Llama::from_gguf(Arc::new(bytes.clone())).unwrap();
    (bytes, model)
}

fn max_diff(a: &[f32], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn forward_pass_equals_the_plain_reference() {
    for matrices in [
        GgmlType::Q4_1,
        GgmlType::Q8_0,
        GgmlType::F16,
        GgmlType::F32,
        GgmlType::Q4_0,
    ] {
        let shape = TinyShape {
            matrices,
            ..Default::default()
        };
        let (bytes, model) = tiny(&shape);
        let reference = Reference::new(&bytes, &shape);
        let ids: Vec<u32> = (0..9).map(|i| (i * 37 + 5) % 264).collect();
        let mut state = model.new_state();
        let got = model.extend(&mut state, &ids, Want::Last).unwrap();
        let want = reference.logits(&ids);
        let diff = max_diff(got.last().unwrap(), &want);
        let spread = want.iter().cloned().fold(f64::MIN, f64::max)
            - want.iter().cloned().fold(f64::MAX, f64::min);
        // f32 arithmetic against f64 over two layers: differences at the 1e-5 level of
        // logits spread over several units.
        assert!(
            diff < 1e-4 * spread.max(1.0),
            "{matrices:?}: max |Δ| {diff} (spread {spread})"
        );
    }
}

#[test]
fn cache_forks_chunks_and_single_steps_agree() {
    let shape = TinyShape {
        context: 400,
        ..Default::default()
    };
    let (_, model) = tiny(&shape);
    // 150 tokens: more than two prompt chunks and two KV blocks.
    let ids: Vec<u32> = (0..150).map(|i| (i * 13 + 3) % 264).collect();
    let mut whole = model.new_state();
    let all = model.extend(&mut whole, &ids, Want::All).unwrap();
    assert_eq!(all.rows(), 150);
    let mut stepwise = model.new_state();
    for (i, &id) in ids.iter().enumerate() {
        let row = model.extend(&mut stepwise, &[id], Want::Last).unwrap();
        assert_eq!(row.last().unwrap(), all.row(i), "position {i}");
    }
    // A fork shares the prefix; writing after the fork leaves the other state untouched.
    let mut prefix = model.new_state();
    model.extend(&mut prefix, &ids[..100], Want::Last).unwrap();
    let mut a = prefix.clone();
    let mut b = prefix.clone();
    let ra = model.extend(&mut a, &ids[100..101], Want::Last).unwrap();
    let _ = model.extend(&mut b, &[7, 8, 9], Want::Last).unwrap();
    let ra2 = model
        .extend(&mut prefix, &ids[100..101], Want::Last)
        .unwrap();
    assert_eq!(ra, ra2);
    assert_eq!(ra.last().unwrap(), all.row(100));
    assert_eq!((a.len(), b.len(), prefix.len()), (101, 103, 101));
}

#[test]
fn over_long_inputs_and_bad_ids_are_refused() {
    let shape = TinyShape {
        context: 32,
        ..Default::default()
    };
    let (_, model) = tiny(&shape);
    let mut state = model.new_state();
    let err = model
        .extend(&mut state, &[5; 33], Want::Last)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("33 tokens, more than the model's context of 32"),
        "{err}"
    );
    let err = model
        .extend(&mut state, &[100_000], Want::Last)
        .unwrap_err()
        .to_string();
    assert!(err.contains("token id 100000"), "{err}");
    assert_eq!(state.len(), 0, "a refused call reads nothing");
}

#[test]
fn the_embedded_tokenizer_round_trips_and_knows_special_tokens() {
    let bytes = random_tiny_llama(1, &TinyShape::default());
    let model = GgufModel::from_bytes(bytes, None).unwrap();
    let tok = BpeTokenizer::from_spec(&model.vocabulary).unwrap();
    for text in [
        "the thin cat",
        "  spaces\tand\nlines ",
        "Ünïcödé 日本 🙂",
        "x = 12345;",
    ] {
        let ids = tok.encode(text).unwrap();
        assert_eq!(tok.decode(&ids).unwrap(), text);
    }
    // " the" is the merge chain Ġ t → Ġt, h e → he, Ġt he → Ġthe (id 3 + 256 + 2).
    assert_eq!(tok.encode(" the").unwrap(), vec![261]);
    // Digits are split one by one (the smollm pre-tokenizer): "12" is two byte tokens.
    assert_eq!(tok.encode("12").unwrap().len(), 2);
    assert_eq!(tok.encode("<|im_start|>hi<|im_end|>").unwrap()[0], 1);
    assert_eq!(tok.eos(), Some(2));
}

#[test]
fn corrupt_and_foreign_files_are_named() {
    let bytes = random_tiny_llama(1, &TinyShape::default());
    let err = |b: Vec<u8>, sha: Option<&str>| {
        GgufModel::from_bytes(b, sha)
            .err()
            .expect("refused")
            .to_string()
    };
    assert!(err(b"not a model".to_vec(), None).contains("not a GGUF file"));
    let truncated = err(bytes[..bytes.len() / 2].to_vec(), None);
    assert!(truncated.contains("truncated"), "{truncated}");
    let sha = err(bytes.clone(), Some(&"0".repeat(64)));
    assert!(sha.contains("sha256 is"), "{sha}");
    // Another architecture: the metadata string "llama" → "gemma".
    let mut other = bytes.clone();
    let at = other.windows(5).position(|w| w == b"llama").unwrap();
    other[at..at + 5].copy_from_slice(b"gemma");
    let arch = err(other, None);
    assert!(arch.contains("architecture \"gemma\""), "{arch}");
    assert!(matches!(
        Gguf::parse(b"GGUF"),
        Err(LmRuntimeError::Corrupt(_))
    ));
}
