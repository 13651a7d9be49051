"""Steering: the same steering function (JSON, byte for byte) and steered rows as
`latentlab steer`, JSON round trips both ways, and bad input named."""

import json

import numpy as np
import pytest

import latentlab

RNG = np.random.default_rng(11)
Z = np.arange(80) % 2
X = (RNG.normal(size=(80, 6)) + np.outer(Z, [2.0, 0, 0, -1.0, 0, 0.5])).astype(np.float32)


@pytest.mark.parametrize(
    "options, flags",
    [
        ({"method": "mean"}, ["--method", "mean"]),
        ({"method": "mean-cov"}, ["--method", "mean-cov"]),
        ({"method": "mean-cov", "relative_reg": 0.01, "source_label": 0},
         ["--method", "mean-cov", "--relative-reg", "0.01", "--source-label", "0"]),
    ],
)
def test_fit_and_apply_equal_the_cli(cli, npy, tmp_path, options, flags):
    x, z = npy("x", X), npy("z", Z)
    saved = tmp_path / "steer.json"
    summary = cli("steer", "fit", "--x", x, "--z", z, "--out", saved, *flags)
    ours = latentlab.Steering.fit(X, Z, **options)
    assert ours.to_json() == saved.read_text()
    assert (ours.method, ours.dim, ours.n_source, ours.n_target, ours.reg) == (
        summary["method"], summary["dim"], summary["n_source"], summary["n_target"], summary["reg"],
    )
    assert ours.weights.shape == (6, 6) and ours.bias.shape == (6,)
    for apply_to in ("predicted", "all", "source"):
        out = tmp_path / f"{apply_to}.npy"
        extra = ["--z", z] if apply_to == "source" else []
        theirs = cli("steer", "apply", "--steer", saved, "--x", x, "--out", out, "--apply-to", apply_to, *extra)
        steered = ours.apply(X, apply_to=apply_to, z=Z if apply_to == "source" else None)
        np.testing.assert_array_equal(steered["x"], np.load(out))
        assert steered["n_steered"] == theirs["n_steered"] == int(steered["steered"].sum())


def test_json_round_trip_and_labels_of_any_integer_or_whole_float_type():
    fitted = latentlab.Steering.fit(X, Z.astype(bool), method="mean")
    for z in (Z.astype(np.uint8), Z.astype(np.int32), Z.astype(np.float64)):
        assert latentlab.Steering.fit(X, z, method="mean").to_json() == fitted.to_json()
    again = latentlab.Steering.from_json(fitted.to_json())
    assert (again.method, again.dim, again.n_source) == (fitted.method, fitted.dim, fitted.n_source)
    # serde_json reads a float back to within an ulp (no exact round trip), as the CLI does
    mine, read = json.loads(fitted.to_json()), json.loads(again.to_json())
    np.testing.assert_allclose(read["b"], mine["b"], rtol=1e-15)
    np.testing.assert_allclose(again.apply(X)["x"], fitted.apply(X)["x"], rtol=1e-6)


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: latentlab.Steering.fit(X, Z[:10]), ValueError, ["z", "10", "80"]),
        (lambda: latentlab.Steering.fit(X, Z + 1), ValueError, ["z"]),
        (lambda: latentlab.Steering.fit(X, Z * 0.5), ValueError, ["z entry 1 is 0.5", "whole number"]),
        (lambda: latentlab.Steering.fit(X, Z.astype(str)), ValueError, ["z", "<U"]),
        (lambda: latentlab.Steering.fit(X, Z, method="median"), ValueError, ["method", '"median"']),
        (lambda: latentlab.Steering.fit(X, Z, source_label=2), ValueError, ["source_label is 2"]),
        (lambda: latentlab.Steering.fit(X, Z, reg=1.0, relative_reg=1.0), ValueError, ["reg"]),
        (lambda: latentlab.Steering.fit(X[:0], Z[:0]), ValueError, ["x"]),
        (lambda: latentlab.Steering.fit(X, Z).apply(X[:, :5]), ValueError, ["5", "6"]),
        (lambda: latentlab.Steering.fit(X, Z).apply(X, apply_to="some"), ValueError, ["apply_to", '"some"']),
        (lambda: latentlab.Steering.fit(X, Z).apply(X, apply_to="source"), ValueError, ["z"]),
        (lambda: latentlab.Steering.from_json("{}"), ValueError, []),
        (lambda: latentlab.Steering.fit(X, Z, methd="mean"), TypeError, ["methd"]),
    ],
)
def test_bad_input_is_named(call, error, words):
    with pytest.raises(error) as caught:
        call()
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))


def test_nan_is_named_with_its_place():
    x = X.copy()
    x[7, 3] = np.nan
    with pytest.raises(ValueError, match=r"row 7, column 3"):
        latentlab.Steering.fit(x, Z)
