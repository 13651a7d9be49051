//! `latentlab lm generate|score` from outside: JSON keys, streaming, seeds, errors. Most
//! cases run a tiny random GGUF the test writes (labelled random in its metadata); one runs
//! the bundled SmolLM2.

mod common;
use common::{fails_with, json, latentlab};
use latentlab::lm::testing::{random_tiny_llama, TinyShape};

fn tiny_model_file(tag: &str) -> String {
    let dir = std::env::temp_dir().join(format!("latentlab-cli-lm-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tiny-random.gguf");
    std::fs::write(&path, random_tiny_llama(3, &TinyShape::default())).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn generate_prints_text_tokens_and_speed() {
    let model = tiny_model_file("gen");
    let v = json(&latentlab(&[
        "lm",
        "generate",
        "--model",
        &model,
        "--prompt",
        "the cat",
        "--max-tokens",
        "6",
    ]));
    let tokens = v["tokens"].as_array().unwrap();
    assert!(!tokens.is_empty() && tokens.len() <= 6, "{v}");
    assert!(v["text"].is_string());
    assert!(v["tokens_per_second"].as_f64().unwrap() >= 0.0);
    assert_eq!(v["logprobs"].as_array().unwrap().len(), tokens.len());
    assert!(v["model"].as_str().unwrap().contains("random"));
}

#[test]
fn sampling_with_a_seed_repeats_and_streaming_adds_up_to_the_text() {
    let model = tiny_model_file("seed");
    let run = |seed: &str| {
        json(&latentlab(&[
            "lm",
            "generate",
            "--model",
            &model,
            "--prompt",
            "in the",
            "--decoder",
            "sample",
            "--temperature",
            "1.5",
            "--seed",
            seed,
            "--max-tokens",
            "12",
        ]))
    };
    assert_eq!(run("5")["text"], run("5")["text"]);
    let texts: std::collections::HashSet<String> = ["1", "2", "3", "4"]
        .iter()
        .map(|s| run(s)["text"].as_str().unwrap().to_string())
        .collect();
    assert!(texts.len() > 1, "four seeds gave one text: {texts:?}");
    let out = latentlab(&[
        "lm",
        "generate",
        "--model",
        &model,
        "--prompt",
        "a",
        "--max-tokens",
        "5",
        "--stream",
    ]);
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last = lines.last().unwrap();
    let streamed: String = lines[..lines.len() - 1]
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(streamed, last["text"].as_str().unwrap());
    assert_eq!(lines.len() - 1, last["tokens"].as_array().unwrap().len());
}

#[test]
fn score_prints_logprob_tokens_and_per_token() {
    let model = tiny_model_file("score");
    let v = json(&latentlab(&[
        "lm",
        "score",
        "--model",
        &model,
        "--context",
        "the",
        "--text",
        " cat sat",
    ]));
    let per = v["per_token"].as_array().unwrap();
    assert_eq!(per.len(), v["tokens"].as_array().unwrap().len());
    let sum: f64 = per.iter().map(|x| x.as_f64().unwrap()).sum();
    assert!((sum - v["logprob"].as_f64().unwrap()).abs() < 1e-9);
    assert!(per.iter().all(|x| x.as_f64().unwrap() < 0.0));
}

#[test]
fn bad_models_and_options_are_named() {
    let model = tiny_model_file("bad");
    fails_with(
        &latentlab(&[
            "lm",
            "generate",
            "--model",
            "/nonexistent.gguf",
            "--prompt",
            "a",
        ]),
        &["cannot read /nonexistent.gguf"],
    );
    let dir = std::env::temp_dir().join(format!("latentlab-cli-lm-{}-junk", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junk = dir.join("junk.gguf");
    std::fs::write(&junk, b"GGUF\x03\0\0\0garbage").unwrap();
    fails_with(
        &latentlab(&[
            "lm",
            "score",
            "--model",
            junk.to_str().unwrap(),
            "--text",
            "a",
        ]),
        &["corrupt", "truncated"],
    );
    fails_with(
        &latentlab(&[
            "lm",
            "generate",
            "--model",
            &model,
            "--prompt",
            "a",
            "--decoder",
            "sample",
            "--temperature",
            "0",
        ]),
        &["temperature is 0"],
    );
    fails_with(
        &latentlab(&["lm", "generate", "--model", &model, "--prompt", ""]),
        &["the prompt is empty"],
    );
    let long = "a ".repeat(400);
    fails_with(
        &latentlab(&["lm", "generate", "--model", &model, "--prompt", &long]),
        &["more than the model's context of 256 tokens"],
    );
    let out = latentlab(&[
        "lm",
        "generate",
        "--model",
        &model,
        "--prompt",
        "a",
        "--decoder",
        "nucleus",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "clap refuses an unknown decoder"
    );
}

#[test]
fn the_bundled_model_says_paris() {
    let v = json(&latentlab(&[
        "lm",
        "generate",
        "--prompt",
        "The capital of France is",
        "--max-tokens",
        "3",
    ]));
    assert!(v["text"].as_str().unwrap().starts_with(" Paris"), "{v}");
    assert_eq!(v["model"], "smollm2-135m-instruct");
}

#[test]
fn sketch_run_prints_values_and_joint_logprobs() {
    let model = tiny_model_file("sketch");
    let dir = std::env::temp_dir().join(format!("latentlab-cli-lm-{}-sk", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let template = dir.join("t.txt");
    std::fs::write(
        &template,
        "the cat[A] in the[B].\nwhere A in [\" sat\", \" ran\"] and INT(B) and len(TOKENS(B)) < 3",
    )
    .unwrap();
    for decoder in ["argmax", "sample", "beam", "var", "beam_var"] {
        let v = json(&latentlab(&[
            "sketch",
            "run",
            "--model",
            &model,
            "--template",
            template.to_str().unwrap(),
            "--decoder",
            decoder,
        ]));
        let a = v["values"]["A"].as_str().unwrap();
        assert!(a == " sat" || a == " ran", "{v}");
        assert!(
            v["values"]["B"]
                .as_str()
                .unwrap()
                .trim()
                .bytes()
                .all(|b| b.is_ascii_digit()),
            "{v}"
        );
        let lp = v["logprob"].as_f64().unwrap();
        assert!(
            (lp - v["template_logprob"].as_f64().unwrap()
                - v["generated_logprob"].as_f64().unwrap())
            .abs()
                < 1e-9
        );
        assert_eq!(v["decoder"], decoder);
        assert!(
            v["tokens_generated"].as_u64().unwrap() >= 1 && v["seconds"].as_f64().unwrap() >= 0.0
        );
        assert!(v["text"]
            .as_str()
            .unwrap()
            .starts_with(&format!("the cat{a} in the")));
    }
    std::fs::write(&template, "the [A\nwhere A in [\"x\"]").unwrap();
    fails_with(
        &latentlab(&[
            "sketch",
            "run",
            "--model",
            &model,
            "--template",
            template.to_str().unwrap(),
        ]),
        &["template line 1, column 5", "not closed"],
    );
    std::fs::write(&template, "the[A].\nwhere A in [\"x\"] and INT(A)").unwrap();
    fails_with(
        &latentlab(&[
            "sketch",
            "run",
            "--model",
            &model,
            "--template",
            template.to_str().unwrap(),
        ]),
        &["hole A: no token can satisfy"],
    );
}

#[test]
fn sketch_eval_reports_accuracy_with_an_interval_for_every_mode() {
    let model = tiny_model_file("eval");
    for (mode, decoder) in [
        ("direct", "argmax"),
        ("rank", "none"),
        ("sketch", "argmax"),
        ("sketch", "beam_var"),
    ] {
        let mut args = vec![
            "sketch",
            "eval",
            "--model",
            &model,
            "--task",
            "date_understanding",
            "--mode",
            mode,
            "--limit",
            "3",
            "--max-tokens",
            "4",
            "--per-example",
        ];
        if mode == "sketch" {
            args.extend(["--decoder", decoder]);
        }
        let v = json(&latentlab(&args));
        assert_eq!(v["task"], "date_understanding");
        assert_eq!(
            (v["mode"].as_str(), v["decoder"].as_str()),
            (Some(mode), Some(decoder))
        );
        assert_eq!(v["n"], 3);
        let correct = v["correct"].as_u64().unwrap();
        let accuracy = v["accuracy"].as_f64().unwrap();
        assert!((accuracy - correct as f64 / 3.0).abs() < 1e-12, "{v}");
        let ci = v["ci95"].as_array().unwrap();
        let (lo, hi) = (ci[0].as_f64().unwrap(), ci[1].as_f64().unwrap());
        assert!(
            0.0 <= lo && lo <= accuracy && accuracy <= hi && hi <= 1.0,
            "{v}"
        );
        // The first three date questions have six options each.
        assert!(
            (v["chance"].as_f64().unwrap() - 1.0 / 6.0).abs() < 1e-12,
            "{v}"
        );
        let examples = v["examples"].as_array().unwrap();
        assert_eq!(examples.len(), 3);
        let counted = examples.iter().filter(|e| e["correct"] == true).count();
        assert_eq!(counted as u64, correct);
        if mode != "direct" {
            // A choice hole and ranking always name an option.
            assert_eq!(v["named_no_option"], 0, "{v}");
            assert!(examples.iter().all(|e| e["predicted"].is_string()), "{v}");
        }
    }
}

/// `--mode rank` picks the option `lm score` finds likeliest after the same question.
#[test]
fn sketch_eval_rank_agrees_with_lm_score() {
    let model = tiny_model_file("rank");
    let v = json(&latentlab(&[
        "sketch",
        "eval",
        "--model",
        &model,
        "--task",
        "date_understanding",
        "--mode",
        "rank",
        "--limit",
        "1",
        "--per-example",
    ]));
    let task: serde_json::Value = serde_json::from_str(include_str!(
        "../www/public/bigbench/date_understanding.json"
    ))
    .unwrap();
    let example = &task["examples"][0];
    let context = format!(
        "Q: {}\nA: The date is",
        example["input"].as_str().unwrap().trim_end()
    );
    let best = example["target_scores"]
        .as_object()
        .unwrap()
        .keys()
        .map(|option| {
            let s = json(&latentlab(&[
                "lm",
                "score",
                "--model",
                &model,
                "--context",
                &context,
                "--text",
                &format!(" {option}"),
            ]));
            (option.clone(), s["logprob"].as_f64().unwrap())
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    assert_eq!(v["examples"][0]["predicted"], best.0.as_str(), "{v}");
}

#[test]
fn sketch_eval_refuses_bad_arguments_by_name() {
    let model = tiny_model_file("evalbad");
    let task = [
        "sketch",
        "eval",
        "--model",
        &model,
        "--task",
        "date_understanding",
    ];
    fails_with(
        &latentlab(&[&task[..], &["--limit", "0"]].concat()),
        &["--limit 0"],
    );
    fails_with(
        &latentlab(&[&task[..], &["--decoder", "beam_var", "--beams", "0"]].concat()),
        &["beams is 0"],
    );
    // A question longer than the model's context is named with its example.
    let long = latentlab(&[
        "sketch",
        "eval",
        "--model",
        &model,
        "--task",
        "tracking_shuffled_objects_three",
        "--limit",
        "1",
    ]);
    fails_with(
        &long,
        &[
            "task tracking_shuffled_objects_three, example 0",
            "context of 256 tokens",
        ],
    );
    assert_eq!(
        common::stderr(&long)
            .matches("more than the model's context")
            .count(),
        1
    );
    // An unknown task is clap's usage error (exit 2), naming the value and the choices.
    let out = latentlab(&["sketch", "eval", "--model", &model, "--task", "arithmetic"]);
    assert_eq!(out.status.code(), Some(2));
    let err = common::stderr(&out);
    assert!(
        err.contains("arithmetic") && err.contains("date_understanding"),
        "{err}"
    );
}
