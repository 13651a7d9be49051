//! Encoder conformance: tract's embeddings against onnxruntime's on real inputs
//! (fixtures: tests/fixtures/encoders, made by make_fixtures.py), the CLIP-style loading
//! path on a tiny random pair, and bad input.
//!
//! Needs the bundled models (models/build_models.py, run by scripts/build and scripts/test).

use std::path::{Path, PathBuf};

use latentlab::core::matrix::{cosine, Matrix};
use latentlab::encode::{
    preprocess, EncodeError, FusionModel, ImageEncoder, Manifest, ModelEntry, RgbaImage,
    TextEncoder,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: impl AsRef<Path>) -> Vec<u8> {
    let path = root().join(path);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the bundled models are built by scripts/build or models/build_models.py)",
            path.display()
        )
    })
}

fn manifest() -> Manifest {
    Manifest::from_json(&String::from_utf8(read("models/manifest.json")).unwrap()).unwrap()
}

fn npy(path: &str) -> Matrix {
    let bytes = read(format!("tests/fixtures/encoders/{path}"));
    let array = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape: Vec<usize> = array.shape().iter().map(|&d| d as usize).collect();
    let data: Vec<f32> = array.into_vec().unwrap();
    Matrix::new(shape[0], shape[1], data, path).unwrap()
}

fn png(path: impl AsRef<Path>) -> RgbaImage {
    let image = image::load_from_memory(&read(path)).unwrap().to_rgba8();
    RgbaImage {
        width: image.width(),
        height: image.height(),
        data: image.into_raw(),
    }
}

fn text_encoder() -> TextEncoder {
    text_encoder_named("minilm-l6-v2")
}

/// Each text's length in tokens, as the encoder's batching sees it.
fn token_lengths(text: &TextEncoder, texts: &[&str]) -> Vec<usize> {
    text.token_ids(texts)
        .unwrap()
        .iter()
        .map(Vec::len)
        .collect()
}

fn text_encoder_named(name: &str) -> TextEncoder {
    let m = manifest();
    let entry = m.get(name).unwrap();
    TextEncoder::from_bytes(
        entry,
        &read(format!("models/{}", entry.file)),
        &read(format!("models/{}", entry.tokenizer.as_deref().unwrap())),
    )
    .unwrap()
}

fn image_encoder() -> ImageEncoder {
    let m = manifest();
    let entry = m.get("effl0-minilm-bridge").unwrap();
    ImageEncoder::from_bytes(entry, &read(format!("models/{}", entry.file))).unwrap()
}

#[derive(serde::Deserialize)]
struct Sentences {
    sentences: Vec<String>,
    token_ids: Vec<Vec<u32>>,
}

fn sentences() -> Sentences {
    serde_json::from_slice(&read("tests/fixtures/encoders/sentences.json")).unwrap()
}

fn gallery_files() -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_slice(&read("tests/fixtures/encoders/images.json")).unwrap();
    serde_json::from_value(v["gallery_files"].clone()).unwrap()
}

fn assert_rows_close(ours: &Matrix, theirs: &Matrix, min_cosine: f32, what: &str) -> f32 {
    assert_eq!((ours.rows, ours.cols), (theirs.rows, theirs.cols), "{what}");
    let mut worst = 1.0f32;
    for i in 0..ours.rows {
        let c = cosine(ours.row(i), theirs.row(i));
        worst = worst.min(c);
        assert!(c >= min_cosine, "{what} row {i}: cosine {c} < {min_cosine}");
    }
    eprintln!("{what}: worst cosine {worst}");
    worst
}

#[test]
fn tokens_equal_python_tokenizers() {
    let s = sentences();
    let texts: Vec<&str> = s.sentences.iter().map(String::as_str).collect();
    assert_eq!(text_encoder().token_ids(&texts).unwrap(), s.token_ids);
}

#[test]
fn text_embeddings_match_onnxruntime() {
    let s = sentences();
    let texts: Vec<&str> = s.sentences.iter().map(String::as_str).collect();
    let ours = text_encoder().embed(&texts).unwrap();
    assert_rows_close(&ours, &npy("text_embeddings.npy"), 0.9999, "MiniLM text");
    // Batching does not change an embedding.
    let alone = text_encoder().embed(&texts[..1]).unwrap();
    assert!(cosine(alone.row(0), ours.row(0)) > 0.99999);
}

