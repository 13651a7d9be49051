//! Issue 19: every command that reads a file, given each kind of bad file in each of its file
//! arguments, fails cleanly: exit code 1 (bad input; 2 would mean the command line itself was
//! refused, i.e. this table is wrong), a message on stderr, and never a panic (exit 101) or a
//! signal.

mod common;

use std::path::{Path, PathBuf};

use common::{latentlab, stderr, TempDir};
use latentlab::lm::testing::{random_tiny_llama, TinyShape};

/// A version-1 `.npy` file with this header dictionary and data.
fn npy(header: &str, data: &[u8]) -> Vec<u8> {
    latentlab::npy::testing::npy_file(1, header, data)
}

fn f32s(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Bad files, one of each kind, written once into `dir`: (kind, path).
fn bad_files(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    let f32_2d =
        |shape: &str| format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    let files: Vec<(&'static str, Vec<u8>)> = vec![
        ("empty file", Vec::new()),
        ("text, not npy", b"hello, world\n".to_vec()),
        (
            "npy with a truncated header",
            npy(&f32_2d("(3, 2)"), &[])[..20].to_vec(),
        ),
        (
            "npy missing its data",
            npy(&f32_2d("(3, 2)"), &f32s(&[1.0, 2.0])),
        ),
        (
            "npy whose shape overflows",
            npy(&f32_2d("(1099511627776, 1073741824)"), &f32s(&[1.0])),
        ),
        (
            "npy whose shape is huge",
            npy(&f32_2d("(4294967296, 4)"), &f32s(&[1.0; 8])),
        ),
        ("npy with no rows", npy(&f32_2d("(0, 3)"), &[])),
        ("npy with no columns", npy(&f32_2d("(3, 0)"), &[])),
        (
            "npy of three dimensions",
            npy(&f32_2d("(2, 2, 2)"), &f32s(&[1.0; 8])),
        ),
        (
            "npy of strings",
            npy(
                "{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }",
                &[0; 24],
            ),
        ),
        (
            "npy holding NaN and infinity",
            npy(
                &f32_2d("(3, 2)"),
                &f32s(&[f32::NAN, 1.0, f32::INFINITY, 0.0, 1.0, 2.0]),
            ),
        ),
        (
            "npy with a garbage header",
            npy("{'descr': '<f4', 'shape': (((", &f32s(&[1.0; 4])),
        ),
        (
            "JSON cut short",
            br#"{"title": "x", "steps": [{"id": "a""#.to_vec(),
        ),
        ("JSON of the wrong kind", b"[1, 2, 3]".to_vec()),
        ("not UTF-8", vec![0xff, 0xfe, 0x00, 0x80, 0xc3]),
        (
            "GGUF cut short",
            b"GGUF\x03\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff".to_vec(),
        ),
        (
            "Parquet with a footer of garbage",
            [&b"PAR1"[..], &[0xee; 40], &100u32.to_le_bytes(), b"PAR1"].concat(),
        ),
        (
            "Parquet whose footer claims more than the file",
            [&b"PAR1"[..], &[0; 8], &u32::MAX.to_le_bytes(), b"PAR1"].concat(),
        ),
    ];
    files
        .into_iter()
        .enumerate()
        .map(|(i, (kind, bytes))| {
            let path = dir.join(format!("bad{i}"));
            std::fs::write(&path, bytes).unwrap();
            (kind, path)
        })
        .collect()
}

/// A good 6 × 2 float32 matrix and 0/1 labels for the slots not under test.
fn good_files(dir: &Path) -> (PathBuf, PathBuf) {
    let x = dir.join("x.npy");
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (6, 2), }";
    std::fs::write(
        &x,
        npy(
            header,
            &f32s(&[0.1, 1.0, 0.9, 0.2, 0.3, 0.8, 1.1, 0.1, 0.2, 0.9, 1.0, 0.0]),
        ),
    )
    .unwrap();
    let z = dir.join("z.npy");
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }";
    std::fs::write(&z, npy(header, &f32s(&[0.0, 1.0, 0.0, 1.0, 0.0, 1.0]))).unwrap();
    (x, z)
}

