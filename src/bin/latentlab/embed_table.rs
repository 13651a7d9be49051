//! `latentlab embed text|image --input data.parquet --column C --output out.parquet`: a
//! column of a Parquet (or Arrow IPC) table embedded row by row into the embedding table of
//! `parquet.rs`, streamed batch by batch so memory stays that of one batch.
//!
//! A row that cannot be embedded (a null, empty or non-UTF-8 text, a picture that cannot be
//! read or decoded) costs only itself by default, as `latentlab.ray`'s `on_error="report"`:
//! its embedding is null, the reason is in the `error` column, the rest is kept, the summary
//! counts them and the exit is 0. `--on-error raise` stops at the first such row instead,
//! naming it, and writes nothing. Ids that cannot make an index (null, empty, repeated) are
//! refused before anything is embedded.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use latentlab::encode::{decode_image, ImageEncoder, TextEncoder};
use serde_json::{json, Value};

use crate::common::progress;
use crate::parquet::{self, byte_cells, cells_kind, column, id_cells, Cells, EmbeddingWriter};

/// Texts per model run: `latentlab embed text`'s batch, so that the same texts give the
/// same numbers on both paths.
const TEXT_BATCH: usize = 32;
/// Rows read at a time (texts are batched by length within these rows, so up to this many
/// the batches are the `.npy` path's; beyond, a text's row may differ from that path's by
/// float rounding, ≤ 1e-6); pictures are read fewer at a time, their bytes being larger.
const TEXT_ROWS: usize = 1024;
const IMAGE_ROWS: usize = 64;
/// Failed rows listed in the JSON summary (all are counted).
const SHOWN_FAILURES: usize = 10;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnError {
    /// A row that cannot be embedded gets a null embedding and the reason in `error`.
    Report,
    /// The first row that cannot be embedded stops the run; nothing is written.
    Raise,
}

/// The table options of `embed text` and `embed image`.
#[derive(Args)]
pub struct TableArgs {
    /// A Parquet file (or Arrow IPC file/stream) to embed a column of, instead of
    /// arguments; the table written to --output has an `id` and a FixedSizeList<float32>
    /// `embedding` column, as Python's latentlab.parquet writes.
    #[arg(long, value_name = "FILE", conflicts_with = "out")]
    pub input: Option<PathBuf>,
    /// The column to embed: texts (strings, or binary holding UTF-8); for images, paths
    /// (strings, relative ones resolved against the input file's folder) or encoded PNG/JPEG
    /// bytes (binary).
    #[arg(long, value_name = "NAME")]
    pub column: Option<String>,
    /// The Parquet file to write (with --input).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The column of ids (strings or integers, unique); default: the row number.
    #[arg(long, value_name = "NAME")]
    pub id_column: Option<String>,
    /// What a row that cannot be embedded does (with --input).
    #[arg(long, value_enum)]
    pub on_error: Option<OnError>,
}

impl TableArgs {
    /// The table job, when --input is given; the table options without it are refused, with
    /// the old meaning of --output named (it was the model's other output, now
    /// --model-output).
    pub fn job(&self) -> Result<Option<Job<'_>>> {
        let Some(input) = &self.input else {
            if self.output.is_some() {
                bail!(
                    "--output is the Parquet file written from --input; for another output of \
                     the model (e.g. features) use --model-output, for a .npy file --out"
                );
            }
            for (flag, given) in [
                ("--column", self.column.is_some()),
                ("--id-column", self.id_column.is_some()),
                ("--on-error", self.on_error.is_some()),
            ] {
                if given {
                    bail!("{flag} needs --input (a Parquet file)");
                }
            }
            return Ok(None);
        };
        let column = self
            .column
            .as_deref()
            .context("--input needs --column: the column to embed")?;
        let output = self
            .output
            .as_deref()
            .context("--input needs --output: the Parquet file to write")?;
        Ok(Some(Job {
            input,
            column,
            output,
            id_column: self.id_column.as_deref(),
            on_error: self.on_error.unwrap_or(OnError::Report),
        }))
    }
}

pub struct Job<'a> {
    pub input: &'a Path,
    pub column: &'a str,
    pub output: &'a Path,
    pub id_column: Option<&'a str>,
    pub on_error: OnError,
}

// Boxed: an encoder is large, and only one is ever made.
pub enum Encoder {
    Text(Box<TextEncoder>),
    Image(Box<ImageEncoder>),
}

impl Encoder {
    fn dim(&self) -> usize {
        match self {
            Encoder::Text(e) => e.dim(),
            Encoder::Image(e) => e.dim(),
        }
    }

