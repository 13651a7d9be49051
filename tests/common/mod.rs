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
