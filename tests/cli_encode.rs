//! `latentlab embed`, `search` and `eval retrieval` from outside: JSON keys, .npy files,
//! exit codes and error messages. Needs the bundled models (scripts/build).

mod common;
use common::{json, latentlab, stderr};

#[test]
fn embed_text_writes_npy_and_prints_a_summary() {
    let dir = std::env::temp_dir().join(format!("latentlab-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out_file = dir.join("t.npy");
    let summary = json(&latentlab(&[
        "embed",
        "text",
        "--out",
        out_file.to_str().unwrap(),
        "a cat",
        "a rocket launch",
    ]));
    assert_eq!(summary["model"], "minilm-l6-v2");
    assert_eq!(summary["n"], 2);
    assert_eq!(summary["dim"], 384);
    let bytes = std::fs::read(&out_file).unwrap();
    let array = npyz::NpyFile::new(&bytes[..]).unwrap();
    assert_eq!(array.shape(), &[2, 384]);
    let data: Vec<f32> = array.into_vec().unwrap();
    let norm: f32 = data[..384].iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn embed_image_gives_embeddings_or_features() {
    let v = json(&latentlab(&[
        "embed",
        "image",
        "www/public/gallery/chelsea.png",
    ]));
    assert_eq!(v["model"], "effl0-minilm-bridge");
    assert_eq!(v["embeddings"][0].as_array().unwrap().len(), 384);
    let v = json(&latentlab(&[
        "embed",
        "image",
        "--model-output",
        "features",
        "www/public/gallery/chelsea.png",
    ]));
    assert_eq!(v["dim"], 1280);
}

#[test]
fn search_text_image_and_composed_queries() {
    let v = json(&latentlab(&[
        "search",
        "--gallery",
        "www/public/gallery",
        "--query",
        "a cat",
        "-k",
        "3",
    ]));
    assert_eq!(v["n"], 12);
    assert!(
        v["results"][0]["item"]
            .as_str()
            .unwrap()
            .ends_with("chelsea.png"),
        "{v}"
    );
    let v = json(&latentlab(&[
        "search",
        "--gallery",
        "www/public/gallery",
        "--image",
        "www/public/gallery/coffee.png",
        "-k",
        "1",
    ]));
    assert!(v["results"][0]["item"]
        .as_str()
        .unwrap()
        .ends_with("coffee.png"));
    // Image + instruction: weight 1 is the instruction alone, weight 0 the image alone.
    let composed = |weight: &str| {
        json(&latentlab(&[
            "search",
            "--gallery",
            "www/public/gallery",
            "--image",
            "www/public/gallery/coffee.png",
            "--query",
            "a cat",
            "--weight",
            weight,
            "-k",
            "1",
        ]))
    };
    let v = composed("1");
    assert!(
        v["results"][0]["item"]
            .as_str()
            .unwrap()
            .ends_with("chelsea.png"),
        "{v}"
    );
    let v = composed("0");
    assert!(
        v["results"][0]["item"]
            .as_str()
            .unwrap()
            .ends_with("coffee.png"),
        "{v}"
    );
    assert_eq!(composed("0.25")["weight"], 0.25);
    let out = latentlab(&[
        "search",
        "--gallery",
        "www/public/gallery",
        "--image",
        "www/public/gallery/coffee.png",
        "--query",
        "a cat",
        "--weight",
        "1.5",
    ]);
    assert!(
        stderr(&out).contains("the fusion weight must lie in [0, 1], not 1.5"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn search_a_text_corpus() {
    let corpus = std::env::temp_dir().join(format!("latentlab-corpus-{}.txt", std::process::id()));
    std::fs::write(
        &corpus,
        "The stock market fell today.\nA kitten sleeps on the sofa.\nRain is expected tomorrow.\n",
    )
    .unwrap();
    let v = json(&latentlab(&[
        "search",
        "--corpus",
        corpus.to_str().unwrap(),
        "--query",
        "a small cat napping",
        "-k",
        "1",
    ]));
    assert_eq!(v["results"][0]["item"], "A kitten sleeps on the sofa.");
    std::fs::remove_file(corpus).ok();
}

#[test]
fn eval_retrieval_reports_recall_on_tux_paint_stamps() {
    // A subset keeps the test quick; the full 430-caption figure is in the README.
    let v = json(&latentlab(&["eval", "retrieval", "--limit", "60"]));
    for key in [
        "model",
        "n",
        "recall_at_1",
        "recall_at_5",
        "recall_at_10",
        "median_rank",
    ] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    assert_eq!(v["n"], 60);
    // Far above chance (10/60) at 10, as the bridge really retrieves.
    assert!(v["recall_at_10"].as_f64().unwrap() > 0.4, "{v}");
}

#[test]
fn bad_input_is_a_clear_error() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["embed", "image", "no/such.png"],
            "cannot read the image no/such.png",
        ),
        (
            &["embed", "text", "--model", "clip", "hi"],
            "no model named \"clip\"",
        ),
        (&["embed", "text", "fine", "  "], "text 1 is empty"),
        (
            &["embed", "image", "Cargo.toml"],
            "cannot read the image Cargo.toml",
        ),
        (
            &["search", "--gallery", "www/public/gallery"],
            "give a --query, an --image, or both",
        ),
    ];
    for (args, message) in cases {
        let out = latentlab(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    }
}

#[test]
fn search_with_a_learned_fusion_model() {
    let search = |extra: &[&str]| {
        let mut args = vec![
            "search",
            "--gallery",
            "www/public/gallery",
            "--image",
            "www/public/gallery/chelsea.png",
            "--query",
            "in black and white",
            "-k",
            "12",
        ];
        args.extend_from_slice(extra);
        latentlab(&args)
    };
    let fused = json(&search(&[
        "--fusion-model",
        "tests/fixtures/fusion_tiny/fusion.onnx",
    ]));
    assert_eq!(
        fused["fusion_model"],
        "tests/fixtures/fusion_tiny/fusion.onnx"
    );
    assert!(fused["weight"].is_null(), "{fused}");
    let weighted = json(&search(&[]));
    assert_eq!(weighted["weight"], 0.5);
    // the learned fusion makes another query: the scores of the same pictures differ
    let score = |v: &serde_json::Value, item: &str| {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["item"].as_str().unwrap().ends_with(item))
            .unwrap()["score"]
            .as_f64()
            .unwrap()
    };
    assert!((score(&fused, "horse.png") - score(&weighted, "horse.png")).abs() > 1e-3);
    let out = search(&[
        "--fusion-model",
        "tests/fixtures/clip_tiny/vision_model.onnx",
    ]);
    assert!(
        stderr(&out).contains("has no input \"image_embeds\""),
        "{}",
        stderr(&out)
    );
}
