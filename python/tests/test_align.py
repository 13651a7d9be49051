"""Alignment: the same scores as `latentlab align` on the same files, the reference code's
values from tests/fixtures/align, and bad input named."""

import json

import numpy as np
import pytest

import latentlab
from conftest import FIXTURES

RNG = np.random.default_rng(3)
X = RNG.normal(size=(60, 24)).astype(np.float32)
Y = (X[:, :16] @ RNG.normal(size=(16, 20)) + 0.3 * RNG.normal(size=(60, 20))).astype(np.float32)
ALL = ["mutual_knn", "cycle_knn", "lcs_knn", "edit_distance_knn", "cka", "unbiased_cka", "cknna", "svcca"]


def test_every_metric_equals_the_cli(cli, npy):
    x, y = npy("x", X), npy("y", Y)
    rows = latentlab.align(X, Y, metrics="all", k=5)
    assert [r["metric"] for r in rows] == ALL
    everything = cli("align", "--x", x, "--y", y, "--metric", "all", "--k", "5", "--backend", "cpu")
    for row in rows:
        assert row["score"] == everything["scores"][row["metric"]], row["metric"]
        assert row["n"] == 60 and row["backend"] == "cpu"
    # one metric at a time: the CLI's per-metric keys
    for metric in ("mutual_knn", "cka", "svcca"):
        theirs = cli("align", "--x", x, "--y", y, "--metric", metric, "--k", "5", "--backend", "cpu")
        (ours,) = latentlab.align(X, Y, metrics=metric, k=5)
        for key in ("metric", "k", "score", "chance"):
            assert ours[key] == theirs[key], (metric, key)
        assert ours["cca_dim"] == theirs.get("cca_dim")


def test_options_as_the_cli(cli, npy):
    x, y = npy("x", X), npy("y", Y)
    for options, flags in [
        ({"prepare": False}, ["--no-prepare"]),
        ({"exact_quantile": True, "outlier_quantile": 0.9}, ["--exact-quantile", "--outlier-quantile", "0.9"]),
    ]:
        (ours,) = latentlab.align(X, Y, metrics=["cknna"], k=7, **options)
        theirs = cli("align", "--x", x, "--y", y, "--metric", "cknna", "--k", "7", "--backend", "cpu", *flags)
        assert ours["score"] == theirs["score"], options


def test_matches_the_reference_code():
    # tests/align_conformance.rs's checks: kNN metrics against the float32 reference, the
    # continuous ones against float64, svcca against the exact-SVD reference.
    doc = json.loads((FIXTURES / "align" / "cases.json").read_text())
    checked = 0
    for case in doc["cases"]:
        x = np.load(FIXTURES / "align" / case["x"])
        y = np.load(FIXTURES / "align" / case["y"])
        options = {
            "mean_of_rows": {},
            "exact": {"exact_quantile": True},
            "off": {"prepare": False},
        }[case["prepare"]]
        for k in case["ks"]:
            ref = case["results"][str(k)]
            for row in latentlab.align(x, y, metrics="all", k=k, **options):
                metric, score = row["metric"], row["score"]
                if metric in ALL[:4]:
                    want = ref["float32"][metric]
                    assert abs(score - want) <= 2e-6 * max(abs(want), 1.0), (case["name"], k, metric)
                elif metric == "svcca":
                    assert abs(score - ref["float64"]["svcca_exact"]) < 1e-5, (case["name"], metric)
                else:
                    assert abs(score - ref["float64"][metric]) < 1e-5, (case["name"], k, metric)
                checked += 1
    assert checked >= 48


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: latentlab.align(X, Y[:50]), ValueError, ["60", "50"]),
        (lambda: latentlab.align(X, Y, metrics="knn"), ValueError, ['"knn"']),
        (lambda: latentlab.align(X, Y, metrics=[]), ValueError, ["empty"]),
        (lambda: latentlab.align(X, Y, k=60), ValueError, ["k"]),
        (lambda: latentlab.align(X.astype(np.float16), Y), ValueError, ["x", "float16"]),
        (lambda: latentlab.align(X, Y[None]), ValueError, ["y", "(1, 60, 20)"]),
        (lambda: latentlab.align(X, Y, precise=True), TypeError, ["precise"]),
    ],
)
def test_bad_input_is_named(call, error, words):
    with pytest.raises(error) as caught:
        call()
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))


def test_nan_is_named_with_its_place():
    y = Y.copy()
    y[4, 1] = np.inf
    with pytest.raises(ValueError, match=r"y.*row 4.*inf"):
        latentlab.align(X, y)