#[test]
fn every_file_argument_refuses_every_bad_file_without_a_panic() {
    let dir = TempDir::new("latentlab-bad-input", "files");
    let (x, z) = good_files(&dir.0);
    let (x, z) = (x.to_str().unwrap(), z.to_str().unwrap());
    // An untrained tiny model (random weights), so that a template is read after a good model.
    let tiny = dir.0.join("tiny-random.gguf");
    std::fs::write(&tiny, random_tiny_llama(1, &TinyShape::default())).unwrap();
    let tiny = tiny.to_str().unwrap();
    let out = dir.0.join("out");
    let out = out.to_str().unwrap();
    // Each command line with one file slot `{}` filled by every bad file in turn.
    let commands: Vec<Vec<&str>> = vec![
        vec!["plan", "optimal", "{}"],
        vec!["plan", "prompt", "--encoding", "csr", "{}"],
        vec!["plan", "score", "--answer", "\"3 minutes\"", "{}"],
        vec!["plan", "export", "--to", "asynchow", "{}"],
        vec!["ot", "sinkhorn", "--x", "{}", "--y", x, "--epsilon", "0.1"],
        vec!["ot", "sinkhorn", "--x", x, "--y", "{}", "--epsilon", "0.1"],
        vec!["ot", "sinkhorn", "--cost", "{}", "--epsilon", "0.1"],
        vec![
            "ot",
            "sinkhorn",
            "--x",
            x,
            "--y",
            x,
            "--a",
            "{}",
            "--epsilon",
            "0.1",
        ],
        vec!["ot", "multi", "--x", x, "{}", "--epsilon", "0.1"],
        vec!["align", "--x", "{}", "--y", x],
        vec!["align", "--x", x, "--y", "{}", "--metric", "cka"],
        vec![
            "steer", "fit", "--x", "{}", "--z", z, "--method", "mean", "--out", out,
        ],
        vec![
            "steer", "fit", "--x", x, "--z", "{}", "--method", "mean", "--out", out,
        ],
        vec!["steer", "apply", "--steer", "{}", "--x", x, "--out", out],
        vec!["steer", "eval", "--x", "{}", "--z", z, "--method", "mean"],
        vec![
            "tiny",
            "fit",
            "--responses",
            "{}",
            "--anchors",
            "2",
            "--out",
            out,
        ],
        vec!["tiny", "estimate", "--benchmark", "{}", "--answers", z],
        vec!["lm", "generate", "--model", "{}", "--prompt", "x"],
        vec!["lm", "score", "--model", "{}", "--text", "x"],
        vec!["sketch", "run", "--template", "{}", "--model", "{}"],
        vec![
            "embed", "text", "--input", "{}", "--column", "text", "--output", out,
        ],
        vec![
            "embed", "image", "--input", "{}", "--column", "path", "--output", out,
        ],
        vec!["index", "build", "--input", "{}", "--out", out],
        vec!["index", "search", "--index", "{}", "--query", "x"],
    ];
    let bad = bad_files(&dir.0);
    let mut ran = 0;
    // A template is text: plain text is a (holeless) template; the rest must be refused (the
    // JSON files' brackets open holes that never close or have no name).
    let text_kinds = ["text, not npy"];
    for (kind, path) in &bad {
        let args = [
            "sketch",
            "run",
            "--template",
            path.to_str().unwrap(),
            "--model",
            tiny,
        ];
        let result = latentlab(&args);
        let want = if text_kinds.contains(kind) { 0 } else { 1 };
        assert_eq!(
            result.status.code(),
            Some(want),
            "{args:?} with {kind}: {}",
            stderr(&result)
        );
        ran += 1;
    }
    for command in &commands {
        for (kind, path) in &bad {
            let path = path.to_str().unwrap();
            let args: Vec<&str> = command
                .iter()
                .map(|a| if *a == "{}" { path } else { a })
                .collect();
            let result = latentlab(&args);
            let err = stderr(&result);
            let code = result.status.code();
            assert_eq!(
                code,
                Some(1),
                "{args:?} with {kind}: exit {code:?} (101 is a panic, none a signal)\n{err}"
            );
            assert!(!err.contains("panicked"), "{args:?} with {kind}: {err}");
            assert!(
                err.trim().len() > 10,
                "{args:?} with {kind}: no message on stderr"
            );
            ran += 1;
        }
    }
    assert_eq!(ran, (commands.len() + 1) * bad.len());
}
