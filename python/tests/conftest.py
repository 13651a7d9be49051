"""Shared helpers: the repository's fixtures, the CLI to compare with, and .npy/.json files
written to a temporary folder for it.

The CLI is $LATENTLAB_CLI, else $CARGO_TARGET_DIR/debug/latentlab, else target/debug/latentlab
(`cargo test` builds it); the models folder is $LATENTLAB_MODELS, else models/.
"""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


def _cli_path() -> Path:
    if os.environ.get("LATENTLAB_CLI"):
        return Path(os.environ["LATENTLAB_CLI"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return target / "debug" / "latentlab"


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return Path(os.environ.get("LATENTLAB_MODELS", ROOT / "models"))


class Cli:
    """Runs `latentlab ARGS…` and returns its (last) JSON object."""

    def __init__(self, path: Path, models: Path):
        if not path.is_file():
            raise RuntimeError(
                f"no latentlab CLI at {path}: build it (cargo build --bin latentlab) or set LATENTLAB_CLI"
            )
        self.path = path
        self.env = dict(os.environ, LATENTLAB_MODELS=str(models))

    def __call__(self, *args) -> dict:
        return self.lines(*args)[-1]

    def lines(self, *args) -> list:
        """Every JSON line it printed (the plan commands print one per plan)."""
        done = subprocess.run(
            [str(self.path), *map(str, args)],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=600,
        )
        assert done.returncode == 0, f"latentlab {' '.join(map(str, args))}: {done.stderr}"
        return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.fixture(scope="session")
def cli(models_dir) -> Cli:
    return Cli(_cli_path(), models_dir)


@pytest.fixture
def npy(tmp_path):
    """Writes an array to NAME.npy in the test's folder and returns the path."""

    def write(name: str, array) -> Path:
        path = tmp_path / f"{name}.npy"
        np.save(path, array)
        return path

    return write


def f32(value) -> np.float32:
    """A number as the float32 both sides computed (the CLI prints float32 values)."""
    return np.float32(value)
