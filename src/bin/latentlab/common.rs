//! Pieces every command shares: input files, models, images, JSON out.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use latentlab::encode::RgbaImage;
pub use latentlab::encode::{models_dir, Models};
use latentlab::gpu::Gpu;

#[derive(Args)]
pub struct Input {
    /// A plan file (latentlab plan JSON, an AsyncHow record, a JSON array or JSON
    /// lines of either); `-` or nothing reads standard input.
    #[arg(value_name = "FILE|-")]
    pub file: Option<String>,
}

pub fn read_input(input: &Input) -> Result<(String, String)> {
    match input.file.as_deref() {
        None | Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read standard input")?;
            Ok(("<stdin>".to_string(), text))
        }
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
            Ok((path.to_string(), text))
        }
    }
}

/// Decodes an image file to RGBA, naming the file on failure.
pub fn load_image(path: &Path) -> Result<RgbaImage> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read the image {}", path.display()))?;
    // The package's decoder under Node too, so both see the same pixels.
    latentlab::encode::decode_image(&path.display().to_string(), &bytes)
        .with_context(|| format!("cannot read the image {}", path.display()))
}

/// Image files under `dir` (recursively), sorted by path.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d)
            .with_context(|| format!("cannot read the folder {}", d.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if is_image(&path) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

pub fn is_image(path: &Path) -> bool {
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("png" | "jpg" | "jpeg")
    )
}

/// A progress bar on stderr for long work; hidden when stderr is not a terminal.
pub fn progress(len: usize, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// Prints one JSON line. A closed stdout (`latentlab … | head`) ends the output quietly.
pub fn emit(value: &serde_json::Value) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{value}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// `--backend` of the commands with a GPU path.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The CPU reference path.
    Cpu,
    /// The GPU (WGSL through wgpu; a software adapter such as lavapipe counts).
    Gpu,
    /// A hardware GPU when there is one, else the CPU (a software adapter is slower than
    /// the CPU path); the JSON says which ran and why.
    Auto,
}

/// A device for `--backend gpu|auto`, or why the CPU runs instead (auto only).
pub fn choose_gpu(b: Backend) -> Result<(Option<Gpu>, Option<String>)> {
    match b {
        Backend::Cpu => Ok((None, None)),
        Backend::Gpu => match Gpu::request_blocking() {
            Ok(gpu) => Ok((Some(gpu), None)),
            Err(e) => anyhow::bail!("--backend gpu: {e}; use --backend cpu or auto"),
        },
        Backend::Auto => match Gpu::request_blocking() {
            Ok(gpu) if gpu.is_software() => Ok((
                None,
                Some(format!(
                    "only a software GPU adapter is available ({}), slower than the CPU path",
                    gpu.adapter
                )),
            )),
            Ok(gpu) => Ok((Some(gpu), None)),
            Err(e) => Ok((None, Some(e.to_string()))),
        },
    }
}
