//! The mechanisms on hand-written table models: synthetic discrete distributions whose
//! mutual information is known, and word-level reports whose peer is informative.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::core::lm::table::{Rule, TableModel, TableTokenizer};

fn leak(v: Vec<String>) -> Vec<&'static str> {
    v.into_iter()
        .map(|s| &*Box::leak(s.into_boxed_str()))
        .collect()
}

/// X and Y over three symbols each, strongly but not fully dependent.
const JOINT: [[f64; 3]; 3] = [[0.25, 0.05, 0.03], [0.04, 0.20, 0.06], [0.02, 0.05, 0.30]];

fn marginals() -> ([f64; 3], [f64; 3]) {
    let mut px = [0.0; 3];
    let mut py = [0.0; 3];
    for (x, row) in JOINT.iter().enumerate() {
        for (y, p) in row.iter().enumerate() {
            px[x] += p;
            py[y] += p;
        }
    }
    (px, py)
}

/// Tokens: 0 <eos>, 1 "T" (the task), 2 "\n", 3..6 "x0".."x2", 6..9 "y0".."y2". After the
/// task the model predicts X by its marginal; after "y_b \n" by p(x | y_b); after
/// "x_a \n" (GPPM's order) by p(y | x_a).
fn synthetic() -> (TableModel, TableTokenizer) {
    let mut vocab = vec!["<eos>".to_string(), "T".into(), "\n".into()];
    vocab.extend((0..3).map(|i| format!("x{i}")));
    vocab.extend((0..3).map(|i| format!("y{i}")));
    let vocab = leak(vocab);
    let (px, py) = marginals();
    let x = |i: usize| 3 + i as u32;
    let y = |i: usize| 6 + i as u32;
    let mut rules: Vec<Rule> = vec![
        ((vec![]), (1..9).map(|t| (t, 1.0 / 8.0)).collect()),
        (vec![1], (0..3).map(|i| (x(i), px[i])).collect()),
    ];
    for b in 0..3 {
        rules.push((
            vec![y(b), 2],
            (0..3).map(|a| (x(a), JOINT[a][b] / py[b])).collect(),
        ));
    }
    for a in 0..3 {
        rules.push((
            vec![x(a), 2],
            (0..3).map(|b| (y(b), JOINT[a][b] / px[a])).collect(),
        ));
    }
    let model = TableModel {
        vocab: vocab.clone(),
        rules,
        context: 64,
    };
    (model, TableTokenizer { vocab })
}

fn sample_items(n: usize, seed: u64) -> Vec<(usize, usize)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut u: f64 = rng.random();
            for (a, row) in JOINT.iter().enumerate() {
                for (b, p) in row.iter().enumerate() {
                    if u < *p {
                        return (a, b);
                    }
                    u -= p;
                }
            }
            (2, 2)
        })
        .collect()
}

fn items_of(pairs: &[(usize, usize)]) -> Vec<Item> {
    pairs
        .iter()
        .map(|&(a, b)| Item::new("w", &format!("x{a}"), &format!("y{b}")))
        .collect()
}

fn options(mechanism: Mechanism) -> Options {
    Options {
        mechanism,
        template: "T".into(),
        bootstrap: 100,
        ..Options::default()
    }
}

fn mutual_information() -> f64 {
    let (px, py) = marginals();
    let mut mi = 0.0;
    for (a, row) in JOINT.iter().enumerate() {
        for (b, p) in row.iter().enumerate() {
            mi += p * (p / (px[a] * py[b])).ln();
        }
    }
    mi
}

#[test]
fn pmi_estimate_converges_to_the_mutual_information() {
    let (model, tok) = synthetic();
    let mi = mutual_information();
    assert!(mi > 0.3, "the synthetic distribution is informative: {mi}");
    let mut errors = Vec::new();
    for n in [200, 20_000] {
        let items = items_of(&sample_items(n, 7));
        let ev = evaluate(&model, &tok, &items, &[], &options(Mechanism::Pmi), |_| {
            true
        })
        .unwrap();
        errors.push((ev.honest_mean - mi).abs());
    }
    // Standard error at n = 20,000 is about 0.006 nats.
    assert!(errors[1] < 0.03, "{errors:?} (I = {mi})");
    assert!(errors[1] < errors[0], "{errors:?}");
}