/// The int8 MiniLM (models/build_models.py: onnxruntime's quantisation tool, int8 weights,
/// float activations) in tract gives onnxruntime's embeddings of the same file, as the float
/// model does; and it stays close to the float model (the cost of 8-bit weights).
#[test]
fn int8_text_embeddings_match_onnxruntime_on_the_same_file() {
    let s = sentences();
    let texts: Vec<&str> = s.sentences.iter().map(String::as_str).collect();
    let ours = text_encoder_named("minilm-l6-v2-int8")
        .embed(&texts)
        .unwrap();
    assert_rows_close(
        &ours,
        &npy("text_embeddings_int8.npy"),
        0.9999,
        "int8 MiniLM text",
    );
    assert_rows_close(
        &ours,
        &npy("text_embeddings.npy"),
        0.997,
        "int8 MiniLM against float",
    );
}

#[test]
fn image_embeddings_match_onnxruntime_on_the_same_pixels() {
    let images: Vec<RgbaImage> = gallery_files()
        .iter()
        .map(|f| {
            let stem = Path::new(f).file_stem().unwrap().to_str().unwrap();
            png(format!("tests/fixtures/encoders/letterboxed/{stem}.png"))
        })
        .collect();
    let outputs = image_encoder()
        .embed_outputs(&images, &["image_embeds", "features"])
        .unwrap();
    assert_rows_close(
        &outputs[0],
        &npy("image_embeds.npy"),
        0.9999,
        "bridge image_embeds",
    );
    assert_rows_close(
        &outputs[1],
        &npy("image_features.npy"),
        0.9999,
        "EfficientNet features",
    );
}

#[test]
fn our_preprocessing_of_the_original_photos_is_close_to_pils() {
    let encoder = image_encoder();
    let prep = encoder.entry().preprocessing.clone().unwrap();
    let mut originals = Vec::new();
    for f in gallery_files() {
        let original = png(format!("www/public/gallery/{f}"));
        let stem = Path::new(&f).file_stem().unwrap().to_str().unwrap();
        let pil = png(format!("tests/fixtures/encoders/letterboxed/{stem}.png"));
        let ours = preprocess(&prep, &original).unwrap();
        let theirs = preprocess(&prep, &pil).unwrap();
        // Mean absolute difference in 0–255 levels (the tensor is (x − 127) / 128).
        let mad: f32 = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b).abs())
            .sum::<f32>()
            * 128.0
            / ours.len() as f32;
        assert!(
            mad < 2.0,
            "{f}: our resize differs from PIL's by {mad} levels on average"
        );
        originals.push(original);
    }
    let ours = encoder.embed(&originals).unwrap();
    assert_rows_close(
        &ours,
        &npy("image_embeds.npy"),
        0.995,
        "end-to-end from the original files",
    );
}

#[test]
fn text_and_image_share_a_space() {
    // The bridge maps into MiniLM's space: the cat photo is nearer "a photo of a cat".
    let texts = text_encoder()
        .embed(&["a photo of a cat", "a photo of a rocket", "a cup of coffee"])
        .unwrap();
    let files = gallery_files();
    let image = |name: &str| {
        png(format!(
            "www/public/gallery/{}",
            files.iter().find(|f| f.starts_with(name)).unwrap()
        ))
    };
    let images = image_encoder()
        .embed(&[image("chelsea"), image("rocket"), image("coffee")])
        .unwrap();
    for i in 0..3 {
        let best = (0..3)
            .max_by(|&a, &b| {
                cosine(texts.row(i), images.row(a)).total_cmp(&cosine(texts.row(i), images.row(b)))
            })
            .unwrap();
        assert_eq!(best, i, "text {i} should retrieve image {i}");
    }
}

