//! `latentlab embed …`, `latentlab search`, `latentlab eval retrieval`: the encoders.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use latentlab::core::index::{EmbeddingIndex, SearchOptions, Storage};
use latentlab::core::matrix::Matrix;
use latentlab::core::search::{evaluate_retrieval, fuse};
use latentlab::encode::{FusionModel, ModelKind};
use serde_json::json;

use crate::common::{emit, image_files, load_image, progress, Models};
use crate::embed_table::{self, Encoder, TableArgs};
use crate::npy::write_matrix;

const BATCH: usize = 16;

#[derive(Args)]
pub struct ModelArgs {
    /// A model of the manifest; defaults to the bundled one of the needed kind.
    #[arg(long)]
    pub model: Option<String>,
    /// The folder holding manifest.json and the model files.
    #[arg(long, value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// Threads to run the encoders on (default: every core, as onnxruntime; embeddings do
    /// not depend on it).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

impl ModelArgs {
    /// The models folder, its encoders set to run on `--threads`.
    pub fn open(&self) -> Result<Models> {
        if self.threads == Some(0) {
            bail!("--threads must be at least 1");
        }
        let mut models = Models::open(self.models.as_deref())?;
        models.set_threads(self.threads.unwrap_or(0));
        Ok(models)
    }
}

#[derive(Subcommand)]
pub enum EmbedCommand {
    /// Embed texts: one L2-normalised row each; or a column of a Parquet file (--input).
    Text {
        #[command(flatten)]
        model: ModelArgs,
        /// Write the embeddings here (.npy, float32, texts × dim).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        table: TableArgs,
        #[arg(required_unless_present = "input", conflicts_with = "input")]
        texts: Vec<String>,
    },
    /// Embed image files (PNG or JPEG); or a column of paths or bytes of a Parquet file
    /// (--input).
    Image {
        #[command(flatten)]
        model: ModelArgs,
        /// Write the embeddings here (.npy, float32, images × dim).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Another output of the model instead of its embedding (e.g. "features").
        #[arg(long, value_name = "NAME", conflicts_with = "input")]
        model_output: Option<String>,
        #[command(flatten)]
        table: TableArgs,
        #[arg(required_unless_present = "input", conflicts_with = "input")]
        files: Vec<PathBuf>,
    },
}

#[derive(Args)]
pub struct SearchArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// A folder of images (searched recursively)…
    #[arg(long, value_name = "DIR", required_unless_present = "corpus")]
    gallery: Option<PathBuf>,
    /// …or a text file of sentences, one a line (text → text search).
    #[arg(long, value_name = "FILE", conflicts_with = "gallery")]
    corpus: Option<PathBuf>,
    /// The text query, or with --image the instruction that modifies the image.
    #[arg(long)]
    query: Option<String>,
    /// A query image (image → image, or image + instruction with --query).
    #[arg(long)]
    image: Option<PathBuf>,
    /// Weight of the instruction in an image + instruction query (0 = image only).
    #[arg(long, default_value_t = 0.5)]
    weight: f64,
    /// A learned (MagicLens-style) fusion ONNX for image + instruction queries, used instead
    /// of the weighted fusion: inputs image_embeds and text_embeds, output query_embeds.
    #[arg(long, value_name = "ONNX")]
    fusion_model: Option<PathBuf>,
    #[arg(short, long, default_value_t = 5)]
    k: usize,
}

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Text → image retrieval over captioned images: Recall@1/5/10 and median rank.
    Retrieval {
        #[command(flatten)]
        model: ModelArgs,
        /// The text model for the captions, instead of the one the image model pairs with
        /// (another model of the same space, such as minilm-l6-v2-int8).
        #[arg(long, value_name = "NAME")]
        text_model: Option<String>,
        #[command(flatten)]
        stamps: StampArgs,
    },
}

/// Captioned pictures to evaluate on.
#[derive(Args)]
pub struct StampArgs {
    /// Tux Paint's stamps (Debian package tuxpaint-stamps-default): each PNG with a
    /// caption on the first line of the .txt beside it.
    #[arg(long, value_name = "DIR", default_value = "/usr/share/tuxpaint/stamps")]
    pub stamps: PathBuf,
    /// Use the first N captioned stamps only.
    #[arg(long)]
    limit: Option<usize>,
}