#[test]
fn tvd_mi_estimate_converges_to_the_total_variation() {
    // With the true PMI as critic and τ = 0, E_P f − E_Q f is exactly TVD(P_XY, P_X P_Y).
    let (model, tok) = synthetic();
    let (px, py) = marginals();
    let mut tvd = 0.0;
    for (a, row) in JOINT.iter().enumerate() {
        for (b, p) in row.iter().enumerate() {
            tvd += (p - px[a] * py[b]).max(0.0);
        }
    }
    let items = items_of(&sample_items(20_000, 8));
    let ev = evaluate(
        &model,
        &tok,
        &items,
        &[],
        &options(Mechanism::TvdMi),
        |_| true,
    )
    .unwrap();
    assert!(
        (ev.honest_mean - tvd).abs() < 0.03,
        "{} vs {tvd}",
        ev.honest_mean
    );
}

#[test]
fn gppm_is_the_peers_log_likelihood() {
    // E[log q(Y | X)] = −H(Y | X).
    let (model, tok) = synthetic();
    let (px, _) = marginals();
    let mut h = 0.0;
    for (a, row) in JOINT.iter().enumerate() {
        for p in row {
            h -= p * (p / px[a]).ln();
        }
    }
    let items = items_of(&sample_items(20_000, 9));
    let ev = evaluate(&model, &tok, &items, &[], &options(Mechanism::Gppm), |_| {
        true
    })
    .unwrap();
    assert!(
        (ev.honest_mean + h).abs() < 0.03,
        "{} vs {}",
        ev.honest_mean,
        -h
    );
}

#[test]
fn garbling_a_report_lowers_its_expected_score() {
    // Garbled: with probability ε the report is replaced by a uniform symbol.
    let (model, tok) = synthetic();
    let (px, py) = marginals();
    let pairs = sample_items(20_000, 10);
    let opts = options(Mechanism::Pmi);
    let mut means = Vec::new();
    for eps in [0.0, 0.3, 0.7] {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut scorer = Scorer::new(&model, &tok);
        let mut total = 0.0;
        for &(a, b) in &pairs {
            let reported = if rng.random::<f64>() < eps {
                rng.random_range(0..3)
            } else {
                a
            };
            let item = Item::new("w", &format!("x{a}"), &format!("y{b}"));
            total +=
                score_report(&mut scorer, &opts, &item, &format!("x{reported}"), "y0").unwrap();
        }
        let mean = total / pairs.len() as f64;
        // The exact expectation: Σ p(x, y) Σ_x' g(x' | x) log p(x' | y) / p(x').
        let mut exact = 0.0;
        for (a, row) in JOINT.iter().enumerate() {
            for (b, p) in row.iter().enumerate() {
                for r in 0..3 {
                    let g = (1.0 - eps) * f64::from(u8::from(r == a)) + eps / 3.0;
                    exact += p * g * (JOINT[r][b] / py[b] / px[r]).ln();
                }
            }
        }
        assert!((mean - exact).abs() < 0.03, "ε {eps}: {mean} vs {exact}");
        means.push(mean);
    }
    assert!(means[0] > means[1] && means[1] > means[2], "{means:?}");
}

/// Word-level reports: topic t's honest report is "a{t} b{t}", its peer "c{t} d{t}". The
/// peer makes "a{t}" a little likelier and, after it, " b{t}" much likelier; nothing else
/// depends on the peer.
fn topics(k: usize) -> (TableModel, TableTokenizer, Vec<Item>) {
    let mut vocab: Vec<String> = vec!["<eos>".into(), "H".into(), "\n".into()];
    for t in 0..k {
        for w in ["a", "b", "c", "d"] {
            vocab.push(format!("{w}{t}"));
            vocab.push(format!(" {w}{t}"));
        }
    }
    for w in ["a", " a", " thing", " or", " kind", " of"] {
        vocab.push(w.into());
    }
    let vocab = leak(vocab);
    let id = |s: String| vocab.iter().position(|v| *v == s).unwrap() as u32;
    let m = vocab.len() - 1;
    let with = |favoured: u32, p: f64| -> Vec<(u32, f64)> {
        (1..=m as u32)
            .map(|t| {
                (
                    t,
                    if t == favoured {
                        p
                    } else {
                        (1.0 - p) / (m - 1) as f64
                    },
                )
            })
            .collect()
    };
    let mut rules: Vec<Rule> = vec![(
        vec![],
        (1..=m as u32).map(|t| (t, 1.0 / m as f64)).collect(),
    )];
    let mut items = Vec::new();
    for t in 0..k {
        let (a, b, d) = (
            id(format!("a{t}")),
            id(format!(" b{t}")),
            id(format!(" d{t}")),
        );
        let factor = 1.5 + 0.25 * t as f64;
        rules.push((vec![d, 2], with(a, factor / m as f64)));
        rules.push((vec![d, 2, a], with(b, 0.9)));
        rules.push((vec![a], with(b, 0.1)));
        items.push(Item::new(
            &format!("w{t}"),
            &format!("a{t} b{t}"),
            &format!("c{t} d{t}"),
        ));
    }
    let model = TableModel {
        vocab: vocab.clone(),
        rules,
        context: 64,
    };
    (model, TableTokenizer { vocab }, items)
}

