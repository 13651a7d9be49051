//! Fuzz targets for every parser and entry point that takes bytes or text (issue 19), with
//! bolero: one definition, two engines.
//!
//! - `cargo test -p latentlab-fuzz` (in the test command, stable Rust) replays each target's
//!   committed corpus in `fuzz/tests/__fuzz__/targets__<target>/corpus/` (and any `crashes/`),
//!   then feeds it random inputs for a short time (`BOLERO_RANDOM_TEST_TIME_MS`, 1 s by
//!   default). A package of its own, so the instrumented build compiles only the library
//!   and these targets, not every test of the main package.
//! - `scripts/fuzz [SECONDS]` runs each target under libFuzzer (coverage-guided, nightly,
//!   `cargo bolero`), grows the corpora and prints executions per target.
//!
//! A target passes when every input either parses or is refused with an error: a panic, an
//! abort or an allocation failure is a finding. Each finding becomes a file in the target's
//! `corpus/`, replayed on every test run from then on. `write_seed_corpora` (ignored; run by
//! `scripts/fuzz seed`) writes the starting corpora from the test fixtures.

use latentlab::core::lm::{LanguageModel, Tokenize, Want};
use latentlab::core::matrix::Matrix;
use latentlab::core::plan::{
    analyze, parse_duration, parse_duration_lenient, parse_plans, prompt, score_answer,
    GraphEncoding, PromptOptions,
};
use latentlab::core::sketch::{ChoiceTask, Sketch};
use latentlab::core::steer::{ApplyTo, Steering};
use latentlab::core::tiny::TinyBenchmark;
use latentlab::encode::{BpeTokenizer, Manifest};
use latentlab::lm::GgufModel;
use latentlab::npy::{labels_from_npy, matrix_from_npy};

/// Most targets take text: invalid UTF-8 is refused before them by their callers (Rust
/// `&str`, JS strings), so the fuzzer's bytes are read lossily rather than skipped.
fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// Plan JSON (a plan file, an AsyncHow record, or JSON lines of them): parsed, analysed and
/// turned into every kind of prompt.
fn plan_json(bytes: &[u8]) {
    for plan in parse_plans(&text(bytes)).into_iter().flatten() {
        let analysis = analyze(&plan);
        let [low, high] = analysis.optimal_seconds.to_array();
        assert!(low <= high, "optimal time [{low}, {high}]");
        for encoding in [
            GraphEncoding::None,
            GraphEncoding::AdjacencyList,
            GraphEncoding::AdjacencyMatrix,
            GraphEncoding::Csr,
            GraphEncoding::EdgeList,
        ] {
            let options = PromptOptions {
                encoding,
                bag: true,
                chain_of_thought: true,
                ..PromptOptions::default()
            };
            let _ = prompt(&plan, options);
        }
    }
}

/// Duration phrases ("1 h 30 min", "between 2 and 3 days") as step durations and as answers.
fn duration_phrase(bytes: &[u8]) {
    let phrase = text(bytes);
    if let Ok(d) = parse_duration(&phrase) {
        let [low, high] = d.to_array();
        assert!(low <= high, "{phrase:?} gave [{low}, {high}]");
    }
    let _ = parse_duration_lenient(&phrase);
}

/// A PLaG answer (free text from a model) scored against a fixed plan.
fn plag_answer(bytes: &[u8]) {
    static PLAN: &str = r#"{"title": "tea", "steps": [
        {"id": "boil", "text": "boil water", "duration": "5 min"},
        {"id": "cups", "text": "get cups", "duration": "1 min"},
        {"id": "brew", "text": "brew", "duration": "3-4 minutes"}],
        "constraints": [["boil", "brew"], ["cups", "brew"]]}"#;
    let plan = parse_plans(PLAN)
        .pop()
        .expect("one plan")
        .expect("the fixed plan parses");
    let _ = score_answer(&plan, &text(bytes));
}

