"""The Ray Data pipeline of python/examples/ray_index.py on a local two-CPU Ray: Tux Paint
stamps → LatentlabImageEmbedder on two actors → Parquet (schema, embeddings equal to
ImageEncoder.embed) → index_from_parquet, whose top-5 equal an index built directly and the
npm package's (under Node, from the same bytes); the same for texts. Small on purpose (24
pictures): it must stay well under a minute on two cores."""

import importlib.util
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="ray is not installed (pip install -r python/requirements-test.txt)")
pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed")
pq = pytest.importorskip("pyarrow.parquet")

import latentlab  # noqa: E402
from conftest import ROOT  # noqa: E402

# Ray Data's own DataContext warns about its own deprecated settings; nothing here sets them.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")

STAMPS = Path("/usr/share/tuxpaint/stamps")
QUERIES = ["a cat", "a red car", "a tree", "a house", "food on a plate", "a musical instrument"]


def example():
    """python/examples/ray_index.py as a module: the test runs the example itself."""
    spec = importlib.util.spec_from_file_location("ray_index", ROOT / "python" / "examples" / "ray_index.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def local_ray():
    # No usage report to Ray's servers, no dashboard, the loopback address (no lookup of a
    # routable one): the test leaves this machine alone and stops everything it started.
    saved = os.environ.get("RAY_USAGE_STATS_ENABLED")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()
    if saved is None:
        os.environ.pop("RAY_USAGE_STATS_ENABLED", None)
    else:
        os.environ["RAY_USAGE_STATS_ENABLED"] = saved


@pytest.fixture(scope="module")
def stamps():
    if not STAMPS.is_dir():
        pytest.skip(f"no Tux Paint stamps at {STAMPS} (scripts/lib.sh ensure_stamps installs them)")
    every = sorted(STAMPS.rglob("*.png"))
    # 24 spread over the sorted list, so several categories, not 24 animals
    return [str(p) for p in every[:: max(1, len(every) // 24)][:24]]


def node_top_ids(data: bytes, queries: np.ndarray, tmp_path: Path, k: int):
    """The npm package's searchBatch on `data` (EmbeddingIndex.fromBytes), as lists of ids."""
    pkg = Path(os.environ.get("LATENTLAB_PKG", ROOT / "pkg"))
    if not (pkg / "latentlab_bg.wasm").is_file() or shutil.which("node") is None:
        # scripts/test sets LATENTLAB_PKG after building pkg/: there a missing build is a failure.
        assert "LATENTLAB_PKG" not in os.environ, f"LATENTLAB_PKG={pkg} has no wasm build, or there is no node"
        return None
    (tmp_path / "index.bin").write_bytes(data)
    (tmp_path / "queries.json").write_text(json.dumps(queries.astype(float).tolist()))
    script = f"""
import {{ readFileSync }} from "node:fs";
import {{ EmbeddingIndex }} from {json.dumps((pkg / "node.js").as_uri())};
const index = EmbeddingIndex.fromBytes(readFileSync({json.dumps(str(tmp_path / "index.bin"))}));
const queries = JSON.parse(readFileSync({json.dumps(str(tmp_path / "queries.json"))}, "utf8"));
const hits = index.searchBatch(new Float32Array(queries.flat()), {{ k: {k} }});
console.log(JSON.stringify(hits.map((h) => h.map((x) => x.id))));
"""
    done = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def pipeline(local_ray, stamps, models_dir, tmp_path_factory):
    """The example's image pipeline run once: its Parquet folder and how long it took."""
    out = tmp_path_factory.mktemp("ray") / "stamps"
    start = time.monotonic()
    example().embed_images(stamps, str(out), workers=2, batch_size=6, models=str(models_dir))
    print(f"\nRay pipeline: {len(stamps)} pictures, 2 actors, {time.monotonic() - start:.1f} s")
    return out


@pytest.fixture(scope="module")
def encoder(models_dir):
    return latentlab.ImageEncoder(models=models_dir)


@pytest.fixture(scope="module")
def queries(encoder, stamps, models_dir):
    """Text queries in the pictures' space, and three of the pictures themselves."""
    texts = latentlab.TextEncoder(encoder.pairs_with, models=models_dir).embed(QUERIES)
    return np.concatenate([texts, encoder.embed(stamps[:3])])


def test_parquet_holds_the_encoders_embeddings(pipeline, stamps, encoder):
    table = pq.read_table(pipeline)
    assert table.schema.field("id").type == pa.string()
    kind = table.schema.field("embedding").type
    assert pa.types.is_fixed_size_list(kind) and (kind.list_size, kind.value_type) == (encoder.dim, pa.float32())
    assert table.schema.metadata[b"latentlab.model"] == encoder.name.encode()
    assert table.schema.metadata[b"latentlab.dim"] == str(encoder.dim).encode()
    assert sorted(table.column("id").to_pylist()) == sorted(stamps)
    direct = encoder.embed(stamps)
    rows = dict(zip(table.column("id").to_pylist(), np.array(table.column("embedding").to_pylist(), np.float32)))
    assert max(np.abs(rows[path] - direct[i]).max() for i, path in enumerate(stamps)) <= 1e-6


def test_index_from_parquet_answers_as_a_direct_index(pipeline, stamps, encoder, queries):
    index = latentlab.index_from_parquet(pipeline)
    assert (index.model, index.dim, len(index)) == (encoder.name, encoder.dim, len(stamps))
    reference = latentlab.EmbeddingIndex(encoder.name)
    reference.add(stamps, encoder.embed(stamps))
    ours = index.search_batch(queries, k=5)
    theirs = reference.search_batch(queries, k=5)
    assert [[h["id"] for h in hits] for hits in ours] == [[h["id"] for h in hits] for hits in theirs]
    for a, b in zip(ours, theirs):
        assert np.allclose([h["score"] for h in a], [h["score"] for h in b], atol=1e-6)


def test_the_npm_package_loads_the_bytes_and_answers_the_same(pipeline, queries, tmp_path):
    index = latentlab.index_from_parquet(pipeline)
    in_node = node_top_ids(index.to_bytes(), queries, tmp_path, 5)
    if in_node is None:
        pytest.skip("no built npm package (pkg/latentlab_bg.wasm; LATENTLAB_PKG names another pkg/) or no node")
    assert in_node == [[h["id"] for h in hits] for hits in index.search_batch(queries, k=5)]


def test_texts_through_ray(local_ray, models_dir, tmp_path):
    sentences = json.loads((ROOT / "tests" / "fixtures" / "encoders" / "sentences.json").read_text())["sentences"]
    rows = [{"id": f"s{i}", "text": t} for i, t in enumerate(sentences)]
    out = tmp_path / "texts"
    # one batch, so the padding (and hence every number) is the one TextEncoder.embed uses
    example().embed_texts(rows, str(out), workers=1, batch_size=len(rows), models=str(models_dir))
    encoder = latentlab.TextEncoder(models=models_dir)
    table = pq.read_table(out)
    assert table.schema.metadata[b"latentlab.model"] == encoder.name.encode()
    got = dict(zip(table.column("id").to_pylist(), np.array(table.column("embedding").to_pylist(), np.float32)))
    direct = encoder.embed(sentences)
    assert max(np.abs(got[f"s{i}"] - direct[i]).max() for i in range(len(sentences))) <= 1e-6
    index = latentlab.index_from_parquet(out, model=encoder.name)
    assert index.search(direct[2], k=1)[0]["id"] == "s2"


def test_embedder_errors_name_the_row(models_dir):
    from latentlab.ray import LatentlabImageEmbedder, LatentlabTextEmbedder

    images = LatentlabImageEmbedder(models=str(models_dir), on_error="raise")
    with pytest.raises(ValueError, match="path 'broken.png'"):
        images({"path": np.array(["broken.png"]), "bytes": np.array([b"not a picture"], dtype=object)})
    with pytest.raises(ValueError, match="on_error is 'skip'"):
        LatentlabImageEmbedder(models=str(models_dir), on_error="skip")
    with pytest.raises(ValueError, match="no column 'path'"):
        images({"bytes": np.array([b"x"], dtype=object)})
    texts = LatentlabTextEmbedder(models=str(models_dir), on_error="raise")
    with pytest.raises(ValueError, match="id 'b': text is NoneType, not a string"):
        texts({"id": np.array(["a", "b"]), "text": np.array(["fine", None], dtype=object)})
    with pytest.raises(ValueError, match=r"id 'c': text is not valid UTF-8 \(byte 0xff at offset 2\)"):
        texts({"id": np.array(["c"]), "text": np.array([b"ok\xff"], dtype=object)})


def test_a_text_that_is_not_utf8_costs_only_its_row(models_dir):
    """Bad input of issue 18: texts from a Parquet binary column, one of them not UTF-8 and one
    null: those two rows say why, the others are embedded as TextEncoder.embed embeds them."""
    from latentlab.ray import LatentlabTextEmbedder

    encoder = latentlab.TextEncoder(models=models_dir)
    table = LatentlabTextEmbedder(models=str(models_dir))(
        {"id": np.array(["a", "latin1", "b", "none"]),
         "text": np.array(["a red car".encode(), "caf\xe9".encode("latin-1"), "a small dog", None], dtype=object)})
    errors = table.column("error").to_pylist()
    assert errors[0] is None and errors[2] is None
    assert errors[1] == "text is not valid UTF-8 (byte 0xe9 at offset 3)"
    assert errors[3] == "text is NoneType, not a string"
    assert table.column("embedding").null_count == 2
    kept = np.array([table.column("embedding")[i].as_py() for i in (0, 2)], np.float32)
    assert np.abs(kept - encoder.embed(["a red car", "a small dog"])).max() <= 1e-6
    with pytest.raises(ValueError, match=r"2 of 4 rows have no embedding: 'latin1': text is not valid UTF-8"):
        latentlab.index_from_table(table)


def test_an_undecodable_picture_costs_only_its_row(models_dir, stamps, encoder):
    """Bad input of issue 18: a batch with a picture that cannot be decoded keeps the others,
    reports the failure in its row, and the export refuses it by name unless told to skip it."""
    from latentlab.ray import LatentlabImageEmbedder

    good = [Path(p).read_bytes() for p in stamps[:2]]
    table = LatentlabImageEmbedder(models=str(models_dir))(
        {"path": np.array([stamps[0], "cut.png", stamps[1]]),
         "bytes": np.array([good[0], good[1][:100], good[1]], dtype=object)})
    assert table.column("id").to_pylist() == [stamps[0], "cut.png", stamps[1]]
    errors = table.column("error").to_pylist()
    assert errors[0] is None and errors[2] is None and errors[1]
    assert table.column("embedding").null_count == 1 and not table.column("embedding")[1].is_valid
    kept = np.array([table.column("embedding")[i].as_py() for i in (0, 2)], np.float32)
    assert np.abs(kept - encoder.embed(stamps[:2])).max() <= 1e-6
    with pytest.raises(ValueError, match=r"1 of 3 rows have no embedding: 'cut.png': .*skip_errors=True"):
        latentlab.index_from_table(table)
    index = latentlab.index_from_table(table, skip_errors=True)
    assert sorted(index.ids()) == sorted(stamps[:2])


# --- alignment at scale: one Ray task per pair of models' feature files -----------------------


def views(n: int, dims, seed: int = 0):
    """Features of the same n items by several "models": one shared latent seen through random
    linear maps plus noise, so every pair is aligned to a different, non-trivial degree."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, 16))
    return [
        (latent @ rng.standard_normal((16, d)) + (0.3 + i) * rng.standard_normal((n, d))).astype(np.float32)
        for i, d in enumerate(dims)
    ]


def test_align_all_pairs_gives_align_of_every_pair(local_ray, tmp_path):
    from latentlab.alignment import COLUMNS
    from latentlab.ray import align_all_pairs

    names = ["small", "medium", "large", "wide"]
    features = dict(zip(names, views(200, [32, 48, 64, 96])))
    for name, x in features.items():
        np.save(tmp_path / f"{name}.npy", x)
    table = align_all_pairs({n: tmp_path / f"{n}.npy" for n in names}, metrics=["mutual_knn", "cka"], k=5)
    rows = table.to_pylist()
    assert table.column_names == list(COLUMNS)
    assert [(r["model_a"], r["model_b"], r["metric"]) for r in rows] == [
        (a, b, m) for i, a in enumerate(names) for b in names[i + 1:] for m in ("mutual_knn", "cka")
    ]
    for r in rows:
        direct = latentlab.align(features[r["model_a"]], features[r["model_b"]], metrics=[r["metric"]], k=5)[0]
        assert r["score"] == direct["score"] and r["n"] == 200 and r["unmatched"] == 0 and r["error"] is None
    # the scores differ between pairs: the table is not one number repeated
    assert len({r["score"] for r in rows if r["metric"] == "mutual_knn"}) > 1


def test_parquet_features_are_paired_by_id(local_ray, tmp_path):
    from latentlab.ray import align_all_pairs

    x, y = views(120, [24, 40], seed=1)
    ids = [f"item-{i}" for i in range(120)]
    pq.write_table(latentlab.embedding_table(ids, x, "model-x"), tmp_path / "x.parquet")
    # y written in another order and with one item x lacks, as a Ray pipeline may write it
    order = np.random.default_rng(2).permutation(120)
    extra = np.ones((1, 40), np.float32)
    pq.write_table(
        latentlab.embedding_table([ids[i] for i in order] + ["only-in-y"], np.concatenate([y[order], extra]), "model-y"),
        tmp_path / "y.parquet",
    )
    [row] = align_all_pairs({"x": tmp_path / "x.parquet", "y": tmp_path / "y.parquet"}, k=7).to_pylist()
    assert (row["n"], row["unmatched"], row["error"]) == (120, 1, None)
    assert row["score"] == latentlab.align(x, y, k=7)[0]["score"]


def test_a_pair_that_cannot_be_scored_costs_only_its_rows(local_ray, tmp_path):
    from latentlab.ray import align_all_pairs

    a, b = views(100, [16, 16], seed=3)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    np.save(tmp_path / "short.npy", a[:90])
    sources = {"a": tmp_path / "a.npy", "b": tmp_path / "b.npy", "short": tmp_path / "short.npy"}
    rows = {(r["model_a"], r["model_b"]): r for r in align_all_pairs(sources).to_pylist()}
    assert rows[("a", "b")]["error"] is None and rows[("a", "b")]["score"] is not None
    for pair in (("a", "short"), ("b", "short")):
        assert rows[pair]["score"] is None
        assert "100 items against 90" in rows[pair]["error"]
    # whichever bad pair fails first
    with pytest.raises(ValueError, match=r"^(a|b) × short: 100 items against 90: .npy features must hold the same items"):
        align_all_pairs(sources, on_error="raise")
    np.save(tmp_path / "flat.npy", np.zeros(5, np.float32))
    [row] = align_all_pairs({"a": tmp_path / "a.npy", "flat": tmp_path / "flat.npy"}).to_pylist()
    assert "2-D array" in row["error"]
    pq.write_table(latentlab.embedding_table([str(i) for i in range(100)], b, "m"), tmp_path / "b.parquet")
    [row] = align_all_pairs({"a": tmp_path / "a.npy", "b": tmp_path / "b.parquet"}).to_pylist()
    assert "cannot be paired safely" in row["error"]
