"""EmbeddingIndex: bytes that round-trip (and are the core's format, which the browser reads),
search equal to a cosine top-k computed here with numpy, and bad input named."""

import numpy as np
import pytest

import latentlab


def gallery(n=40, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    return [f"item{i}" for i in range(n)], rng.standard_normal((n, dim)).astype(np.float32)


def numpy_top_k(vectors, query, k):
    """Cosine top-k by hand: (ids' rows, scores), ties to the earlier row as the core does."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = unit @ (query / np.linalg.norm(query))
    order = sorted(range(len(scores)), key=lambda r: (-scores[r], r))[:k]
    return order, scores[order]


def test_search_equals_a_cosine_top_k():
    ids, vectors = gallery()
    index = latentlab.EmbeddingIndex("toy", dim=8)
    index.add(ids, vectors)
    queries = np.random.default_rng(1).standard_normal((5, 8)).astype(np.float32)
    batch = index.search_batch(queries, k=5)
    for query, hits in zip(queries, batch):
        rows, scores = numpy_top_k(vectors, query, 5)
        assert [h["id"] for h in hits] == [ids[r] for r in rows]
        assert np.allclose([h["score"] for h in hits], scores, atol=1e-6)
        assert index.search(query, k=5) == hits
    best = batch[0][0]["score"]
    assert [h["id"] for h in index.search(queries[0], k=5, threshold=best)] == [batch[0][0]["id"]]


@pytest.mark.parametrize("storage", ["f32", "f16", "int8"])
def test_bytes_round_trip(storage):
    ids, vectors = gallery()
    index = latentlab.EmbeddingIndex("toy", storage=storage)
    index.add(ids, vectors, [{"n": i, "tag": "even" if i % 2 == 0 else "odd"} for i in range(40)])
    data = index.to_bytes()
    assert data[:7] == b"LLINDEX"
    again = latentlab.EmbeddingIndex.from_bytes(data, model="toy")
    assert (again.model, again.dim, again.storage, len(again)) == ("toy", 8, storage, 40)
    assert again.ids() == ids and "item3" in again and "nope" not in again
    assert again.to_bytes() == data
    query = vectors[3]
    assert again.search(query, k=3) == index.search(query, k=3)
    assert again.search(query, k=1)[0]["metadata"] == {"n": 3, "tag": "odd"}


def test_bad_input_is_named():
    ids, vectors = gallery(4)
    index = latentlab.EmbeddingIndex("toy")
    with pytest.raises(ValueError, match="storage"):
        latentlab.EmbeddingIndex("toy", storage="f8")
    with pytest.raises(ValueError, match="vectors has 4 rows but ids has 3"):
        index.add(ids[:3], vectors)
    with pytest.raises(ValueError, match="vectors holds int64"):
        index.add(ids, np.ones((4, 8), np.int64))
    with pytest.raises(ValueError, match='"item1" is given twice'):
        index.add(["item1", "item1", "item2", "item3"], vectors)
    with pytest.raises(ValueError, match="metadata\\[1\\] is not JSON"):
        index.add(ids, vectors, [None, {"x": float("nan")}, None, None])
    assert len(index) == 0, "a refused add adds nothing"
    index.add(ids, vectors)
    with pytest.raises(ValueError, match='"item0" is already in the index'):
        index.add(ids[:1], vectors[:1])
    with pytest.raises(ValueError, match="the query: 3 dimensions, but the index has 8"):
        index.search(np.ones(3, np.float32))
    with pytest.raises(ValueError, match="queries have 3 dimensions, but the index has 8"):
        index.search_batch(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="k must be at least 1"):
        index.search(vectors[0], k=0)
    with pytest.raises(ValueError, match="holds embeddings of \"toy\", not of \"other\""):
        latentlab.EmbeddingIndex.from_bytes(index.to_bytes(), model="other")
    with pytest.raises(ValueError, match="not an index file"):
        latentlab.EmbeddingIndex.from_bytes(b"not an index")
