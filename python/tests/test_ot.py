"""Optimal transport: the same numbers as `latentlab ot` on the same files (the same CPU code
path, so equal, not close), POT's and OTT-JAX's values from tests/fixtures/ot, and bad input
named."""

import json

import numpy as np
import pytest

import latentlab
from conftest import FIXTURES, f32

RNG = np.random.default_rng(7)
X = RNG.normal(size=(30, 4)).astype(np.float32)
Y = (RNG.normal(size=(25, 4)) + 0.5).astype(np.float32)


def assert_same_solve(ours: dict, theirs: dict):
    for key in ("reg_ot_cost", "ent_reg_cost", "transport_cost", "epsilon"):
        assert f32(ours[key]) == f32(theirs[key]), key
    for key in ("n_iters", "converged", "n", "m", "cost_fn", "tau_a", "tau_b"):
        assert ours[key] == theirs[key], key
    np.testing.assert_array_equal(ours["errors"], np.float32(theirs["errors"]))


@pytest.mark.parametrize(
    "options, flags",
    [
        ({"epsilon": 0.1}, ["--epsilon", "0.1"]),
        (
            {"relative_epsilon": 0.05, "cost_fn": "cosine"},
            ["--relative-epsilon", "0.05", "--cost-fn", "cosine"],
        ),
        (
            {"epsilon": 0.5, "tau_a": 0.8, "tau_b": 0.9, "threshold": 1e-4},
            ["--epsilon", "0.5", "--tau-a", "0.8", "--tau-b", "0.9", "--threshold", "0.0001"],
        ),
    ],
)
def test_sinkhorn_equals_the_cli(cli, npy, tmp_path, options, flags):
    ours = latentlab.sinkhorn(X, Y, return_plan=True, **options)
    plan = tmp_path / "plan.npy"
    theirs = cli(
        "ot", "sinkhorn", "--x", npy("x", X), "--y", npy("y", Y), "--backend", "cpu",
        "--plan-out", plan, *flags,
    )
    assert_same_solve(ours, theirs)
    np.testing.assert_array_equal(ours["plan"], np.load(plan))
    assert ours["plan"].dtype == np.float32 and ours["plan"].shape == (30, 25)
    assert ours["f"].shape == (30,) and ours["g"].shape == (25,)


def test_weights_and_float64_input_as_the_cli(cli, npy):
    a = RNG.random(30)
    a /= a.sum()
    # float64 clouds and weights are read as float32, as the CLI reads float64 .npy files
    ours = latentlab.sinkhorn(X.astype(np.float64), Y, epsilon=0.2, a=a)
    theirs = cli(
        "ot", "sinkhorn", "--x", npy("x", X.astype(np.float64)), "--y", npy("y", Y),
        "--a", npy("a", a), "--epsilon", "0.2", "--backend", "cpu",
    )
    assert_same_solve(ours, theirs)


def test_sinkhorn_cost_equals_the_cli(cli, npy):
    cost = RNG.random((12, 9)).astype(np.float32)
    ours = latentlab.sinkhorn_cost(cost, epsilon=0.05)
    theirs = cli("ot", "sinkhorn", "--cost", npy("c", cost), "--epsilon", "0.05", "--backend", "cpu")
    assert_same_solve(ours, theirs)
    assert ours["cost_fn"] is None


def test_m3g_and_multi_sinkhorn_equal_the_cli(cli, npy):
    views = [RNG.normal(size=(7, 3)).astype(np.float32) for _ in range(3)]
    paths = [npy(f"v{i}", v) for i, v in enumerate(views)]
    theirs = cli("ot", "multi", "--x", *paths, "--epsilon", "0.5", "--backend", "cpu")
    ours = latentlab.m3g(views, epsilon=0.5)
    for key in ("m3g", "ground_truth_cost", "ent_reg_cost", "epsilon"):
        assert f32(ours[key]) == f32(theirs[key]), key
    assert ours["n_iters"] == theirs["n_iters"] and ours["k"] == theirs["k"] == 3
    np.testing.assert_array_equal(ours["errors"], np.float32(theirs["errors"]))

    clouds = [views[0], views[1][:5], views[2][:4]]
    paths = [npy(f"c{i}", c) for i, c in enumerate(clouds)]
    theirs = cli("ot", "multi", "--x", *paths, "--relative-epsilon", "0.1", "--backend", "cpu")
    ours = latentlab.multi_sinkhorn(clouds, relative_epsilon=0.1, return_coupling=True)
    assert theirs["m3g"] is None
    for key in ("ent_reg_cost", "epsilon"):
        assert f32(ours[key]) == f32(theirs[key]), key
    assert ours["n_iters"] == theirs["n_iters"]
    assert ours["sizes"] == theirs["sizes"] == [7, 5, 4]
    assert ours["coupling"].shape == (7, 5, 4)
    assert [p.shape for p in ours["potentials"]] == [(7,), (5,), (4,)]


def load(name):
    return json.loads((FIXTURES / "ot" / name).read_text())["cases"]