/// `.npy` files as the CLI reads them: a matrix and class labels.
fn npy(bytes: &[u8]) {
    if let Ok(m) = matrix_from_npy(bytes, "fuzz.npy") {
        assert_eq!(m.data.len(), m.rows * m.cols);
    }
    let _ = labels_from_npy(bytes, "fuzz.npy");
}

/// The encoders' model manifest.
fn model_manifest(bytes: &[u8]) {
    let _ = Manifest::from_json(&text(bytes));
}

/// A saved steering function, then applied to a small matrix of its width.
fn steering_json(bytes: &[u8]) {
    let Ok(steering) = Steering::from_json(&text(bytes)) else {
        return;
    };
    if steering.dim == 0 || steering.dim > 256 {
        return; // validated, but too wide to apply quickly here
    }
    let x = Matrix::new(3, steering.dim, vec![0.5; 3 * steering.dim], "x").expect("shape");
    for to in [ApplyTo::All, ApplyTo::Predicted, ApplyTo::Split] {
        let _ = steering.apply(&x, None, to);
    }
}

/// A fitted tinyBenchmark (the JSON `tiny fit` writes and `estimateTiny` reads), then an
/// estimate from answers on its anchors.
fn tiny_benchmark(bytes: &[u8]) {
    let Ok(bench) = serde_json::from_str::<TinyBenchmark>(&text(bytes)) else {
        return;
    };
    let answers = vec![1.0; bench.anchors.len().min(100_000)];
    let _ = bench.estimate(&answers);
}

/// A GGUF language model: parsed, its tokenizer built, and two tokens run through it.
fn gguf(bytes: &[u8]) {
    let Ok(model) = GgufModel::from_bytes(bytes.to_vec(), None) else {
        return;
    };
    if let Ok(tokenizer) = BpeTokenizer::from_spec(&model.vocabulary) {
        let _ = tokenizer.encode("the cat");
    }
    let mut state = model.llama.new_state();
    let _ = model.llama.extend(&mut state, &[0, 1], Want::Last);
}

/// A Prompt Sketching template.
fn sketch_template(bytes: &[u8]) {
    if let Ok(sketch) = Sketch::parse(&text(bytes)) {
        let _ = sketch.holes().count();
    }
}

/// A BIG-bench task file, as `lm eval` and the sketch page read it.
fn bigbench_task(bytes: &[u8]) {
    let format = ChoiceTask::format_for("date_understanding").expect("a known task");
    let _ = ChoiceTask::from_bigbench_json("fuzz", format, &text(bytes));
}

macro_rules! fuzz_targets {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                bolero::check!().for_each(|bytes: &[u8]| super::$name(bytes));
            }
        )*
        /// Every target's name, for `write_seed_corpora` and `scripts/fuzz`.
        pub const TARGETS: &[&str] = &[$(stringify!($name)),*];
    };
}

/// One test per target; bolero names its folder `fuzz/tests/__fuzz__/targets__<name>/`.
mod targets {
    fuzz_targets!(
        plan_json,
        duration_phrase,
        plag_answer,
        npy,
        model_manifest,
        steering_json,
        tiny_benchmark,
        gguf,
        sketch_template,
        bigbench_task,
    );
}

