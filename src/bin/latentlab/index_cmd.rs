//! `latentlab index build|search`: the export step from an embedding table (Parquet, the
//! CLI's or `latentlab.ray`'s) to `EmbeddingIndex` bytes, the core's format that Python's
//! `index_from_parquet(...).to_bytes()` gives and the npm package's `EmbeddingIndex.fromBytes`
//! loads; and a search of such bytes with a query embedded by a model of the same dimension.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use latentlab::core::index::{EmbeddingIndex, SearchOptions, Storage};
use latentlab::encode::ModelKind;
use serde_json::json;

use crate::common::{emit, load_image, Models};
use crate::encode_cmd::ModelArgs;
use crate::parquet::{self, ReadOptions};

#[derive(Subcommand)]
pub enum IndexCommand {
    /// An index file from an embedding table (`embed … --output`, or Ray's Parquet): the
    /// bytes the npm package's EmbeddingIndex.fromBytes and Python's EmbeddingIndex.from_bytes
    /// load.
    Build {
        /// The embedding table (Parquet or Arrow IPC): an id column and a
        /// FixedSizeList<float> embedding column.
        #[arg(long, value_name = "FILE")]
        input: PathBuf,
        /// The index file to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// How the vectors are kept: f32, f16 or int8.
        #[arg(long, default_value = "f32")]
        storage: String,
        /// The model the table must hold (its schema's latentlab.model); also the index's
        /// model when the table names none.
        #[arg(long, value_name = "NAME")]
        model: Option<String>,
        #[arg(long, value_name = "NAME", default_value = parquet::ID_COLUMN)]
        id_column: String,
        #[arg(long, value_name = "NAME", default_value = parquet::EMBEDDING_COLUMN)]
        embedding_column: String,
        /// Leave out the rows that could not be embedded (a non-null `error`) instead of
        /// refusing the table.
        #[arg(long)]
        skip_errors: bool,
    },
    /// The k items of an index file nearest a text (or image) query, embedded by the
    /// index's model (or --model, which must give vectors of the index's dimension).
    Search {
        #[command(flatten)]
        model: ModelArgs,
        /// The index file (`index build`, or any EmbeddingIndex's bytes).
        #[arg(long, value_name = "FILE")]
        index: PathBuf,
        /// A text query.
        #[arg(long, required_unless_present = "image", conflicts_with = "image")]
        query: Option<String>,
        /// A query picture (PNG or JPEG).
        #[arg(long, value_name = "FILE")]
        image: Option<PathBuf>,
        #[arg(short, long, default_value_t = 5)]
        k: usize,
        /// Only hits scoring at least this.
        #[arg(long)]
        threshold: Option<f32>,
    },
}

pub fn run(command: IndexCommand) -> Result<bool> {
    match command {
        IndexCommand::Build {
            input,
            out,
            storage,
            model,
            id_column,
            embedding_column,
            skip_errors,
        } => {
            let storage: Storage = storage
                .parse()
                .map_err(|e: String| anyhow::anyhow!("--storage: {e}"))?;
            let table = parquet::read_embeddings(
                &input,
                &ReadOptions {
                    model: model.as_deref(),
                    id_column: &id_column,
                    embedding_column: &embedding_column,
                    skip_errors,
                },
            )?;
            // As index_from_table builds it (the dimension fixed, no metadata), so the bytes
            // are Python's for the same table.
            let mut index = EmbeddingIndex::new(&table.model, Some(table.dim), storage)?;
            if !table.ids.is_empty() {
                index
                    .add(&table.ids, &table.values, vec![])
                    .with_context(|| format!("{}", input.display()))?;
            }
            let bytes = index.to_bytes();
            std::fs::write(&out, &bytes)
                .with_context(|| format!("cannot write {}", out.display()))?;
            emit(&json!({
                "model": table.model, "dim": table.dim, "n": index.len(), "skipped": table.skipped,
                "storage": storage, "bytes": bytes.len(), "input": input, "out": out,
            }))?;
        }
        IndexCommand::Search {
            model,
            index: path,
            query,
            image,
            k,
            threshold,
        } => {
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let index = EmbeddingIndex::from_bytes(&bytes, None)
                .with_context(|| format!("--index {}", path.display()))?;
            let models = model.open()?;
            let asked = match model.model.or_else(|| {
                Some(index.model().to_string()).filter(|m| !m.is_empty())
            }) {
                Some(name) => name,
                None => bail!(
                    "the index {} names no model: give --model, one giving {}-dimensional embeddings",
                    path.display(),
                    index.dim().map_or("its".into(), |d| d.to_string())
                ),
            };
            let kind = if image.is_some() {
                ModelKind::Image
            } else {
                ModelKind::Text
            };
            let entry = query_model(&models, &asked, kind)?;
            // Checked from the manifest before the model is loaded: vectors of another
            // dimension cannot be compared, whatever the model.
            if let Some(dim) = index.dim() {
                if entry.1 != dim {
                    bail!(
                        "model {:?} gives {}-dimensional embeddings, but the index {} has {dim} \
                         (embeddings of {:?}): give --model a model of {dim} dimensions, such as the index's own",
                        entry.0,
                        entry.1,
                        path.display(),
                        index.model()
                    );
                }
            }
            let vector = match (&query, &image) {
                (Some(q), _) => models.text(&entry.0)?.embed(&[q.as_str()])?.data,
                (None, Some(file)) => models.image(&entry.0)?.embed(&[load_image(file)?])?.data,
                (None, None) => unreachable!("clap requires one"),
            };
            let hits = index.search(
                &vector,
                SearchOptions {
                    k,
                    threshold,
                    rerank: None,
                },
                None,
            )?;
            let results: Vec<_> = hits
                .iter()
                .enumerate()
                .map(|(rank, h)| json!({"rank": rank + 1, "id": h.id, "score": h.score}))
                .collect();
            emit(&json!({
                "index": path, "model": index.model(), "query_model": entry.0, "dim": index.dim(),
                "n": index.len(), "query": query, "image": image, "results": results,
            }))?;
        }
    }
    Ok(true)
}

/// The model that embeds a query of `kind` for an index of model `name`, and its dimension:
/// `name` itself when of that kind, else the model it pairs with (an image index searched
/// by text, a text index by a picture).
fn query_model(models: &Models, name: &str, kind: ModelKind) -> Result<(String, usize)> {
    let entry = models.manifest.get(name).with_context(|| {
        format!(
            "the models folder {} has no model {name:?}: give --models (the folder that has it) or --model",
            models.dir.display()
        )
    })?;
    if entry.kind == kind {
        return Ok((entry.name.clone(), entry.embedding_dim));
    }
    let paired = match kind {
        ModelKind::Text => entry
            .pairs_with
            .as_deref()
            .and_then(|p| models.manifest.models.iter().find(|m| m.name == p)),
        ModelKind::Image => models
            .manifest
            .models
            .iter()
            .find(|m| m.kind == kind && m.pairs_with.as_deref() == Some(name)),
    };
    match paired {
        Some(m) => Ok((m.name.clone(), m.embedding_dim)),
        None => bail!(
            "model {name:?} is not a {} model and pairs with none: give --model a {} model",
            kind_name(kind),
            kind_name(kind)
        ),
    }
}

fn kind_name(kind: ModelKind) -> &'static str {
    match kind {
        ModelKind::Text => "text",
        ModelKind::Image => "image",
    }
}