    fn name(&self) -> &str {
        match self {
            Encoder::Text(e) => &e.entry().name,
            Encoder::Image(e) => &e.entry().name,
        }
    }
}

/// The job's table embedded with the encoder `load` gives (called once the input's columns
/// are checked, so that a wrong column is reported without loading a model). Returns the
/// JSON summary.
pub fn run(job: &Job, images: bool, load: impl FnOnce() -> Result<Encoder>) -> Result<Value> {
    let batch_rows = if images { IMAGE_ROWS } else { TEXT_ROWS };
    let mut columns = vec![job.column];
    columns.extend(job.id_column);
    let table = parquet::open(job.input, &columns, batch_rows)?;
    let field = table.schema.field_with_name(job.column)?;
    let kind = cells_kind(field.data_type()).with_context(|| {
        format!(
            "{}: column {:?} is {}: expected {}",
            job.input.display(),
            job.column,
            field.data_type(),
            if images {
                "image paths (strings) or encoded PNG/JPEG bytes (binary)"
            } else {
                "texts (strings, or binary holding UTF-8)"
            }
        )
    })?;
    if let Some(name) = job.id_column {
        check_ids(job.input, name)?;
    }
    let encoder = load()?;
    let (model, dim) = (encoder.name().to_string(), encoder.dim());
    // Relative paths are the table's own: resolved against its folder, wherever the
    // command runs (as a dataset moved with its pictures keeps working).
    let base = job
        .input
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();

    let mut writer = EmbeddingWriter::create(job.output, &model, dim)?;
    let result = embed_batches(job, table, kind, &encoder, &base, &mut writer);
    let (rows, failed, n_failed) = match result {
        Ok(done) => done,
        Err(e) => {
            writer.abandon();
            return Err(e);
        }
    };
    writer.finish()?;
    if n_failed > 0 {
        let (row, id, error) = &failed[0];
        eprintln!(
            "latentlab: {n_failed} of {rows} rows could not be embedded (first: row {row}, id {id:?}: {error}); \
             their embedding is null and the reason is in the \"error\" column of {}",
            job.output.display()
        );
    }
    Ok(json!({
        "model": model, "dim": dim, "n": rows, "embedded": rows - n_failed, "errors": n_failed,
        "failed": failed.iter().map(|(row, id, error)| json!({"row": row, "id": id, "error": error})).collect::<Vec<_>>(),
        "input": job.input, "column": job.column, "id_column": job.id_column, "output": job.output,
    }))
}

type Failure = (usize, String, String);