/// `embed_batched` batches texts of the same length together (longest first), so nothing is
/// padded; every row is still its own text's, in the texts' order, and the same bits as the
/// text embedded alone.
#[test]
fn equal_length_batches_keep_every_row_in_place() {
    let s = sentences();
    let texts: Vec<&str> = s.sentences.iter().map(String::as_str).collect();
    let text = text_encoder();
    let lengths = token_lengths(&text, &texts);
    assert!(
        lengths.windows(2).any(|w| w[0] < w[1]),
        "the fixture's sentences must come in no length order for this test to mean anything"
    );
    assert!(
        (0..lengths.len()).any(|i| lengths[i + 1..].contains(&lengths[i])),
        "two of the fixture's sentences must share a length, so that some batch holds two"
    );
    let batched = text.embed_batched(&texts, 3, &mut |_, _| {}).unwrap();
    let dim = text.dim();
    assert_eq!((batched.rows, batched.cols), (texts.len(), dim));
    for (i, t) in texts.iter().enumerate() {
        let alone = text.embed(&[t]).unwrap();
        assert_eq!(
            batched.data[i * dim..(i + 1) * dim],
            alone.data,
            "sentence {i}"
        );
    }
    // Padded, a text's row moves by float rounding only.
    let (longest, shortest) = (
        (0..texts.len()).max_by_key(|&i| lengths[i]).unwrap(),
        (0..texts.len()).min_by_key(|&i| lengths[i]).unwrap(),
    );
    let padded = text.embed(&[texts[longest], texts[shortest]]).unwrap();
    let alone = text.embed(&[texts[shortest]]).unwrap();
    let worst = padded.data[dim..]
        .iter()
        .zip(&alone.data)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst <= 1e-6, "the shortest sentence padded: {worst}");
}

/// Threads change how the work is split (pictures side by side, each operation's tiles over
/// the pool), never what is computed: the same bits at 1, 2 and 3 threads.
#[test]
fn embeddings_do_not_depend_on_the_thread_count() {
    let s = sentences();
    // 9 sentences in batches of at most 2 of one length each.
    let texts: Vec<&str> = s.sentences.iter().map(String::as_str).collect();
    let images: Vec<RgbaImage> = gallery_files()[..5]
        .iter()
        .map(|f| png(format!("www/public/gallery/{f}")))
        .collect();
    let mut text = text_encoder();
    let mut image = image_encoder();
    assert_eq!((text.threads(), image.threads()), (1, 1));
    let mut progress_in_batches_of_2 = Vec::new();
    let one_text = text
        .embed_batched(&texts, 2, &mut |done, total| {
            progress_in_batches_of_2.push((done, total))
        })
        .unwrap();
    // One report per batch: a batch holds texts of one length, at most 2 of them.
    let lengths = token_lengths(&text, &texts);
    let mut distinct = lengths.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let batches: usize = distinct
        .iter()
        .map(|&l| lengths.iter().filter(|&&m| m == l).count().div_ceil(2))
        .sum();
    assert_eq!(progress_in_batches_of_2.len(), batches);
    assert_eq!(progress_in_batches_of_2.last(), Some(&(9, 9)));
    let one_batch = text.embed(&texts).unwrap();
    let one_image = image.embed(&images).unwrap();
    let one_picture = image.embed(&images[..1]).unwrap();
    for threads in [2, 3] {
        text.set_threads(threads).unwrap();
        image.set_threads(threads).unwrap();
        assert_eq!((text.threads(), image.threads()), (threads, threads));
        let mut seen = Vec::new();
        let batched = text
            .embed_batched(&texts, 2, &mut |done, total| seen.push((done, total)))
            .unwrap();
        assert_eq!(batched, one_text, "{threads} threads, batches side by side");
        assert_eq!(seen, progress_in_batches_of_2, "{threads} threads");
        assert_eq!(
            text.embed(&texts).unwrap(),
            one_batch,
            "{threads} threads, one batch"
        );
        assert_eq!(
            image.embed(&images).unwrap(),
            one_image,
            "{threads} threads, pictures"
        );
        assert_eq!(
            image.embed(&images[..1]).unwrap(),
            one_picture,
            "{threads} threads, one picture"
        );
    }
    // An error still names the text or picture at fault, wherever it ran.
    let mut bad = texts.clone();
    bad[6] = " ";
    assert_eq!(
        text.embed_batched(&bad, 2, &mut |_, _| {}).unwrap_err(),
        EncodeError::EmptyText { index: 6 }
    );
    let mut broken = images.clone();
    broken[3].data.pop();
    assert!(matches!(
        image.embed(&broken).unwrap_err(),
        EncodeError::PixelBuffer { index: 3, .. }
    ));
}