def test_sinkhorn_matches_pot_and_ott():
    # The Rust conformance test's settings and tolerance (tests/ot_conformance.rs); the case
    # with OTT's default ε (× the cost's std) has no option here, as in the CLI.
    checked = 0
    for case in load("sinkhorn.json"):
        if case["epsilon"]["kind"] == "relative_to_std":
            continue
        geo, eps = case["geometry"], case["epsilon"]
        options = dict(
            # an empty weight list in the fixture means uniform
            a=np.float32(case["a"]) if case["a"] else None,
            b=np.float32(case["b"]) if case["b"] else None,
            tau_a=case["tau_a"],
            tau_b=case["tau_b"], threshold=1e-5, max_iterations=100_000, return_plan=True,
        )
        if eps["kind"] == "absolute":
            options["epsilon"] = eps["value"]
        else:
            options["relative_epsilon"] = eps["value"]
        if geo["kind"] == "cost_matrix":
            cost = np.float32(geo["cost"]).reshape(geo["n"], geo["m"])
            out = latentlab.sinkhorn_cost(cost, **options)
        else:
            x = np.float32(geo["x"]).reshape(geo["n"], geo["dim"])
            y = np.float32(geo["y"]).reshape(geo["m"], geo["dim"])
            cost_fn = {"sq_euclidean": "sqeuclidean"}.get(geo["cost_fn"], geo["cost_fn"])
            out = latentlab.sinkhorn(x, y, cost_fn=cost_fn, **options)
        want = case["expected"]
        assert out["transport_cost"] == pytest.approx(want["transport_cost"], rel=1e-4), case["name"]
        plan = np.float64(want["plan"]).reshape(out["plan"].shape)
        assert np.abs(out["plan"] - plan).max() <= 1e-4 * np.abs(plan).max(), case["name"]
        checked += 1
    assert checked == 6


def test_m3g_matches_ott():
    cases = load("m3g.json")
    for case in cases:
        k, n, dim = int(case["k"]), int(case["n"]), int(case["dim"])
        views = [np.float32(v).reshape(n, dim) for v in case["x_s"]]
        cost_fn = {"sq_euclidean": "sqeuclidean"}.get(case["cost_fn"], case["cost_fn"])
        eps = case["epsilon"]
        kind = "epsilon" if eps["kind"] == "absolute" else "relative_epsilon"
        out = latentlab.m3g(
            views, cost_fn=cost_fn, threshold=1e-5, max_iterations=100_000, with_gradient=True,
            **{kind: eps["value"]},
        )
        want = case["expected"]
        assert out["m3g"] == pytest.approx(want["m3g"], rel=1e-4), case["name"]
        grad = np.float64(want["gradient"]).reshape(k, n, dim)
        got = np.stack(out["gradient"])
        assert np.abs(got - grad).max() <= 1e-4 * max(np.abs(grad).max(), 1e-12), case["name"]
    assert cases


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: latentlab.sinkhorn(X.astype(np.int64), Y, epsilon=0.1), ValueError, ["x", "int64", "float32"]),
        (lambda: latentlab.sinkhorn(X[0], Y, epsilon=0.1), ValueError, ["x", "(4,)", "2-D"]),
        (lambda: latentlab.sinkhorn(X.tolist(), Y, epsilon=0.1), TypeError, ["x", "numpy array", "list"]),
        (lambda: latentlab.sinkhorn(X, Y[:0], epsilon=0.1), ValueError, ["`y`", "empty"]),
        (lambda: latentlab.sinkhorn(X, Y[:, :3], epsilon=0.1), ValueError, ["`y`"]),
        (lambda: latentlab.sinkhorn(X, Y), ValueError, ["epsilon", "relative_epsilon", "required"]),
        (lambda: latentlab.sinkhorn(X, Y, epsilon=0.1, relative_epsilon=0.1), ValueError, ["both"]),
        (lambda: latentlab.sinkhorn(X, Y, epsilon=-1.0), ValueError, ["`epsilon`", "-1"]),
        (lambda: latentlab.sinkhorn(X, Y, epsilon=0.1, cost_fn="l1"), ValueError, ["cost_fn", '"l1"']),
        (lambda: latentlab.sinkhorn(X, Y, epsilon=0.1, tau_a=2.0), ValueError, ["`tau_a`", "2"]),
        (lambda: latentlab.sinkhorn(X, Y, epsilon=0.1, a=np.ones(3)), ValueError, ["`a`"]),
        (lambda: latentlab.sinkhorn(X, Y, epsilon=0.1, a=np.ones(0)), ValueError, ["a is empty"]),
        (lambda: latentlab.sinkhorn(X, Y, epsilon=0.1, bogus=1), TypeError, ["bogus"]),
        (lambda: latentlab.multi_sinkhorn([X], epsilon=0.1), ValueError, ["k >= 2"]),
        (lambda: latentlab.multi_sinkhorn([X, Y[:, :3]], epsilon=0.1), ValueError, ["clouds[1]", "3 columns"]),
        (lambda: latentlab.multi_sinkhorn([X, Y], epsilon=0.1, weights=[np.ones(30)]), ValueError, ["weights", "1 arrays", "2 point clouds"]),
        (lambda: latentlab.m3g([X, Y], epsilon=0.1), ValueError, ["views[1]"]),
    ],
)
def test_bad_input_is_named(call, error, words):
    with pytest.raises(error) as caught:
        call()
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))


def test_nan_is_named_with_its_place():
    x = X.copy()
    x[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"`x` point 3, coordinate 2 is NaN"):
        latentlab.sinkhorn(x, Y, epsilon=0.1)
