"""Embedding tables and index_from_parquet without Ray: the schema, the round trip to the
index's bytes, and bad files named (a missing column, another model, a wrong column type)."""

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed")
pq = pytest.importorskip("pyarrow.parquet")

import latentlab  # noqa: E402


def written(tmp_path, table):
    path = tmp_path / "e.parquet"
    pq.write_table(table, path)
    return path


def test_table_to_index():
    vectors = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    table = latentlab.embedding_table([f"r{i}" for i in range(6)], vectors, "toy")
    kind = table.schema.field("embedding").type
    assert pa.types.is_fixed_size_list(kind) and (kind.list_size, kind.value_type) == (4, pa.float32())
    index = latentlab.index_from_table(table, storage="f16")
    assert (index.model, index.dim, index.storage, index.ids()) == ("toy", 4, "f16", [f"r{i}" for i in range(6)])
    assert index.search(vectors[4], k=1)[0]["id"] == "r4"


def test_bad_files_are_named(tmp_path):
    vectors = np.ones((2, 3), np.float32)
    path = written(tmp_path, latentlab.embedding_table(["a", "b"], vectors, "toy"))
    with pytest.raises(ValueError, match="holds embeddings of 'toy', not of 'other'"):
        latentlab.index_from_parquet(path, model="other")
    with pytest.raises(ValueError, match="no column 'vec'"):
        latentlab.index_from_parquet(path, embedding_column="vec")
    lists = pa.table({"id": ["a"], "embedding": pa.array([[1.0, 2.0]], pa.list_(pa.float32()))})
    with pytest.raises(ValueError, match="expected fixed_size_list<float32>"):
        latentlab.index_from_parquet(written(tmp_path, lists))
    with pytest.raises(ValueError, match="embeddings has shape"):
        latentlab.embedding_table(["a"], vectors, "toy")