fn clip_tiny() -> (TextEncoder, ImageEncoder) {
    let dir = "tests/fixtures/clip_tiny";
    let text = ModelEntry::clip_text("clip-tiny-text", "text_model.onnx", "tokenizer.json", 16);
    let vision = ModelEntry::clip_vision(
        "clip-tiny-vision",
        "vision_model.onnx",
        "clip-tiny-text",
        16,
    );
    (
        TextEncoder::from_bytes(
            &text,
            &read(format!("{dir}/text_model.onnx")),
            &read(format!("{dir}/tokenizer.json")),
        )
        .unwrap(),
        ImageEncoder::from_bytes(&vision, &read(format!("{dir}/vision_model.onnx"))).unwrap(),
    )
}

#[test]
fn clip_style_exports_load_and_match_onnxruntime() {
    let (text, vision) = clip_tiny();
    let s = sentences();
    // CLIP's text limit is 77 tokens; the fixture's long sentence is truncated at 256 by
    // the python side, so compare the sentences that fit in 77.
    let short: Vec<usize> = (0..s.sentences.len())
        .filter(|&i| s.token_ids[i].len() <= 77)
        .collect();
    let texts: Vec<&str> = short.iter().map(|&i| s.sentences[i].as_str()).collect();
    let ours = text.embed(&texts).unwrap();
    let all = npy("clip_tiny_text_embeds.npy");
    let theirs = Matrix {
        rows: short.len(),
        cols: all.cols,
        data: short.iter().flat_map(|&i| all.row(i).to_vec()).collect(),
    };
    assert_rows_close(&ours, &theirs, 0.9999, "tiny CLIP text");

    let images: Vec<RgbaImage> = gallery_files()
        .iter()
        .map(|f| {
            let stem = Path::new(f).file_stem().unwrap().to_str().unwrap();
            png(format!("tests/fixtures/encoders/letterboxed/{stem}.png"))
        })
        .collect();
    let ours = vision.embed(&images).unwrap();
    assert_rows_close(
        &ours,
        &npy("clip_tiny_image_embeds.npy"),
        0.9999,
        "tiny CLIP vision",
    );
}

