//! Helpers shared by the tests that run the `latentlab` binary from outside.
#![allow(dead_code)] // each test file uses its own subset

use std::process::{Command, Output};

use serde_json::Value;

/// Runs the CLI from the repository root (where `models/` and the fixtures are).
pub fn latentlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_latentlab"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the CLI starts")
}

/// The one JSON object a successful command prints.
pub fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts a clean failure (exit code 1, no panic) whose stderr contains every `needle`.
pub fn fails_with(out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    for needle in needles {
        assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    }
}

/// A temporary folder for a test's input and output files, removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(prefix: &str, name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// The path of `name` inside the folder, as a string for command lines.
    pub fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }

    /// Writes a rows × cols float32 `.npy` file and returns its path.
    pub fn npy(&self, name: &str, rows: u64, cols: u64, data: &[f32]) -> String {
        let path = self.path(name);
        write_npy(&path, &[rows, cols], data);
        path
    }

    /// Writes a 1-D int64 `.npy` file of labels and returns its path.
    pub fn labels(&self, name: &str, data: &[i64]) -> String {
        let path = self.path(name);
        write_npy(&path, &[data.len() as u64], data);
        path
    }
}

/// Writes `data` with `shape` as a `.npy` file of T's default dtype.
pub fn write_npy<T: npyz::AutoSerialize + Copy>(
    path: impl AsRef<std::path::Path>,
    shape: &[u64],
    data: &[T],
) {
    use npyz::WriterBuilder;
    let file = std::fs::File::create(path).unwrap();
    let mut writer = npyz::WriteOptions::<T>::new()
        .default_dtype()
        .shape(shape)
        .writer(std::io::BufWriter::new(file))
        .begin_nd()
        .unwrap();
    writer.extend(data.iter().copied()).unwrap();
    writer.finish().unwrap();
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Reads a float32 `.npy` file as (shape, values).
pub fn read_npy(path: &str) -> (Vec<u64>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = npy.shape().to_vec();
    (shape, npy.into_vec().unwrap())
}

/// A GPU device and one capability's kernels, for a GPU test binary.
pub struct Device<K> {
    pub gpu: latentlab::gpu::Gpu,
    pub kernels: K,
}

/// The device of a GPU test binary, acquired once into `cell` (as the kernels expect).
/// Where no adapter exists the tests skip, printing why — unless LATENTLAB_REQUIRE_GPU is
/// set (`scripts/test` sets it after installing Mesa's lavapipe), when a missing adapter
/// fails instead.
pub fn gpu_device<K: Send + Sync>(
    cell: &'static std::sync::OnceLock<Option<Device<K>>>,
    kernels: fn(&latentlab::gpu::Gpu) -> K,
) -> Option<&'static Device<K>> {
    cell.get_or_init(|| match latentlab::gpu::Gpu::request_blocking() {
        Ok(gpu) => {
            eprintln!("GPU tests run on {}", gpu.adapter);
            let kernels = kernels(&gpu);
            Some(Device { gpu, kernels })
        }
        Err(e) => {
            if std::env::var_os("LATENTLAB_REQUIRE_GPU").is_some() {
                panic!("LATENTLAB_REQUIRE_GPU is set but {e}");
            }
            eprintln!("skipping the GPU tests: {e}");
            None
        }
    })
    .as_ref()
}

/// max |got − want| / max |want| over finite entries; −∞ must match −∞.
pub fn rel_err(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    let scale = want
        .iter()
        .filter(|v| v.is_finite())
        .fold(1e-12f32, |m, v| m.max(v.abs()));
    let mut worst = 0.0f32;
    for (g, w) in got.iter().zip(want) {
        if w.is_finite() {
            worst = worst.max((g - w).abs());
        } else {
            assert_eq!(g, w, "a −∞ potential must stay −∞");
        }
    }
    worst / scale
}
