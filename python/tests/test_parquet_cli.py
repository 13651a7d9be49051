"""The CLI's Parquet against the Python package's (issue 18): a table the CLI embeds
(`latentlab embed text|image --input … --output …`) reads in pyarrow with the schema of
`latentlab.embedding_table`, gives the encoders' own embeddings, and `index_from_parquet`
makes of it the bytes `latentlab index build` makes (every storage) with the same top-5; a
table Python writes, failed rows included, builds in the CLI as in Python."""

import subprocess

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed")
pq = pytest.importorskip("pyarrow.parquet")

import latentlab  # noqa: E402
from conftest import FIXTURES  # noqa: E402

TABLES = FIXTURES / "parquet"
QUERIES = ["a rocket taking off", "someone eating", "an animal running fast", "a baby"]


def refused(cli, *args) -> str:
    """Runs the CLI expecting a clean failure; returns its stderr."""
    done = subprocess.run([str(cli.path), *map(str, args)], capture_output=True, text=True, env=cli.env, timeout=600)
    assert done.returncode == 1, f"latentlab {' '.join(map(str, args))}: exit {done.returncode}, {done.stdout}"
    assert "panicked" not in done.stderr
    return done.stderr


@pytest.fixture(scope="module")
def text_table(cli, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli-parquet") / "texts.parquet"
    summary = cli("embed", "text", "--input", TABLES / "texts.parquet", "--column", "text", "--id-column", "name",
                  "--output", out)
    assert (summary["n"], summary["errors"], summary["dim"]) == (7, 0, 384)
    return out


def test_the_cli_table_has_pythons_schema_and_the_encoders_embeddings(text_table, models_dir):
    table = pq.read_table(text_table)
    sentences = pq.read_table(TABLES / "texts.parquet").column("text").to_pylist()
    encoder = latentlab.TextEncoder(models=models_dir)
    expected = latentlab.embedding_table(table.column("id").to_pylist(), encoder.embed(sentences), encoder.name,
                                         [None] * len(sentences))
    assert table.schema.equals(expected.schema, check_metadata=True), f"{table.schema} != {expected.schema}"
    got = np.array(table.column("embedding").to_pylist(), np.float32)
    assert np.abs(got - encoder.embed(sentences)).max() <= 1e-6


@pytest.mark.parametrize("storage", ["f32", "f16", "int8"])
def test_index_from_parquet_gives_the_cli_index_bytes(cli, text_table, models_dir, tmp_path, storage):
    built = tmp_path / "index.bin"
    cli("index", "build", "--input", text_table, "--out", built, "--storage", storage)
    index = latentlab.index_from_parquet(text_table, storage=storage)
    assert index.to_bytes() == built.read_bytes()
    queries = latentlab.TextEncoder(models=models_dir).embed(QUERIES)
    for query, vector in zip(QUERIES, queries):
        native = cli("index", "search", "--index", built, "--query", query, "-k", "5")
        assert [h["id"] for h in index.search(vector, k=5)] == [r["id"] for r in native["results"]], query


def test_a_python_table_with_failed_rows_builds_in_the_cli_as_in_python(cli, tmp_path):
    vectors = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    errors = [None, "images[0] cannot be decoded as a picture: truncated", None, None, None]
    path = tmp_path / "python.parquet"
    pq.write_table(latentlab.embedding_table([f"p{i}" for i in range(5)], vectors, "toy", errors), path)
    message = refused(cli, "index", "build", "--input", path, "--out", tmp_path / "x.bin")
    with pytest.raises(ValueError) as python_error:
        latentlab.index_from_parquet(path)
    # The same count and the same id named by both.
    assert "1 of 5 rows have no embedding" in message and "1 of 5 rows have no embedding" in str(python_error.value)
    assert '"p1"' in message and "'p1'" in str(python_error.value)
    assert not (tmp_path / "x.bin").exists()
    cli("index", "build", "--input", path, "--out", tmp_path / "x.bin", "--skip-errors", "--storage", "f16")
    python = latentlab.index_from_parquet(path, skip_errors=True, storage="f16")
    assert python.to_bytes() == (tmp_path / "x.bin").read_bytes()
    message = refused(cli, "index", "build", "--input", path, "--out", tmp_path / "y.bin", "--model", "other")
    assert 'holds embeddings of "toy", not of "other"' in message


def test_cli_image_table_equals_the_python_encoder(cli, models_dir, tmp_path):
    out = tmp_path / "images.parquet"
    summary = cli("embed", "image", "--input", TABLES / "images.parquet", "--column", "path", "--id-column", "name",
                  "--output", out)
    assert (summary["n"], summary["errors"]) == (4, 1)
    table = pq.read_table(out)
    assert table.column("error").null_count == 3
    paths = [str((TABLES / p).resolve()) for p in pq.read_table(TABLES / "images.parquet").column("path").to_pylist()[:3]]
    encoder = latentlab.ImageEncoder(models=models_dir)
    got = np.array(table.column("embedding").to_pylist()[:3], np.float32)
    assert np.abs(got - encoder.embed(paths)).max() <= 1e-6
    with pytest.raises(ValueError, match="'no-such-picture'"):
        latentlab.index_from_parquet(out)
    assert len(latentlab.index_from_parquet(out, skip_errors=True)) == 3