/// Writes the starting corpora from the test fixtures and from the library's own writers
/// (run by `scripts/fuzz seed`; the files are committed). Small inputs on purpose: libFuzzer
/// mutates small files far faster, and every structure appears in them.
#[test]
#[ignore = "writes fuzz/tests/__fuzz__/*/corpus: run by scripts/fuzz seed"]
fn write_seed_corpora() {
    use latentlab::core::steer::{fit, FitOptions, Method};
    use latentlab::core::tiny::{fit_benchmark, BenchmarkOptions, Responses};
    use latentlab::lm::testing::{random_tiny_llama, TinyShape};

    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = fuzz.join("tests");
    let repo_tests = fuzz.join("../tests");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        assert!(
            targets::TARGETS.contains(&target),
            "unknown target {target}"
        );
        let dir = root
            .join("__fuzz__")
            .join(format!("targets__{target}"))
            .join("corpus");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    let fixture =
        |path: &str| std::fs::read_to_string(repo_tests.join("fixtures").join(path)).unwrap();

    // Plans: the first records of the three AsyncHow files, a plan file, and JSON lines.
    let mut phrases = std::collections::BTreeSet::new();
    for file in ["async_benchmark", "para_benchmark", "seq_benchmark"] {
        let text = fixture(&format!("asynchow/{file}.jsonl"));
        for (i, line) in text.lines().take(3).enumerate() {
            write("plan_json", &format!("{file}_{i}.json"), line.as_bytes());
        }
        for line in text.lines().take(40) {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(times) = record.get("time_dic").and_then(|t| t.as_object()) {
                phrases.extend(times.values().filter_map(|v| v.as_str().map(String::from)));
            }
        }
    }
    let plan_file = r#"{"title": "tea", "steps": [
        {"id": "boil", "text": "boil water", "duration": "5 min"},
        {"id": "cups", "text": "get cups", "duration": [60, 90]},
        {"id": "brew", "text": "brew", "duration": "3-4 minutes"}],
        "constraints": [["boil", "brew"], ["cups", "brew"]]}"#;
    write("plan_json", "plan_file.json", plan_file.as_bytes());
    let two_lines = format!(
        "{}\n{}\n",
        plan_file.replace('\n', " "),
        plan_file.replace('\n', " ")
    );
    write("plan_json", "two_plans.jsonl", two_lines.as_bytes());

    // Duration phrases: the fixtures' own, and the forms the parser knows.
    phrases.extend(
        [
            "5 min",
            "1 h 30 min",
            "2-3 days",
            "1 month",
            "12 months",
            "a year",
            "half an hour",
            "1.5 hours",
            "30 seconds",
            "3 to 4 weeks",
            "8 min 30 s – 10 min 30 s",
            "1 hour and 5 minutes",
        ]
        .map(String::from),
    );
    for (i, phrase) in phrases.iter().take(60).enumerate() {
        write(
            "duration_phrase",
            &format!("phrase_{i:02}.txt"),
            phrase.as_bytes(),
        );
    }

    // Answers a model might give to the fixed plan (9 to 10 minutes).
    for (i, answer) in [
        "9 min",
        "The answer is 9 minutes.",
        "Boiling takes 5 min, then brewing 3-4 minutes, so 8-9 minutes in total.",
        "8 min 30 s – 10 min 30 s",
        "It would take 1 hour.",
        "0",
        "Step 1: boil (5 min). Step 2: cups (1 min) in parallel. Step 3: brew. Total: 9 minutes",
    ]
    .iter()
    .enumerate()
    {
        write("plag_answer", &format!("answer_{i}.txt"), answer.as_bytes());
    }

    // .npy files of every dtype the readers accept, and both header versions.
    let npy = latentlab::npy::testing::npy_file;
    let f32s: Vec<u8> = (0..6)
        .flat_map(|i| (i as f32 * 0.5).to_le_bytes())
        .collect();
    let f64s: Vec<u8> = (0..3).flat_map(|i| (i as f64).to_le_bytes()).collect();
    let i64s: Vec<u8> = [0i64, 1, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
    for (name, version, dict, data) in [
        (
            "f4_2x3.npy",
            1,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
            &f32s[..],
        ),
        (
            "f4_v2.npy",
            2,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }",
            &f32s[..],
        ),
        (
            "f8_3.npy",
            1,
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }",
            &f64s[..],
        ),
        (
            "f4_fortran.npy",
            1,
            "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 2), }",
            &f32s[..],
        ),
        (
            "i8_3.npy",
            1,
            "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }",
            &i64s[..],
        ),
        (
            "u1_3x1.npy",
            1,
            "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 1), }",
            &[0, 1, 2][..],
        ),
        (
            "b1_3.npy",
            1,
            "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }",
            &[0, 1, 1][..],
        ),
        (
            "f4_0x4.npy",
            1,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4), }",
            &[][..],
        ),
    ] {
        write("npy", name, &npy(version, dict, data));
    }

    // The real model manifest, and one entry of each kind.
    let manifest = std::fs::read(fuzz.join("../models/manifest.json")).unwrap();
    write("model_manifest", "manifest.json", &manifest);

    // Steering functions of both methods, fitted on six rows of three columns.
    let x = Matrix::new(
        6,
        3,
        vec![
            0.1, 0.2, 0.3, 0.0, 0.5, 0.1, 0.4, 0.1, 0.2, 1.1, 1.0, 0.9, 1.3, 0.8, 1.0, 0.9, 1.2,
            1.1,
        ],
        "x",
    )
    .unwrap();
    let z = [0u8, 0, 0, 1, 1, 1];
    for method in [Method::Mean, Method::MeanCov] {
        // Three rows per group leave a rank-2 covariance: regularise, as users must.
        let options = FitOptions {
            method,
            reg: (method == Method::MeanCov).then_some(1e-3),
            ..FitOptions::default()
        };
        let steering = fit(&x, &z, &options).unwrap();
        write(
            "steering_json",
            &format!("{}.json", method.name()),
            steering.to_json().as_bytes(),
        );
    }

    // A tiny benchmark fitted on 30 models × 12 items of made-up answers.
    let (models, items) = (30, 12);
    let answers: Vec<f64> = (0..models * items)
        .map(|i| (((i / items) * 7 + (i % items) * 3) % 5 < 3) as u8 as f64)
        .collect();
    let weights = vec![1.0; items];
    let data = Responses {
        answers: &answers,
        models,
        items,
        balance_weights: &weights,
    };
    let options = BenchmarkOptions {
        anchors: 4,
        restarts: 1,
        ..BenchmarkOptions::default()
    };
    let bench = fit_benchmark(data, &options, |_| {}).unwrap();
    write(
        "tiny_benchmark",
        "fitted.json",
        serde_json::to_string(&bench).unwrap().as_bytes(),
    );

    // The smallest random Llama that still has every tensor kind (labelled random inside).
    let shape = TinyShape {
        layers: 1,
        embedding: 32,
        heads: 2,
        kv_heads: 1,
        ffn: 32,
        context: 16,
        ..TinyShape::default()
    };
    write(
        "gguf",
        "tiny_random_llama.gguf",
        &random_tiny_llama(7, &shape),
    );

    // Sketch templates with every constraint kind.
    for (i, template) in [
        "The answer is[A].\nwhere A in [\" yes\", \" no\"]",
        "Q: 7 or 12?\nA: [ANSWER]. Why: [WHY]\nwhere ANSWER in [\"7\", \"12\"] and STOPS_AT(WHY, \"\\n\")\nwhere len(TOKENS(WHY)) < 30 and INT(ANSWER)",
        "A list:\n- [ITEM]\n- [ITEM2]\nwhere STOPS_AT(ITEM, \"\\n\") and STOPS_AT(ITEM2, \"\\n\")",
        "no holes at all",
    ]
    .iter()
    .enumerate()
    {
        write("sketch_template", &format!("template_{i}.txt"), template.as_bytes());
    }

    // A BIG-bench task of two examples, in the file's own layout.
    let task = r#"{"name": "date_understanding", "examples": [
        {"input": "Today is 3/5. What is the date tomorrow in MM/DD?", "target_scores": {"03/06": 1, "03/04": 0}},
        {"input": "Yesterday was Monday. What day is today?", "target_scores": {"Tuesday": 1, "Sunday": 0, "Friday": 0}}]}"#;
    write("bigbench_task", "task.json", task.as_bytes());
}
