//! Issue 18 from outside: `latentlab embed text|image --input T --column C --output O` over
//! Parquet and Arrow tables (pyarrow's own files in tests/fixtures/parquet/, written by
//! scripts/fixtures/make_parquet_fixtures.py, and tables written here), and `latentlab index
//! build|search` over the result. The embeddings must equal the `.npy` path's, the layout
//! Python's `latentlab.parquet`'s, and every bad input must be a clear error or a row that says
//! why, with the rest kept. Needs the bundled models (scripts/build).

mod common;

use std::collections::HashMap;
use std::fs::File;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Float32Type;
use arrow_array::{Array, ArrayRef, BinaryArray, Int32Array, RecordBatch, StringArray};
use arrow_schema::DataType;
use common::{fails_with, json, latentlab, read_npy, stderr, TempDir};
use latentlab::core::index::{EmbeddingIndex, SearchOptions, Storage};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use serde_json::Value;

const FIXTURES: &str = "tests/fixtures/parquet";
const GALLERY: &str = "www/public/gallery";

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

/// The seven sentences in tests/fixtures/parquet/texts.parquet's `text` column.
fn sentences() -> Vec<String> {
    let text = std::fs::read_to_string("tests/fixtures/encoders/sentences.json").unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["sentences"].as_array().unwrap()[..7]
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// An embedding table as written: (ids, embeddings with None for null rows, errors, the
/// schema's metadata, the embedding column's type).
struct Written {
    ids: Vec<String>,
    embeddings: Vec<Option<Vec<f32>>>,
    errors: Vec<Option<String>>,
    metadata: HashMap<String, String>,
    embedding_type: DataType,
    columns: Vec<String>,
}

fn read_output(path: &str) -> Written {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let schema = builder.schema().clone();
    let mut out = Written {
        ids: vec![],
        embeddings: vec![],
        errors: vec![],
        metadata: schema
            .metadata()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        embedding_type: schema
            .field_with_name("embedding")
            .unwrap()
            .data_type()
            .clone(),
        columns: schema.fields().iter().map(|f| f.name().clone()).collect(),
    };
    for batch in builder.build().unwrap() {
        let batch = batch.unwrap();
        let ids = batch.column_by_name("id").unwrap().as_string::<i32>();
        let vectors = batch
            .column_by_name("embedding")
            .unwrap()
            .as_fixed_size_list();
        let errors = batch.column_by_name("error").unwrap().as_string::<i32>();
        for row in 0..batch.num_rows() {
            out.ids.push(ids.value(row).to_string());
            out.embeddings.push((!vectors.is_null(row)).then(|| {
                vectors
                    .value(row)
                    .as_primitive::<Float32Type>()
                    .values()
                    .to_vec()
            }));
            out.errors
                .push((!errors.is_null(row)).then(|| errors.value(row).to_string()));
        }
    }
    out
}

/// Writes a one-batch Parquet table of `columns` (pyarrow's codec, snappy).
fn write_table(path: &str, columns: Vec<(&str, ArrayRef)>) {
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let mut writer =
        ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The `.npy` path's embeddings of `args` (texts or image files), one row each.
fn npy_rows(dir: &TempDir, kind: &str, args: &[&str]) -> Vec<Vec<f32>> {
    let out = dir.path(&format!("{kind}.npy"));
    let mut command = vec!["embed", kind, "--out", &out];
    command.extend_from_slice(args);
    let summary = json(&latentlab(&command));
    let dim = summary["dim"].as_u64().unwrap() as usize;
    let (shape, data) = read_npy(&out);
    assert_eq!(shape, [args.len() as u64, dim as u64]);
    data.chunks(dim).map(<[f32]>::to_vec).collect()
}

/// `latentlab embed KIND --input INPUT --column COLUMN [--id-column ID] --output OUTPUT EXTRA…`.
fn embed(
    kind: &str,
    input: &str,
    column: &str,
    id_column: Option<&str>,
    output: &str,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "embed", kind, "--input", input, "--column", column, "--output", output,
    ];
    if let Some(id) = id_column {
        args.extend(["--id-column", id]);
    }
    args.extend_from_slice(extra);
    latentlab(&args)
}

#[test]
fn texts_from_parquet_equal_the_npy_path_in_pythons_layout() {
    let dir = TempDir::new("latentlab-parquet", "texts");
    let out = dir.path("texts.out.parquet");
    let summary = json(&embed(
        "text",
        &fixture("texts.parquet"),
        "text",
        Some("name"),
        &out,
        &[],
    ));
    assert_eq!(summary["model"], "minilm-l6-v2");
    assert_eq!(summary["dim"], 384);
    assert_eq!(summary["n"], 7);
    assert_eq!(summary["embedded"], 7);
    assert_eq!(summary["errors"], 0);
    assert_eq!(summary["output"], out.as_str());
    let written = read_output(&out);
    // The layout of python/latentlab/parquet.py's embedding_table.
    assert_eq!(written.columns, ["id", "embedding", "error"]);
    match &written.embedding_type {
        DataType::FixedSizeList(item, 384) => assert_eq!(item.data_type(), &DataType::Float32),
        other => panic!("embedding is {other}"),
    }
    assert_eq!(written.metadata["latentlab.model"], "minilm-l6-v2");
    assert_eq!(written.metadata["latentlab.dim"], "384");
    assert_eq!(written.ids, ["s0", "s1", "s2", "s3", "s4", "s5", "s6"]);
    assert!(written.errors.iter().all(Option::is_none));
    let texts = sentences();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let direct = npy_rows(&dir, "text", &refs);
    for (row, want) in direct.iter().enumerate() {
        let got = written.embeddings[row].as_ref().unwrap();
        // The same batches of the same texts: the same numbers.
        assert_eq!(max_diff(got, want), 0.0, "row {row}");
    }

    // pyarrow's zstd Parquet and its lz4 Arrow IPC file (feather) of the same table read the
    // same; integer ids read as Python's str() writes them; no --id-column: row numbers.
    for (file, id_column, ids) in [
        (
            "texts.zstd.parquet",
            Some("rank"),
            (100..107).map(|i| i.to_string()).collect::<Vec<_>>(),
        ),
        ("texts.arrow", None, (0..7).map(|i| i.to_string()).collect()),
    ] {
        let other = dir.path(&format!("{file}.out.parquet"));
        let input = fixture(file);
        json(&embed("text", &input, "text", id_column, &other, &[]));
        let again = read_output(&other);
        assert_eq!(again.ids, ids, "{file}");
        assert_eq!(again.embeddings, written.embeddings, "{file}");
    }
}

#[test]
fn a_binary_text_column_reports_bad_rows_and_keeps_the_rest() {
    // texts.parquet's `raw`: UTF-8 bytes of the sentences, except row 2 (Latin-1), row 4
    // (null) and row 5 (empty).
    let dir = TempDir::new("latentlab-parquet", "raw");
    let out = dir.path("raw.parquet");
    let input = fixture("texts.parquet");
    let run = embed("text", &input, "raw", Some("name"), &out, &[]);
    let summary = json(&run);
    assert_eq!(
        (summary["n"].as_u64(), summary["errors"].as_u64()),
        (Some(7), Some(3))
    );
    let failed = summary["failed"].as_array().unwrap();
    assert_eq!(failed[0]["row"], 2);
    assert_eq!(failed[0]["id"], "s2");
    assert!(
        failed[0]["error"].as_str().unwrap().contains("not UTF-8"),
        "{summary}"
    );
    assert_eq!(failed[1]["error"], "the text is null");
    assert_eq!(failed[2]["error"], "the text is empty");
    assert!(
        stderr(&run).contains("3 of 7 rows could not be embedded"),
        "{}",
        stderr(&run)
    );
    let written = read_output(&out);
    let text = read_output(&{
        let p = dir.path("text.parquet");
        json(&embed("text", &input, "text", None, &p, &[]));
        p
    });
    for row in 0..7 {
        if [2, 4, 5].contains(&row) {
            assert!(written.embeddings[row].is_none() && written.errors[row].is_some());
        } else {
            assert!(written.errors[row].is_none());
            let (a, b) = (
                written.embeddings[row].as_ref().unwrap(),
                text.embeddings[row].as_ref().unwrap(),
            );
            // Other batches of texts than the `text` column's (three rows left out): equal
            // to float precision, not necessarily to the bit.
            assert!(max_diff(a, b) < 1e-5, "row {row}");
        }
    }

    // --on-error raise: the first bad row named, nothing written.
    let strict = dir.path("strict.parquet");
    let run = embed(
        "text",
        &input,
        "raw",
        Some("name"),
        &strict,
        &["--on-error", "raise"],
    );
    fails_with(
        &run,
        &["row 2 (id \"s2\")", "not UTF-8", "nothing was written"],
    );
    assert!(!std::path::Path::new(&strict).exists());
    assert_eq!(
        std::fs::read_dir(&dir.0).unwrap().count(),
        2,
        "no partial file is left"
    );
}

#[test]
fn images_by_path_and_by_bytes_with_an_undecodable_row() {
    let dir = TempDir::new("latentlab-parquet", "images");
    let names = ["chelsea.png", "rocket.jpg", "horse.png"];
    let files: Vec<String> = names.iter().map(|n| format!("{GALLERY}/{n}")).collect();
    let refs: Vec<&str> = files.iter().map(String::as_str).collect();
    let direct = npy_rows(&dir, "image", &refs);

    // pyarrow's file: paths relative to the file's own folder, and one to no file.
    let out = dir.path("paths.parquet");
    let run = embed(
        "image",
        &fixture("images.parquet"),
        "path",
        Some("name"),
        &out,
        &[],
    );
    let summary = json(&run);
    assert_eq!(summary["model"], "effl0-minilm-bridge");
    assert_eq!(
        (summary["n"].as_u64(), summary["errors"].as_u64()),
        (Some(4), Some(1))
    );
    let written = read_output(&out);
    assert_eq!(
        written.ids,
        ["chelsea", "rocket", "horse", "no-such-picture"]
    );
    for (got, want) in written.embeddings.iter().zip(&direct) {
        assert_eq!(max_diff(got.as_ref().unwrap(), want), 0.0);
    }
    assert!(written.embeddings[3].is_none());
    assert!(
        written.errors[3]
            .as_ref()
            .unwrap()
            .contains("cannot read the image"),
        "{:?}",
        written.errors[3]
    );

    // Bytes (binary), one of them not a picture, integer ids; and absolute paths.
    let mut bytes: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    bytes.insert(1, b"\x89PNG\r\n\x1a\n but not really".to_vec());
    let absolute: Vec<String> = files
        .iter()
        .map(|f| {
            std::fs::canonicalize(f)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let table = dir.path("bytes.parquet");
    write_table(
        &table,
        vec![
            (
                "key",
                Arc::new(Int32Array::from(vec![10, 11, 12, 13])) as ArrayRef,
            ),
            (
                "picture",
                Arc::new(BinaryArray::from_iter_values(
                    bytes.iter().map(Vec::as_slice),
                )),
            ),
            (
                "file",
                Arc::new(StringArray::from(vec![
                    absolute[0].as_str(),
                    absolute[0].as_str(),
                    absolute[1].as_str(),
                    absolute[2].as_str(),
                ])),
            ),
        ],
    );
    let out = dir.path("bytes.out.parquet");
    let run = embed("image", &table, "picture", Some("key"), &out, &[]);
    let summary = json(&run);
    assert_eq!(summary["errors"], 1);
    assert_eq!(summary["failed"][0]["id"], "11");
    assert!(stderr(&run).contains("1 of 4 rows could not be embedded"));
    let written = read_output(&out);
    assert_eq!(written.ids, ["10", "11", "12", "13"]);
    assert!(written.embeddings[1].is_none());
    assert!(
        written.errors[1]
            .as_ref()
            .unwrap()
            .contains("row 1 cannot be decoded as a picture"),
        "{:?}",
        written.errors[1]
    );
    for (row, want) in [(0, 0), (2, 1), (3, 2)] {
        assert_eq!(
            max_diff(written.embeddings[row].as_ref().unwrap(), &direct[want]),
            0.0
        );
    }
    let out = dir.path("absolute.out.parquet");
    json(&embed("image", &table, "file", None, &out, &[]));
    let written = read_output(&out);
    assert_eq!(written.ids, ["0", "1", "2", "3"]);
    assert_eq!(
        max_diff(written.embeddings[3].as_ref().unwrap(), &direct[2]),
        0.0
    );
}

#[test]
fn bad_tables_are_clear_errors() {
    let dir = TempDir::new("latentlab-parquet", "bad");
    let texts = fixture("texts.parquet");
    let out = dir.path("out.parquet");
    // A missing column: named, with the ones there are.
    fails_with(
        &embed("text", &texts, "body", None, &out, &[]),
        &[
            "has no column \"body\"",
            "[\"name\", \"rank\", \"text\", \"topic\", \"raw\"]",
        ],
    );
    fails_with(
        &embed("text", &texts, "text", Some("nope"), &out, &[]),
        &["has no column \"nope\""],
    );
    // A column of numbers is neither texts nor pictures.
    fails_with(
        &embed("text", &texts, "rank", None, &out, &[]),
        &["column \"rank\" is Int64", "expected texts"],
    );
    fails_with(
        &embed("image", &texts, "rank", None, &out, &[]),
        &["expected image paths (strings) or encoded PNG/JPEG bytes"],
    );
    // Ids that cannot make an index, refused before anything is embedded.
    fails_with(
        &embed("text", &texts, "text", Some("topic"), &out, &[]),
        &["\"food\" in rows 0 and 1", "ids must be unique"],
    );
    fails_with(
        &embed("text", &texts, "text", Some("raw"), &out, &[]),
        &["ids must be strings or integers"],
    );
    // Not Parquet at all, or cut short.
    fails_with(
        &embed("text", "Cargo.toml", "text", None, &out, &[]),
        &["Cargo.toml is not a Parquet file", "\"[package\""],
    );
    let cut = dir.path("cut.parquet");
    let whole = std::fs::read(&texts).unwrap();
    std::fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
    fails_with(
        &embed("text", &cut, "text", None, &out, &[]),
        &["does not end as one", "cut short"],
    );
    let mut garbled = whole.clone();
    let n = garbled.len();
    garbled[n - 40..n - 8].fill(0xee);
    let garbled_path = dir.path("garbled.parquet");
    std::fs::write(&garbled_path, &garbled).unwrap();
    fails_with(
        &embed("text", &garbled_path, "text", None, &out, &[]),
        &["garbled.parquet"],
    );
    // The table options belong together; the old meaning of --output is pointed to.
    fails_with(
        &latentlab(&[
            "embed",
            "image",
            "--output",
            "features",
            "www/public/gallery/horse.png",
        ]),
        &["--model-output"],
    );
    fails_with(
        &latentlab(&["embed", "text", "--input", &texts, "--output", &out]),
        &["--input needs --column"],
    );
    assert!(
        !std::path::Path::new(&out).exists(),
        "nothing written after an error"
    );
}

#[test]
fn index_build_and_search_over_the_table() {
    let dir = TempDir::new("latentlab-parquet", "index");
    let table = dir.path("texts.out.parquet");
    json(&embed(
        "text",
        &fixture("texts.parquet"),
        "text",
        Some("name"),
        &table,
        &[],
    ));
    let written = read_output(&table);
    for storage in ["f32", "f16", "int8"] {
        let bin = dir.path(&format!("{storage}.bin"));
        let summary = json(&latentlab(&[
            "index",
            "build",
            "--input",
            &table,
            "--out",
            &bin,
            "--storage",
            storage,
        ]));
        assert_eq!(summary["model"], "minilm-l6-v2");
        assert_eq!(
            (summary["n"].as_u64(), summary["dim"].as_u64()),
            (Some(7), Some(384))
        );
        assert_eq!(summary["storage"], storage);
        let bytes = std::fs::read(&bin).unwrap();
        assert_eq!(summary["bytes"].as_u64(), Some(bytes.len() as u64));
        // The core's format, refused for another model, answering as an index built
        // directly from the table's vectors.
        let index = EmbeddingIndex::from_bytes(&bytes, Some("minilm-l6-v2")).unwrap();
        assert!(EmbeddingIndex::from_bytes(&bytes, Some("clip")).is_err());
        assert_eq!(index.ids(), written.ids.as_slice());
        assert_eq!(index.storage().to_string(), storage);
        if storage == "f32" {
            let mut direct =
                EmbeddingIndex::new("minilm-l6-v2", Some(384), index.storage()).unwrap();
            let values: Vec<f32> = written
                .embeddings
                .iter()
                .flatten()
                .flatten()
                .copied()
                .collect();
            direct.add(&written.ids, &values, vec![]).unwrap();
            assert_eq!(
                direct.to_bytes(),
                bytes,
                "the bytes of an index built directly"
            );
        }
        let search = json(&latentlab(&[
            "index",
            "search",
            "--index",
            &bin,
            "--query",
            "a rocket taking off",
            "-k",
            "3",
        ]));
        assert_eq!(search["query_model"], "minilm-l6-v2");
        assert_eq!(search["results"][0]["id"], "s5", "{search}");
        assert_eq!(search["results"].as_array().unwrap().len(), 3);
        // The CLI's search is the core's search with the query the CLI embeds.
        let query = npy_rows(&dir, "text", &["a rocket taking off"]).remove(0);
        let hits = index
            .search(
                &query,
                SearchOptions {
                    k: 3,
                    ..Default::default()
                },
                None,
            )
            .unwrap();
        for (hit, got) in hits.iter().zip(search["results"].as_array().unwrap()) {
            assert_eq!(got["id"], hit.id.as_str());
            assert_eq!(got["score"].as_f64().unwrap() as f32, hit.score);
        }
    }
}

#[test]
fn index_build_refuses_failed_rows_and_other_models_and_search_another_dimension() {
    let dir = TempDir::new("latentlab-parquet", "refuse");
    // An image table with an undecodable row (pyarrow's file: one path to no file).
    let table = dir.path("images.out.parquet");
    json(&embed(
        "image",
        &fixture("images.parquet"),
        "path",
        Some("name"),
        &table,
        &[],
    ));
    let bin = dir.path("images.bin");
    fails_with(
        &latentlab(&["index", "build", "--input", &table, "--out", &bin]),
        &[
            "1 of 4 rows have no embedding",
            "\"no-such-picture\"",
            "--skip-errors",
        ],
    );
    assert!(!std::path::Path::new(&bin).exists());
    fails_with(
        &latentlab(&[
            "index",
            "build",
            "--input",
            &table,
            "--out",
            &bin,
            "--model",
            "minilm-l6-v2",
            "--skip-errors",
        ]),
        &["holds embeddings of \"effl0-minilm-bridge\", not of \"minilm-l6-v2\""],
    );
    let summary = json(&latentlab(&[
        "index",
        "build",
        "--input",
        &table,
        "--out",
        &bin,
        "--skip-errors",
    ]));
    assert_eq!(
        (summary["n"].as_u64(), summary["skipped"].as_u64()),
        (Some(3), Some(1))
    );
    // An image index searched by text: the query goes through the text model it pairs with.
    let search = json(&latentlab(&[
        "index", "search", "--index", &bin, "--query", "a cat", "-k", "1",
    ]));
    assert_eq!(search["model"], "effl0-minilm-bridge");
    assert_eq!(search["query_model"], "minilm-l6-v2");
    assert_eq!(search["results"][0]["id"], "chelsea", "{search}");
    let search = json(&latentlab(&[
        "index",
        "search",
        "--index",
        &bin,
        "--image",
        "www/public/gallery/rocket.jpg",
        "-k",
        "1",
    ]));
    assert_eq!(search["results"][0]["id"], "rocket", "{search}");

    // An index of 4-dimensional vectors: no model of the folder can query it.
    let mut toy = EmbeddingIndex::new("toy", Some(4), Storage::F32).unwrap();
    toy.add(
        &["a".into(), "b".into()],
        &[1., 0., 0., 0., 0., 1., 0., 0.],
        vec![],
    )
    .unwrap();
    let toy_bin = dir.path("toy.bin");
    std::fs::write(&toy_bin, toy.to_bytes()).unwrap();
    fails_with(
        &latentlab(&[
            "index",
            "search",
            "--index",
            &toy_bin,
            "--model",
            "minilm-l6-v2",
            "--query",
            "x",
        ]),
        &[
            "model \"minilm-l6-v2\" gives 384-dimensional embeddings",
            "the index",
            "has 4 (embeddings of \"toy\")",
        ],
    );
    fails_with(
        &latentlab(&["index", "search", "--index", &toy_bin, "--query", "x"]),
        &["has no model \"toy\"", "--model"],
    );
    // A table whose metadata says another dimension than its column, and one that is not
    // an embedding table.
    fails_with(
        &latentlab(&[
            "index",
            "build",
            "--input",
            &fixture("texts.parquet"),
            "--out",
            &bin,
        ]),
        &["has no column \"id\""],
    );
    fails_with(
        &latentlab(&[
            "index",
            "build",
            "--input",
            &fixture("texts.parquet"),
            "--out",
            &bin,
            "--id-column",
            "name",
            "--embedding-column",
            "text",
        ]),
        &["column \"text\" is Utf8: expected fixed_size_list<float32>[dim]"],
    );
    fails_with(
        &latentlab(&["index", "search", "--index", &table, "--query", "x"]),
        &["not an index file"],
    );
}