impl StampArgs {
    /// The captioned stamps, `--limit` applied; at least `min` of them.
    pub fn load(&self, min: usize) -> Result<Vec<(PathBuf, String)>> {
        let mut items = captioned_stamps(&self.stamps)?;
        if let Some(n) = self.limit {
            items.truncate(n);
        }
        if items.len() < min {
            bail!(
                "{} captioned stamps under {} (with --limit): need at least {min}",
                items.len(),
                self.stamps.display()
            );
        }
        Ok(items)
    }
}

pub fn embed_images(
    encoder: &latentlab::encode::ImageEncoder,
    files: &[PathBuf],
    output: Option<&str>,
) -> Result<Matrix> {
    let bar = progress(files.len(), "embedding images");
    let mut all = Matrix::zeros(0, 0);
    for chunk in files.chunks(BATCH) {
        let images = chunk
            .iter()
            .map(|f| load_image(f))
            .collect::<Result<Vec<_>>>()?;
        let part = match output {
            None => encoder.embed(&images)?,
            Some(name) => encoder.embed_outputs(&images, &[name])?.remove(0),
        };
        all.append(&part)?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(all)
}

fn summary(model: &str, m: &Matrix, out: Option<&Path>) -> Result<serde_json::Value> {
    Ok(match out {
        Some(path) => {
            write_matrix(path, m)?;
            json!({"model": model, "n": m.rows, "dim": m.cols, "out": path})
        }
        None => json!({
            "model": model, "n": m.rows, "dim": m.cols, "out": null,
            "embeddings": m.iter_rows().collect::<Vec<_>>(),
        }),
    })
}

pub fn embed(command: EmbedCommand) -> Result<bool> {
    let value = match command {
        EmbedCommand::Text {
            model,
            out,
            table,
            texts,
        } => {
            let models = model.open()?;
            let name = match model.model {
                Some(n) => n,
                None => models.default_name(ModelKind::Text)?,
            };
            if let Some(job) = table.job()? {
                embed_table::run(&job, false, || {
                    Ok(Encoder::Text(Box::new(models.text(&name)?)))
                })?
            } else {
                let encoder = models.text(&name)?;
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                let bar = progress(refs.len(), "embedding texts");
                let m = encoder
                    .embed_batched(&refs, 32, &mut |done, _| bar.set_position(done as u64))?;
                bar.finish_and_clear();
                summary(&encoder.entry().name, &m, out.as_deref())?
            }
        }
        EmbedCommand::Image {
            model,
            out,
            model_output,
            table,
            files,
        } => {
            let models = model.open()?;
            let name = match model.model {
                Some(n) => n,
                None => models.default_name(ModelKind::Image)?,
            };
            if let Some(job) = table.job()? {
                embed_table::run(&job, true, || {
                    Ok(Encoder::Image(Box::new(models.image(&name)?)))
                })?
            } else {
                let encoder = models.image(&name)?;
                let m = embed_images(&encoder, &files, model_output.as_deref())?;
                summary(&name, &m, out.as_deref())?
            }
        }
    };
    emit(&value)?;
    Ok(true)
}

pub fn search(args: SearchArgs) -> Result<bool> {
    if args.query.is_none() && args.image.is_none() {
        bail!("give a --query, an --image, or both");
    }
    let models = args.model.open()?;
    let image_name = match &args.model.model {
        Some(n) if models.manifest.get(n)?.kind == ModelKind::Image => n.clone(),
        Some(n) => {
            // A text model: find the image model that pairs with it, if any.
            models
                .manifest
                .models
                .iter()
                .find(|m| m.pairs_with.as_deref() == Some(n))
                .map(|m| m.name.clone())
                .unwrap_or_default()
        }
        None => models.default_name(ModelKind::Image)?,
    };
    let text_name = match &args.model.model {
        Some(n) => n.clone(),
        None => models.default_name(ModelKind::Text)?,
    };
    let text = models.text(&text_name)?;

    let (labels, targets): (Vec<String>, Matrix) = if let Some(corpus) = &args.corpus {
        if args.image.is_some() {
            bail!("--image needs a --gallery of images, not a text --corpus");
        }
        let lines: Vec<String> = std::fs::read_to_string(corpus)
            .with_context(|| format!("cannot read {}", corpus.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        if lines.is_empty() {
            bail!("the corpus {} has no sentences", corpus.display());
        }
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let m = text.embed_batched(&refs, 32, &mut |_, _| {})?;
        (lines, m)
    } else {
        let dir = args
            .gallery
            .as_deref()
            .context("give --gallery or --corpus")?;
        let files = image_files(dir)?;
        if files.is_empty() {
            bail!("no PNG or JPEG images under {}", dir.display());
        }
        let encoder = models.image(&image_name)?;
        let m = embed_images(&encoder, &files, None)?;
        (files.iter().map(|f| f.display().to_string()).collect(), m)
    };

    let query = match (&args.query, &args.image) {
        (Some(q), None) => text.embed(&[q.as_str()])?.data,
        (query, Some(file)) => {
            let encoder = models.image(&image_name)?;
            let image = encoder.embed(&[load_image(file)?])?.data;
            match query {
                None => image,
                Some(q) => {
                    let instruction = text.embed(&[q.as_str()])?;
                    match &args.fusion_model {
                        None => fuse(&image, &instruction.data, args.weight as f32)?,
                        Some(path) => {
                            let bytes = std::fs::read(path)
                                .with_context(|| format!("--fusion-model {}", path.display()))?;
                            let fusion = FusionModel::from_bytes(
                                &format!("--fusion-model {}", path.display()),
                                &bytes,
                            )?;
                            let image = Matrix::new(1, image.len(), image, "image query")?;
                            fusion.fuse(&image, &instruction)?.data
                        }
                    }
                }
            }
        }
        (None, None) => unreachable!("checked above"),
    };
    // Row numbers as ids: labels (file names, sentences) need not be unique.
    let mut index = EmbeddingIndex::new("", None, Storage::F32)?;
    let rows: Vec<String> = (0..targets.rows).map(|row| row.to_string()).collect();
    index.add(&rows, &targets.data, vec![])?;
    let options = SearchOptions {
        k: args.k,
        ..Default::default()
    };
    let hits = index.search(&query, options, None)?;
    let results: Vec<_> = hits
        .iter()
        .enumerate()
        .map(|(rank, h)| json!({"rank": rank + 1, "item": labels[h.row], "score": h.score}))
        .collect();
    emit(&json!({
            "query": args.query, "image": args.image,
            "weight": args.image.as_ref().and(args.query.as_ref()).filter(|_| args.fusion_model.is_none()).map(|_| args.weight),
            "fusion_model": args.fusion_model,
            "model": if args.corpus.is_some() { text_name } else { image_name }, "n": labels.len(), "results": results,
    }))?;
    Ok(true)
}

/// Stamps with a caption: (image, first line of the .txt beside it). Cartoons and
/// symbols are left out, as in the team's first measurement (shared/reference/models).
pub fn captioned_stamps(dir: &Path) -> Result<Vec<(PathBuf, String)>> {
    if !dir.is_dir() {
        bail!(
            "{} does not exist: install Debian's tuxpaint-stamps-default (scripts/test does) or give --stamps",
            dir.display()
        );
    }
    let mut out = Vec::new();
    for file in image_files(dir)? {
        let text = file.to_string_lossy();
        if text.contains("cartoon") || text.contains("/symbols/") {
            continue;
        }
        let Ok(caption) = std::fs::read(file.with_extension("txt")) else {
            continue;
        };
        let caption = String::from_utf8_lossy(&caption);
        let first = caption.lines().next().unwrap_or("").trim().to_string();
        if !first.is_empty() {
            out.push((file, first));
        }
    }
    Ok(out)
}

pub fn eval(command: EvalCommand) -> Result<bool> {
    let EvalCommand::Retrieval {
        model,
        text_model,
        stamps,
    } = command;
    let models = model.open()?;
    let (image_name, image, mut text_name, mut text) = models.image_text_pair(model.model)?;
    if let Some(name) = text_model {
        let other = models.text(&name)?;
        if other.dim() != image.dim() {
            bail!(
                "text model {name:?} gives {}-d embeddings, image model {image_name:?} {}-d",
                other.dim(),
                image.dim()
            );
        }
        (text_name, text) = (name, other);
    }
    let items = stamps.load(1)?;
    let files: Vec<PathBuf> = items.iter().map(|(f, _)| f.clone()).collect();
    let captions: Vec<&str> = items.iter().map(|(_, c)| c.as_str()).collect();
    let images = embed_images(&image, &files, None)?;
    let queries = text.embed_batched(&captions, 32, &mut |_, _| {})?;
    let report = evaluate_retrieval(&queries, &images)?;
    emit(&json!({
            "model": image_name, "text_model": text_name, "n": report.n,
            "recall_at_1": report.recall_at_1, "recall_at_5": report.recall_at_5,
            "recall_at_10": report.recall_at_10, "median_rank": report.median_rank,
            "chance_recall_at_1": 1.0 / report.n as f64,
    }))?;
    Ok(true)
}