#[test]
fn honest_reports_outscore_every_manipulation_on_the_table_model() {
    let (model, tok, items) = topics(6);
    let opts = Options {
        template: "H".into(),
        bootstrap: 200,
        ..Options::default()
    };
    let mut calls = 0;
    let ev = evaluate(&model, &tok, &items, &Manipulation::ALL, &opts, |_| {
        calls += 1;
        true
    })
    .unwrap();
    assert_eq!(calls, items.len());
    assert_eq!(ev.manipulations.len(), 5);
    for m in &ev.manipulations {
        assert_eq!(m.comparison.auc, Some(1.0), "{:?}", m);
        assert!(m.comparison.cohens_d.is_some_and(|d| d > 0.0), "{:?}", m);
        assert!(ev.honest_mean > m.mean, "{:?}", m);
        assert_eq!(m.comparison.n, 6);
    }
    // The same seed gives the same numbers.
    assert_eq!(
        ev,
        evaluate(&model, &tok, &items, &Manipulation::ALL, &opts, |_| true).unwrap()
    );
    // Cancelling stops with a named error.
    let err = evaluate(&model, &tok, &items, &Manipulation::ALL, &opts, |_| false).unwrap_err();
    assert_eq!(err, ElicitError::Cancelled);
}

#[test]
fn bad_input_gives_named_errors() {
    let err = parse_pairs("{\"word\": \"cat\", \"report\": \"a pet\"}\n").unwrap_err();
    assert!(
        err.to_string().contains("line 1") && err.to_string().contains("missing field `peer`"),
        "{err}"
    );
    let err = parse_pairs("\n{\"word\": \"cat\", \"report\": \" \", \"peer\": \"x\"}").unwrap_err();
    assert_eq!(
        err,
        ElicitError::EmptyField {
            line: 2,
            word: "cat".into(),
            field: "report"
        }
    );
    let err = parse_pairs("not json").unwrap_err();
    assert!(matches!(err, ElicitError::BadLine { line: 1, .. }), "{err}");
    let ok =
        parse_pairs("{\"word\":\"a\",\"report\":\"b\",\"peer\":\"c\",\"extra\":1}\n\n").unwrap();
    assert_eq!(ok, vec![Item::new("a", "b", "c")]);

    assert_eq!(
        "kl".parse::<Mechanism>().unwrap_err(),
        ElicitError::UnknownMechanism("kl".into())
    );
    assert_eq!("tvd-mi".parse::<Mechanism>().unwrap(), Mechanism::TvdMi);

    let (model, tok, items) = topics(2);
    let opts = Options {
        template: "H".into(),
        ..Options::default()
    };
    let err = evaluate(&model, &tok, &items[..1], &[], &opts, |_| true).unwrap_err();
    assert_eq!(err, ElicitError::TooFewItems { n: 1 });
    let empty = Options {
        template: String::new(),
        ..opts.clone()
    };
    let err = evaluate(&model, &tok, &items, &[], &empty, |_| true).unwrap_err();
    assert_eq!(err, ElicitError::EmptyTemplate);
    // `--bootstrap` from a user is bounded before the resamples are allocated.
    let huge = Options {
        bootstrap: usize::MAX,
        ..opts.clone()
    };
    let err = evaluate(&model, &tok, &items, &[], &huge, |_| true).unwrap_err();
    assert_eq!(err, ElicitError::TooManyResamples(usize::MAX));
    // A report the tokenizer cannot read names the word.
    let mut bad = items.clone();
    bad[1].report = "zzz".into();
    let err = evaluate(&model, &tok, &bad, &[], &opts, |_| true).unwrap_err();
    assert!(err.to_string().contains("\"w1\""), "{err}");
    // An empty report is refused by the scorer.
    let mut scorer = Scorer::new(&model, &tok);
    let err = score_report(&mut scorer, &opts, &items[0], "", "c0 d0").unwrap_err();
    assert!(err.to_string().contains("the report is empty"), "{err}");
}