/// Streams the batches through the encoder into `writer`: (rows, the first failures, the
/// number of failures).
fn embed_batches(
    job: &Job,
    table: parquet::Table,
    kind: Cells,
    encoder: &Encoder,
    base: &Path,
    writer: &mut EmbeddingWriter,
) -> Result<(usize, Vec<Failure>, usize)> {
    let dim = encoder.dim();
    let what = match encoder {
        Encoder::Text(_) => "embedding texts",
        Encoder::Image(_) => "embedding images",
    };
    let bar = progress(table.rows.unwrap_or(0), what);
    let (mut done, mut shown, mut n_failed) = (0usize, Vec::new(), 0usize);
    for batch in table.batches {
        let batch = batch.with_context(|| format!("cannot read {}", job.input.display()))?;
        let n = batch.num_rows();
        let ids: Vec<String> = match job.id_column {
            // Checked by check_ids: present, not null.
            Some(name) => id_cells(column(&batch, name)?)?
                .into_iter()
                .map(Option::unwrap_or_default)
                .collect(),
            None => (done..done + n).map(|row| row.to_string()).collect(),
        };
        let cells = byte_cells(column(&batch, job.column)?)?;
        let mut values = vec![0f32; n * dim];
        let mut errors: Vec<Option<String>> = vec![None; n];
        match encoder {
            Encoder::Text(text) => {
                let mut texts = Vec::with_capacity(n);
                for (row, cell) in cells.iter().enumerate() {
                    match text_of(*cell, kind) {
                        Ok(t) => texts.push((row, t)),
                        Err(e) => errors[row] = Some(e),
                    }
                }
                // In batches of texts of similar length, as the .npy path embeds them.
                if !texts.is_empty() {
                    let refs: Vec<&str> = texts.iter().map(|(_, t)| *t).collect();
                    let m = text.embed_batched(&refs, TEXT_BATCH, &mut |_, _| {})?;
                    for ((row, _), v) in texts.iter().zip(m.data.chunks_exact(dim)) {
                        values[row * dim..(row + 1) * dim].copy_from_slice(v);
                    }
                }
            }
            Encoder::Image(image) => {
                let (mut decoded, mut pictures) = (Vec::with_capacity(n), Vec::with_capacity(n));
                for (row, cell) in cells.iter().enumerate() {
                    match picture(*cell, kind, base, done + row) {
                        Ok(p) => {
                            decoded.push(row);
                            pictures.push(p);
                        }
                        Err(e) => errors[row] = Some(e),
                    }
                }
                // The decoded pictures in one call, so the encoder runs them side by side on
                // its threads; only if that call fails are they run one by one, so the failure
                // is named by its row and costs only that row.
                match image.embed(&pictures) {
                    Ok(m) => {
                        for (row, v) in decoded.iter().zip(m.data.chunks_exact(dim)) {
                            values[row * dim..(row + 1) * dim].copy_from_slice(v);
                        }
                    }
                    Err(_) => {
                        for (row, p) in decoded.iter().zip(&pictures) {
                            match image.embed(std::slice::from_ref(p)) {
                                Ok(m) => {
                                    values[row * dim..(row + 1) * dim].copy_from_slice(&m.data)
                                }
                                Err(e) => errors[*row] = Some(e.to_string()),
                            }
                        }
                    }
                }
            }
        }
        for (row, error) in errors.iter().enumerate() {
            if let Some(error) = error {
                if job.on_error == OnError::Raise {
                    bail!(
                        "{}: row {} (id {:?}) of column {:?}: {error}; nothing was written \
                         (--on-error report keeps the other rows)",
                        job.input.display(),
                        done + row,
                        ids[row],
                        job.column
                    );
                }
                n_failed += 1;
                if shown.len() < SHOWN_FAILURES {
                    shown.push((done + row, ids[row].clone(), error.clone()));
                }
            }
        }
        writer.write(ids, values, errors)?;
        done += n;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    Ok((done, shown, n_failed))
}

/// A cell as text, or why it cannot be embedded.
fn text_of(cell: Option<&[u8]>, kind: Cells) -> std::result::Result<&str, String> {
    let bytes = cell.ok_or("the text is null")?;
    let text = match kind {
        // Arrow strings were checked when read.
        Cells::Text => std::str::from_utf8(bytes).map_err(|e| e.to_string())?,
        Cells::Binary => std::str::from_utf8(bytes).map_err(|e| {
            format!(
                "the text is not UTF-8 (an invalid byte at offset {} of {})",
                e.valid_up_to(),
                bytes.len()
            )
        })?,
    };
    if text.trim().is_empty() {
        return Err("the text is empty".into());
    }
    Ok(text)
}

/// A cell decoded to a picture: a path read (relative to `base`) or bytes decoded.
fn picture(
    cell: Option<&[u8]>,
    kind: Cells,
    base: &Path,
    row: usize,
) -> std::result::Result<latentlab::encode::RgbaImage, String> {
    let cell = cell.ok_or("the image is null")?;
    match kind {
        Cells::Text => {
            let name = std::str::from_utf8(cell).map_err(|e| e.to_string())?;
            if name.is_empty() {
                return Err("the image path is empty".into());
            }
            let path = base.join(name);
            let bytes = std::fs::read(&path)
                .map_err(|e| format!("cannot read the image {}: {e}", path.display()))?;
            decode_image(&path.display().to_string(), &bytes).map_err(|e| e.to_string())
        }
        Cells::Binary => decode_image(&format!("row {row}"), cell).map_err(|e| e.to_string()),
    }
}

/// Refuses ids that cannot make an index (null, empty, repeated), before any embedding.
fn check_ids(input: &Path, name: &str) -> Result<()> {
    let table = parquet::open(input, &[name], 8192)?;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut row = 0usize;
    for batch in table.batches {
        let batch = batch.with_context(|| format!("cannot read {}", input.display()))?;
        let ids = id_cells(column(&batch, name)?)
            .with_context(|| format!("{}: --id-column {name:?}", input.display()))?;
        for id in ids {
            let Some(id) = id else {
                bail!(
                    "{}: --id-column {name:?} is null in row {row}: every row needs an id",
                    input.display()
                );
            };
            if id.is_empty() {
                bail!("{}: --id-column {name:?} is empty in row {row}: every row needs a non-empty id", input.display());
            }
            if let Some(first) = seen.insert(id.clone(), row) {
                bail!(
                    "{}: --id-column {name:?} has {id:?} in rows {first} and {row}: ids must be unique (an index needs them so)",
                    input.display()
                );
            }
            row += 1;
        }
    }
    Ok(())
}
