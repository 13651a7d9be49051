//! Every sketch output satisfies its constraints: random templates (options, INT, STOPS_AT,
//! token limits) filled by every decoder on a tiny random Llama (untrained, written by the
//! test), whose noisy distributions push values to the edges of what the constraints allow.

use latentlab::core::lm::Tokenize;
use latentlab::core::sketch::{run_sketch, Sketch, SketchDecoder};
use latentlab::encode::BpeTokenizer;
use latentlab::lm::testing::{random_tiny_llama, TinyShape};
use latentlab::lm::{GgufModel, Llama};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn tiny() -> (Llama, BpeTokenizer) {
    let m = GgufModel::from_bytes(
        random_tiny_llama(
            5,
            &TinyShape {
                context: 512,
                ..Default::default()
            },
        ),
        None,
    )
    .unwrap();
    let tok = BpeTokenizer::from_spec(&m.vocabulary).unwrap();
    (m.llama, tok)
}

const WORDS: [&str; 8] = [" the", " cat", " in", " a", "red", " 12", "x", " then"];

#[test]
fn every_value_satisfies_its_constraints() {
    let (model, tok) = tiny();
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let mut checked = 0;
    for case in 0..120 {
        let holes = rng.random_range(1..=3);
        let mut template = String::from("the");
        let mut clauses = Vec::new();
        let mut kinds = Vec::new();
        for h in 0..holes {
            let name = format!("H{h}");
            template.push_str(&format!("[{name}]"));
            template.push_str([" and", ".", " in the"][rng.random_range(0..3)]);
            let max = rng.random_range(1..=6);
            match rng.random_range(0..4) {
                0 => {
                    let k = rng.random_range(1..=3);
                    let options: Vec<String> = (0..k)
                        .map(|_| WORDS[rng.random_range(0..WORDS.len())].to_string())
                        .collect();
                    let list: Vec<String> = options.iter().map(|o| format!("{o:?}")).collect();
                    clauses.push(format!("{name} in [{}]", list.join(", ")));
                    kinds.push((name, Some(options), false, None, 64));
                }
                1 => {
                    clauses.push(format!("INT({name}) and len(TOKENS({name})) < {}", max + 1));
                    kinds.push((name, None, true, None, max));
                }
                2 => {
                    let stop = ["e", " ", "t"][rng.random_range(0..3)].to_string();
                    clauses.push(format!(
                        "STOPS_AT({name}, {stop:?}) and len(TOKENS({name})) <= {max}"
                    ));
                    kinds.push((name, None, false, Some(stop), max));
                }
                _ => {
                    clauses.push(format!("len(TOKENS({name})) <= {max}"));
                    kinds.push((name, None, false, None, max));
                }
            }
        }
        let src = format!("{template}\nwhere {}", clauses.join(" and "));
        let sketch = Sketch::parse(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let decoder = match case % 5 {
            0 => SketchDecoder::Argmax,
            1 => SketchDecoder::Sample {
                temperature: 1.3,
                seed: case,
            },
            2 => SketchDecoder::Beam { n: 2 },
            3 => SketchDecoder::Var { b: 2, n: 2 },
            _ => SketchDecoder::BeamVar { n: 2, alpha: 0.7 },
        };
        let r = run_sketch(&model, &tok, &sketch, &decoder)
            .unwrap_or_else(|e| panic!("{src} with {decoder:?}: {e}"));
        assert_eq!(r.values.len(), kinds.len());
        for ((name, value), (want_name, options, int, stop, max)) in r.values.iter().zip(&kinds) {
            assert_eq!(name, want_name);
            let ctx = format!("{src:?} {decoder:?}: {name} = {value:?}");
            if let Some(options) = options {
                assert!(options.contains(value), "{ctx}: not an option");
            }
            if *int {
                let digits = value.strip_prefix(' ').unwrap_or(value);
                assert!(
                    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()),
                    "{ctx}: not an integer"
                );
            }
            if let Some(stop) = stop {
                if let Some(at) = value.find(stop.as_str()) {
                    assert_eq!(
                        at + stop.len(),
                        value.len(),
                        "{ctx}: text after the stop string"
                    );
                }
            }
            // Tokens the value took: at most the limit (a stop string can only shorten it). The
            // untrained model also emits lone bytes of UTF-8 characters, shown as U+FFFD,
            // which re-encode to more tokens than were generated: those are not counted.
            if !value.contains('\u{FFFD}') {
                assert!(
                    tok.encode(value).unwrap().len() <= *max,
                    "{ctx}: longer than {max} tokens"
                );
            }
        }
        assert!(
            r.logprob <= 0.0 && (r.logprob - r.template_logprob - r.generated_logprob).abs() < 1e-9
        );
        let expected_text: String = {
            let mut out = String::new();
            let mut values = r.values.iter();
            for p in &sketch.parts {
                match p {
                    latentlab::core::sketch::Part::Text(s) => out.push_str(s),
                    latentlab::core::sketch::Part::Hole(_) => {
                        out.push_str(&values.next().unwrap().1)
                    }
                }
            }
            out
        };
        assert_eq!(r.text, expected_text);
        checked += 1;
    }
    assert_eq!(checked, 120);
}

/// A template without holes is its text, scored, with every decoder (`var` indexed past the
/// last part before: a trap in wasm, found by tests/js/facade-fuzz.test.mjs).
#[test]
fn a_sketch_of_text_alone_is_that_text_with_every_decoder() {
    let (model, tok) = tiny();
    let sketch = Sketch::parse("K`9(\"*hU then the cat").unwrap();
    let mut logprobs = Vec::new();
    for decoder in [
        SketchDecoder::Argmax,
        SketchDecoder::Sample {
            temperature: 1.0,
            seed: 4,
        },
        SketchDecoder::Beam { n: 2 },
        SketchDecoder::Var { b: 1, n: 2 },
        SketchDecoder::BeamVar { n: 2, alpha: 0.7 },
    ] {
        let r = run_sketch(&model, &tok, &sketch, &decoder)
            .unwrap_or_else(|e| panic!("{decoder:?}: {e}"));
        assert_eq!(r.text, "K`9(\"*hU then the cat", "{decoder:?}");
        assert!(
            r.values.is_empty() && r.tokens_generated == 0,
            "{decoder:?}"
        );
        assert_eq!(r.generated_logprob, 0.0, "{decoder:?}");
        logprobs.push(r.logprob);
    }
    // Nothing to choose: every decoder scores the same text the same.
    assert!(logprobs.windows(2).all(|w| w[0] == w[1]), "{logprobs:?}");
}