#[test]
fn bad_models_are_refused_with_a_named_error() {
    let m = manifest();
    let entry = m.get("minilm-l6-v2").unwrap();
    let model = read(format!("models/{}", entry.file));
    let tokenizer = read("models/minilm-l6-v2/tokenizer.json");

    // Wrong sha256: the file is not the one the manifest describes.
    let mut tampered = model.clone();
    tampered[1000] ^= 1;
    let err = TextEncoder::from_bytes(entry, &tampered, &tokenizer)
        .err()
        .unwrap();
    assert!(matches!(err, EncodeError::Sha256 { .. }), "{err}");

    // Truncated and corrupt files, with the check off as for a user's own model.
    let mut unchecked = entry.clone();
    unchecked.sha256.clear();
    unchecked.tokenizer_sha256.clear();
    for bytes in [&model[..model.len() / 2], &b"not an onnx file"[..]] {
        let err = TextEncoder::from_bytes(&unchecked, bytes, &tokenizer)
            .err()
            .unwrap();
        assert!(matches!(err, EncodeError::InvalidModel { .. }), "{err}");
        assert!(
            err.to_string().contains("not a readable ONNX model"),
            "{err}"
        );
    }

    // A manifest naming an input the graph lacks.
    let mut wrong = entry.clone();
    wrong.inputs.push(latentlab::encode::TensorSpec {
        name: "pixel_values".into(),
        dtype: "float32".into(),
        shape: vec![],
    });
    let err = TextEncoder::from_bytes(&wrong, &model, &tokenizer)
        .err()
        .unwrap();
    assert!(
        matches!(&err, EncodeError::MissingInput { name, .. } if name == "pixel_values"),
        "{err}"
    );
    assert!(err.to_string().contains("input_ids"), "{err}");

    // An operator no runtime knows.
    let mut vision = ModelEntry::clip_vision("odd", "unsupported_op.onnx", "t", 4);
    vision.sha256.clear();
    let err = ImageEncoder::from_bytes(
        &vision,
        &read("tests/fixtures/clip_tiny/unsupported_op.onnx"),
    )
    .err()
    .unwrap();
    assert!(
        matches!(
            err,
            EncodeError::InvalidModel { .. } | EncodeError::UnsupportedModel { .. }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("LatentlabNoSuchOp"), "{err}");

    // A quantised model tract cannot run: onnxruntime's weight-only quantiser writes its
    // weights as MatMulNBits (com.microsoft), which onnxruntime runs (make_matmulnbits.py
    // checks) and tract does not; the error names the operator (make_quirky_models.py).
    let mut quantised = ModelEntry::clip_vision("nbits", "matmulnbits.onnx", "t", 4);
    quantised.sha256.clear();
    let err = ImageEncoder::from_bytes(
        &quantised,
        &read("tests/fixtures/clip_tiny/matmulnbits.onnx"),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("MatMulNBits"), "{err}");

    // A broken tokenizer file.
    let err = TextEncoder::from_bytes(&unchecked, &model, b"{")
        .err()
        .unwrap();
    assert!(matches!(err, EncodeError::Tokenizer(_)), "{err}");
}

/// A model whose output is stored as float16 (as half-precision exports give it) embeds as the
/// same graph with a float32 output does, within float16's precision.
#[test]
fn float16_outputs_are_widened_to_f32() {
    let embed = |file: &str| {
        let mut entry = ModelEntry::clip_vision("tiny", file, "t", 4);
        entry.sha256.clear();
        let encoder =
            ImageEncoder::from_bytes(&entry, &read(format!("tests/fixtures/clip_tiny/{file}")))
                .unwrap();
        encoder
            .embed(&[png("www/public/gallery/coffee.png")])
            .unwrap()
    };
    let (half, full) = (embed("f16_output.onnx"), embed("f32_output.onnx"));
    assert_eq!((half.rows, half.cols), (1, 4));
    for (h, f) in half.data.iter().zip(&full.data) {
        assert!((h - f).abs() <= 2e-3 * f.abs().max(1e-3), "{h} vs {f}");
    }
    assert!(cosine(half.row(0), full.row(0)) > 0.99999);
}

#[test]
fn bad_inputs_are_refused_with_a_named_error() {
    let text = text_encoder();
    assert_eq!(
        text.embed(&["fine", "  "]).unwrap_err(),
        EncodeError::EmptyText { index: 1 }
    );
    assert_eq!(
        text.embed(&[]).unwrap_err(),
        EncodeError::NothingToEncode("text")
    );
    let image = image_encoder();
    let empty = RgbaImage {
        width: 0,
        height: 0,
        data: vec![],
    };
    assert!(matches!(
        image.embed(&[empty]),
        Err(EncodeError::EmptyImage { index: 0, .. })
    ));
    let huge = RgbaImage {
        width: 60_000,
        height: 60_000,
        data: vec![],
    };
    assert!(matches!(
        image.embed(&[huge]),
        Err(EncodeError::ImageTooLarge { .. })
    ));
    let short = RgbaImage {
        width: 10,
        height: 10,
        data: vec![0; 399],
    };
    let err = image.embed(&[short]).unwrap_err();
    assert!(
        err.to_string()
            .contains("399 bytes of RGBA for 10×10 (400 expected)"),
        "{err}"
    );
}

/// A MagicLens-style fusion ONNX (tests/fixtures/fusion_tiny/, random weights) plugs into
/// composed search: tract's fused queries match onnxruntime's, normalised.
#[test]
fn a_fusion_model_matches_onnxruntime() {
    let dir = "tests/fixtures/fusion_tiny";
    let fusion =
        FusionModel::from_bytes("fusion-tiny", &read(format!("{dir}/fusion.onnx"))).unwrap();
    let load = |name: &str| npy(&format!("../fusion_tiny/{name}"));
    let (image, text) = (load("image_embeds.npy"), load("text_embeds.npy"));
    let ours = fusion.fuse(&image, &text).unwrap();
    let mut theirs = load("expected_query_embeds.npy");
    theirs.normalize_rows();
    assert_rows_close(&ours, &theirs, 0.9999, "fusion");
    for r in 0..ours.rows {
        let norm: f32 = ours.row(r).iter().map(|v| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-5);
    }
    // mismatched batches and a model without the fusion signature are refused by name
    let one = Matrix {
        rows: 1,
        cols: image.cols,
        data: image.row(0).to_vec(),
    };
    let err = fusion.fuse(&image, &one).unwrap_err().to_string();
    assert!(err.contains("5×384 but text embeddings 1×384"), "{err}");
    let clip = read("tests/fixtures/clip_tiny/vision_model.onnx");
    let err = FusionModel::from_bytes("vision", &clip)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("no input \"image_embeds\""), "{err}");
}
