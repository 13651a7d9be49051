//! Prompt Sketching (Beurer-Kellner, Müller, Fischer, Vechev, ICML 2024): a template with
//! holes and constraints, filled by decoders that score the template text too, so a value
//! that makes the rest of the template unlikely can lose to one that fits it.
//!
//! Core logic over `core::lm`'s model and tokenizer traits: tested exactly with a
//! hand-written table model, run on SmolLM2 through `crate::lm`.

mod decode;
mod eval;
mod template;

pub use decode::{
    run_sketch, run_sketch_streaming, SketchDecoder, SketchError, SketchResult, SketchStep,
};
pub use eval::{
    first_option_named, normalise_dates, wilson_ci95, ChoiceExample, ChoiceFormat, ChoiceTask,
    EvalError, EvalMode, ExampleOutcome,
};
pub use template::{Hole, Part, Sketch, SketchSyntaxError, DEFAULT_MAX_TOKENS};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::lm::table::{TableModel, TableTokenizer};

    const VOCAB: [&str; 8] = ["<eos>", "The", " answer", " is", " yes", " no", ".", " x"];

    /// After "is": " yes" 0.6, " no" 0.4. After " yes": "." only 0.1; after " no": "." 0.9.
    fn table() -> (TableModel, TableTokenizer) {
        let model = TableModel {
            vocab: VOCAB.to_vec(),
            rules: vec![
                (vec![], vec![(7, 0.5), (0, 0.5)]),
                (vec![3], vec![(4, 0.6), (5, 0.4)]),
                (vec![4], vec![(6, 0.1), (7, 0.9)]),
                (vec![5], vec![(6, 0.9), (7, 0.1)]),
            ],
            context: 64,
        };
        (
            model,
            TableTokenizer {
                vocab: VOCAB.to_vec(),
            },
        )
    }

    fn run(decoder: SketchDecoder) -> SketchResult {
        let (model, tok) = table();
        let sketch = Sketch::parse("The answer is[A].\nwhere A in [\" yes\", \" no\"]").unwrap();
        run_sketch(&model, &tok, &sketch, &decoder).unwrap()
    }

    #[test]
    fn greedy_takes_the_likelier_value_that_makes_the_template_unlikely() {
        let r = run(SketchDecoder::Argmax);
        assert_eq!(r.values, vec![("A".to_string(), " yes".to_string())]);
        assert_eq!(r.text, "The answer is yes.");
        assert!((r.generated_logprob - 0.6f64.ln()).abs() < 1e-6, "{r:?}");
        assert!((r.template_logprob - 0.1f64.ln()).abs() < 1e-6, "{r:?}");
        assert!((r.logprob - 0.06f64.ln()).abs() < 1e-6);
        assert_eq!(r.tokens_generated, 1);
    }

    #[test]
    fn var_beam_var_and_beam_find_the_higher_joint_likelihood() {
        for decoder in [
            SketchDecoder::Var { b: 2, n: 1 },
            SketchDecoder::BeamVar { n: 2, alpha: 0.7 },
            SketchDecoder::Beam { n: 2 },
        ] {
            let r = run(decoder.clone());
            assert_eq!(r.values[0].1, " no", "{decoder:?}: {r:?}");
            assert!(
                (r.logprob - 0.36f64.ln()).abs() < 1e-6,
                "{decoder:?}: {r:?}"
            );
            assert!((r.template_logprob - 0.9f64.ln()).abs() < 1e-6);
        }
        // A beam of one is greedy again.
        assert_eq!(run(SketchDecoder::Var { b: 1, n: 1 }).values[0].1, " yes");
    }

    #[test]
    fn contradictory_constraints_name_the_hole() {
        let (model, tok) = table();
        let sketch = Sketch::parse("The answer is[A].\nwhere A in [\" yes\"] and INT(A)").unwrap();
        let err = run_sketch(&model, &tok, &sketch, &SketchDecoder::Argmax).unwrap_err();
        assert!(
            err.to_string().starts_with("hole A: no token can satisfy"),
            "{err}"
        );
    }

    #[test]
    fn bad_decoder_options_are_named() {
        let (model, tok) = table();
        let sketch = Sketch::parse("The answer is[A].").unwrap();
        let err = run_sketch(&model, &tok, &sketch, &SketchDecoder::Beam { n: 0 }).unwrap_err();
        assert!(err.to_string().contains("option beams is 0"), "{err}");
        let bad_t = SketchDecoder::Sample {
            temperature: f64::NAN,
            seed: 0,
        };
        assert!(run_sketch(&model, &tok, &sketch, &bad_t).is_err());
    }

    #[test]
    fn steps_stream_the_leading_hypothesis_and_can_cancel() {
        use std::ops::ControlFlow;
        let (model, tok) = table();
        let sketch = Sketch::parse("The answer is[A].\nwhere A in [\" yes\", \" no\"]").unwrap();
        for decoder in [
            SketchDecoder::Argmax,
            SketchDecoder::BeamVar { n: 2, alpha: 0.7 },
        ] {
            let mut steps = Vec::new();
            let r = run_sketch_streaming(&model, &tok, &sketch, &decoder, &mut |s| {
                steps.push(s.clone());
                ControlFlow::Continue(())
            })
            .unwrap();
            for s in &steps {
                let joined: String = s.segments.iter().map(|p| p.0.as_str()).collect();
                assert_eq!(joined, s.text);
            }
            let first = steps.first().expect("at least one step");
            assert!(first.text.starts_with("The answer is"), "{first:?}");
            assert_eq!(first.values.len(), 1, "{first:?}");
            // Argmax streams a prefix of its result; the last step has the final text.
            if decoder == SketchDecoder::Argmax {
                assert!(
                    steps.iter().all(|s| r.text.starts_with(&s.text)),
                    "{steps:?}"
                );
                assert_eq!(steps.last().unwrap().text, r.text);
                assert_eq!(steps.last().unwrap().hole, None);
            }
        }
        let err = run_sketch_streaming(&model, &tok, &sketch, &SketchDecoder::Argmax, &mut |_| {
            ControlFlow::Break(())
        })
        .unwrap_err();
        assert_eq!(err, SketchError::Cancelled);
    }
}
