"""Experiment runner: a real short run, resume after a kill, sharding, the report's statistics,
data-parallel training on two virtual JAX devices."""

import csv
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_robust import experiments as ex

ROOT = Path(__file__).resolve().parents[1]


def _small(loss="ce", **kw):
    base = dict(noise="symmetric", noise_rate=0.4, epochs=1, limit=320, test_limit=200)
    base.update(kw)
    return ex.paper_config("fashion_mnist", "mlp1024", loss, **base)


# -- configuration ---------------------------------------------------------------------
def test_paper_defaults_follow_the_appendix():
    mlp = ex.paper_config("fashion_mnist", "mlp1024", "mae*")
    assert (mlp.optimizer, mlp.momentum, mlp.batch_size, mlp.weight_decay) == ("sgd", 0.95, 32, 0.0)
    assert mlp.lr_schedule == "exponential" and mlp.lr_decay == 0.95
    assert mlp.loss_params == {"epsilon": 0.5}
    assert mlp.learning_rate(2) == pytest.approx(0.003 * 0.95**2)
    r10 = ex.paper_config("cifar10", "resnet32", "ce")
    # The paper's PyTorch weight decay 1e-4 is coupled L2 (RunConfig.l2), not Keras' decoupled form.
    assert (r10.lr, r10.momentum, r10.l2, r10.weight_decay, r10.batch_size) == (0.1, 0.9, 1e-4, 0.0, 128)
    assert [r10.learning_rate(e) for e in (0, 99, 100, 149, 150, 199)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    assert ex.paper_config("cifar10", "resnet32", "mae*").loss_params == {"epsilon": 0.5}  # Table 2
    assert ex.paper_config("cifar100", "resnet34", "mae*").loss_params == {}  # epsilon(K) of Eq. 4
    r100 = ex.paper_config("cifar100", "resnet34", "ce")
    assert [r100.learning_rate(e) for e in (59, 60, 120, 160)] == pytest.approx([0.1, 0.02, 0.004, 0.0008])


def test_mlp_learning_rates_are_the_best_means_of_appendix_table2():
    # Appendix Table 2, Fashion-MNIST, mean test accuracy per initial learning rate.
    grid = (0.0005, 0.0008, 0.001, 0.003, 0.005, 0.008, 0.01, 0.03, 0.05)
    table = {
        "ce": (89.39, 89.63, 89.64, 90.11, 90.20, 89.97, 90.08, 89.19, 10.00),
        "mae": (81.24, 84.83, 82.53, 82.11, 84.34, 79.61, 72.00, 10.03, 12.00),
        "mae*": (88.72, 88.52, 88.52, 89.55, 88.52, 89.43, 87.55, 10.00, 10.01),
        "gce": (88.54, 88.82, 88.93, 89.57, 89.60, 89.75, 89.76, 17.00, 11.06),
        "nfl+mae": (88.73, 89.06, 89.13, 88.30, 30.28, 20.34, 17.47, 10.00, 12.36),
        "nce+mae": (88.82, 89.05, 89.14, 88.31, 43.06, 10.00, 13.94, 15.95, 11.87),
        "bitempered": (89.08, 89.33, 89.50, 89.97, 90.13, 90.16, 90.19, 89.93, 89.44),
    }
    for loss, accs in table.items():
        assert ex.MLP_LEARNING_RATES["fashion_mnist"][loss] == grid[int(np.argmax(accs))], loss
        assert ex.paper_config("fashion_mnist", "mlp1024", loss).lr == grid[int(np.argmax(accs))]


def test_config_round_trip_and_id():
    c = _small("mae*", seed=3)
    d = c.get_config()
    back = ex.RunConfig.from_config(json.loads(json.dumps(d)))
    assert back == c and back.run_id == c.run_id
    assert c.replace(seed=4).run_id != c.run_id
    assert keras.saving.get_registered_object("keras_robust>RunConfig") is ex.RunConfig


@pytest.mark.parametrize(
    "field, value, error",
    [
        ("dataset", "mnist", ValueError),
        ("dataset", 3, TypeError),
        ("arch", "vgg", ValueError),
        ("loss", "nope", ValueError),
        ("noise", "pairflip", ValueError),
        ("noise_rate", 1.5, ValueError),
        ("seed", -1, ValueError),
        ("epochs", 0, ValueError),
        ("batch_size", 2.5, ValueError),
        ("lr", 0.0, ValueError),
        ("lr_boundaries", (150, 100), ValueError),
        ("lr_schedule", "cosine", ValueError),
        ("optimizer", "rmsprop", ValueError),
        ("limit", 0, ValueError),
        ("loss_params", [1], TypeError),
        ("augment", "yes", TypeError),
        ("l2", -1e-4, ValueError),
        ("l2", float("nan"), ValueError),
    ],
)
def test_bad_config_raises_naming_the_field(field, value, error):
    with pytest.raises(error, match=field):
        ex.RunConfig(**{field: value})


def test_runs_recorded_before_a_field_existed_keep_their_ids():
    # The id hashes fields added later (labels, l2) only when set: the committed
    # grid histories (results/mlp1024) must keep naming their directories.
    c = ex.paper_config("fashion_mnist", "mlp1024", "ce", noise="symmetric", noise_rate=0.4, seed=0, backend="jax")
    assert c.run_id == "fashion_mnist-mlp1024-ce-sym40-s0-1a39ce00"
    assert c.replace(l2=1e-4).run_id != c.run_id


def test_coupled_l2_is_pytorchs_sgd_weight_decay():
    """One step of SGD with momentum and ``l2`` against PyTorch's rule written in
    NumPy: ``v = m v + (g + l2 w); w -= lr v`` (two steps, so momentum matters)."""
    from keras_robust.experiments import runs

    cfg = _small(loss="ce", l2=0.05, momentum=0.9, lr=0.1, batch_size=8)
    model, loss = runs.build(cfg, 10, (28, 28, 1))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, size=8).astype("int32")
    w0 = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]

    def grads(weights):  # gradient of the data loss only, at the given weights
        probe = keras.models.clone_model(model)
        probe.set_weights(weights)
        if keras.backend.backend() == "jax":
            import jax

            def f(ws):
                logits, _ = probe.stateless_call(ws, [v.value for v in probe.non_trainable_variables], x)
                return loss(y, logits)
            return [np.asarray(g) for g in jax.grad(f)([v.value for v in probe.trainable_variables])]
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf
            with tf.GradientTape() as tape:
                value = loss(y, probe(x))
            return [g.numpy() for g in tape.gradient(value, probe.trainable_variables)]
        import torch
        value = loss(torch.as_tensor(y), probe(torch.as_tensor(x)))
        value.backward()
        return [v.value.grad.detach().cpu().numpy() for v in probe.trainable_variables]

    w, v = [a.copy() for a in w0], [np.zeros_like(a) for a in w0]
    for _ in range(2):
        g = grads(w)
        v = [0.9 * vi + gi + 0.05 * wi for vi, gi, wi in zip(v, g, w)]
        w = [wi - 0.1 * vi for wi, vi in zip(w, v)]
        model.train_on_batch(x, y)
    got = [keras.ops.convert_to_numpy(t) for t in model.trainable_variables]
    for a, b in zip(got, w):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)
    # and it is not Keras' decoupled weight_decay of the same value
    assert max(np.abs(a - b).max() for a, b in zip(got, w0)) > 1e-3


def test_cifar_n_preset_is_the_reference_codes_setup():
    c = ex.cifar_n_config(loss="ce")
    assert (c.dataset, c.arch, c.noise, c.labels, c.epochs, c.batch_size) == (
        "cifar10", "resnet34", "human", "worse", 100, 128)
    assert (c.momentum, c.l2, c.weight_decay, c.augment) == (0.9, 5e-4, 0.0, True)
    assert [c.learning_rate(e) for e in (0, 59, 60, 99)] == pytest.approx([0.1, 0.1, 0.01, 0.01])
    assert ex.cifar_n_config(loss="mae*", labels="aggre").labels == "aggre"
    clean = ex.cifar_n_config(noise="none")
    assert (clean.noise, clean.labels) == ("none", None)
    assert set(ex.CIFAR_N_CE_REFERENCE) == {"clean", "aggre", "random1", "random2", "random3", "worse"}
    assert ex.SETUPS["cifar-n"] is ex.cifar_n_config and ex.SETUPS["paper"] is ex.paper_config


def test_bad_run_arguments():
    with pytest.raises(TypeError, match="config"):
        ex.run("fashion_mnist")
    with pytest.raises(ValueError, match="verbose"):
        ex.run(_small(), verbose=5)
    other = {"jax": "torch", "torch": "tensorflow", "tensorflow": "jax"}[keras.backend.backend()]
    with pytest.raises(ValueError, match="backend"):
        ex.run(_small(backend=other))


# -- sharding --------------------------------------------------------------------------------
def test_shards_partition_the_grid_whatever_the_order():
    configs = [_small(loss, noise_rate=r, seed=s) for loss in ("ce", "mae", "mae*")
               for r in (0.2, 0.4) for s in (0, 1)]
    ids = {c.replace(backend=keras.backend.backend()).run_id for c in configs}
    assert len(ids) == 12
    for n in (1, 3, 5, 12, 13):
        shards = [[c.run_id for c in ex.shard(configs, f"{i}/{n}")] for i in range(1, n + 1)]
        flat = [r for s in shards for r in s]
        assert sorted(flat) == sorted(ids) and len(flat) == len(ids)  # disjoint, complete
        assert max(map(len, shards)) - min(map(len, shards)) <= 1  # balanced
        shuffled = [configs[i] for i in np.random.default_rng(n).permutation(len(configs))]
        assert [[c.run_id for c in ex.shard(shuffled, f"{i}/{n}")] for i in range(1, n + 1)] == shards
    # duplicates are run once
    assert len(ex.shard(configs + configs[:4], "1/1")) == 12


@pytest.mark.parametrize("bad", ["0/2", "3/2", "1-2", "a/b", "1/0", 2])
def test_bad_shard(bad):
    with pytest.raises(ValueError, match="shard"):
        ex.parse_shard(bad)


def _timed_histories(res):
    """Histories of runs that trained nothing, with their epoch times: CE seed 0 finished (10 epochs of
    3 s), CE seed 1 started (5 of 6 s: CE's mean is 4 s) and MAE started (2 of 8 s), both with a
    checkpoint folder; returns the configurations CE seeds 0-2 and MAE."""

    def write(config, done, seconds, finished=False):
        d = ex.run_dir(config, res)
        (d / "checkpoint").mkdir(parents=True)
        rows = [{"epoch": e + 1, "seconds": seconds} for e in range(done)]
        (d / "history.json").write_text(json.dumps({"config": config.to_dict(), "epochs": rows,
                                                    "finished": finished}))
        return d

    ce = [_small("ce", seed=s, epochs=10) for s in range(3)]
    mae = _small("mae", seed=0, epochs=10)
    write(ce[0], 10, 3.0, finished=True)
    write(ce[1], 5, 6.0)
    write(mae, 2, 8.0)
    return ce, mae, write


def test_status_reads_the_histories_and_prices_the_epochs_left(tmp_path, capsys):
    res = tmp_path / "results"
    ce, mae, write = _timed_histories(res)
    other = ex.paper_config("cifar10", "mlp1024", "ce", epochs=10)
    (write(_small("gce", seed=9, epochs=10), 0, 0.0) / "history.json").write_text("{not json")
    rows = ex.status(ce + [mae, other], res)
    by_id = {r["run_id"]: r for r in rows}
    assert [r["run_id"] for r in rows] == sorted(by_id)  # the order `grid` runs them in
    first, second, third = (by_id[c.replace(backend=keras.backend.backend()).run_id] for c in ce)
    assert (first["state"], first["epochs_done"], first["seconds_left"]) == ("finished", 10, 0.0)
    assert (second["state"], second["epochs_done"]) == ("started", 5)
    assert second["seconds_left"] == pytest.approx(5 * 4.0)  # its loss's mean epoch time
    assert (third["state"], third["seconds_left"]) == ("to do", pytest.approx(10 * 4.0))
    m = by_id[mae.replace(backend=keras.backend.backend()).run_id]
    assert (m["state"], m["seconds_left"]) == ("started", pytest.approx(8 * 8.0))
    o = by_id[other.replace(backend=keras.backend.backend()).run_id]
    assert (o["state"], o["seconds_left"]) == ("to do", None)  # nothing of CIFAR-10 timed yet
    # the data set and network's mean where the loss has no recorded epoch: (30 + 30 + 16) / 17
    gce = ex.status([_small("gce", seed=1, epochs=10)], res)[0]
    assert gce["seconds_left"] == pytest.approx(10 * (30 + 30 + 16) / 17)
    assert [r["state"] for r in ex.status([_small("gce", seed=9, epochs=10)], res)] == ["unreadable"]
    # a started run without its checkpoint folder (a fresh clone) trains again from epoch 0
    shutil.rmtree(write(_small("ce", seed=7, epochs=10), 5, 6.0) / "checkpoint")
    fresh = ex.status([_small("ce", seed=7, epochs=10)], res)[0]
    assert (fresh["state"], fresh["epochs_done"]) == ("restarts", 5)
    assert fresh["seconds_left"] == pytest.approx(10 * (30 + 30 + 30) / 20)
    shutil.rmtree(ex.run_dir(_small("ce", seed=7, epochs=10), res))
    # one shard of it, and the CLI front-end, which trains nothing
    assert [r["run_id"] for r in ex.status(ce + [mae, other], res, shard="2/2")] == sorted(by_id)[1::2]
    text = ex.format_status(rows)
    assert text.splitlines()[-1] == ("shard 1/1: 5 runs: 1 finished, 2 started, 2 to do; left: 2 min "
                                     "at the epoch times recorded so far + 1 runs of a kind with no "
                                     "recorded epoch yet")
    assert ex.format_status([first]).endswith("1 runs: 1 finished; left: nothing")
    from recipes import grid as grid_recipe

    files = sorted(res.rglob("*"))
    out = grid_recipe.main(["--dataset", "fashion_mnist", "--losses", "ce", "--rates", "0.4", "--seeds",
                            "0,1,2", "--epochs", "10", "--limit", "320", "--test-limit", "200",
                            "--results", str(res), "--status"])
    assert [r["state"] for r in out] == ["finished", "started", "to do"]
    assert "3 runs: 1 finished, 1 started, 1 to do" in capsys.readouterr().out
    assert sorted(res.rglob("*")) == files  # nothing trained, locked or written


def test_a_deadline_defers_the_runs_that_would_end_after_it(tmp_path, capsys):
    res = tmp_path / "results"
    ce, _, _ = _timed_histories(res)
    ids = [c.replace(backend=keras.backend.backend()).run_id for c in ce]
    order = [ids.index(c.run_id) for c in ex.shard(ce)]  # the order `grid` runs them in

    def by_seed(out):
        return [out[order.index(s)] for s in range(3)]

    # CE epochs take 4 s: seed 1 needs 5 more (20 s), seed 2 all 10 (40 s); 30 s are left
    finished, started, todo = by_seed(ex.grid(ce, res, deadline=time.time() + 30))
    assert finished["finished"] and len(finished["epochs"]) == 10  # read back, nothing trained
    assert "deferred" not in started and "checkpoint" in started["error"]  # it fits: it was started
    assert set(todo) == {"run_id", "deferred"} and "needs about 1 min" in todo["deferred"]
    text = capsys.readouterr().out
    assert f"grid: deferred {ids[2]}" in text and "1 of 3 runs deferred" in text
    # a past deadline starts nothing, but a finished run is still read back
    out = by_seed(ex.grid(ce, res, deadline=time.time() - 1, verbose=0))
    assert [("deferred" in h, "error" in h) for h in out] == [(False, False), (True, False), (True, False)]
    assert not (ex.run_dir(ce[2], res) / "history.json").exists()
    from recipes import grid as grid_recipe

    argv = ["--dataset", "fashion_mnist", "--losses", "ce", "--rates", "0.4", "--seeds", "0,1,2", "--epochs",
            "10", "--limit", "320", "--test-limit", "200", "--results", str(res), "--quiet"]
    assert ["deferred" in h for h in by_seed(grid_recipe.main(argv + ["--deadline", "+1s"]))] == [
        False, True, True]
    with pytest.raises(SystemExit) as e:
        grid_recipe.main(argv + ["--deadline", "soon"])
    assert e.value.code == 2 and "argument --deadline: `deadline` must be" in capsys.readouterr().err


def test_parse_deadline():
    import datetime

    now = datetime.datetime(2026, 12, 7, 22, 0).timestamp()  # local time
    assert ex.parse_deadline("+90m", now=now) == now + 5400
    assert ex.parse_deadline(" +2h", now=now) == now + 7200
    assert ex.parse_deadline("+45s", now=now) == now + 45
    assert ex.parse_deadline("+1.5h", now=now) == now + 5400
    # HH:MM is the next such time, as `at` reads it
    assert ex.parse_deadline("23:30", now=now) == datetime.datetime(2026, 12, 7, 23, 30).timestamp()
    assert ex.parse_deadline("06:00", now=now) == datetime.datetime(2026, 12, 8, 6, 0).timestamp()
    assert ex.parse_deadline("22:00", now=now) == datetime.datetime(2026, 12, 8, 22, 0).timestamp()
    assert ex.parse_deadline("2026-12-08T01:15", now=now) == datetime.datetime(2026, 12, 8, 1, 15).timestamp()
    assert ex.parse_deadline(datetime.datetime(2026, 12, 9)) == datetime.datetime(2026, 12, 9).timestamp()
    assert ex.parse_deadline(1234.5) == 1234.5
    assert ex.parse_deadline("1796634529") == 1796634529.0  # `date +%s`, as the grid scripts pass it


@pytest.mark.parametrize("bad", ["soon", "25:00", "12:60", "+5d", "+m", "12345", "", None, True, [1]])
def test_bad_deadline(bad):
    with pytest.raises(ValueError, match="`deadline` must be"):
        ex.parse_deadline(bad)


def test_grid_scripts_fix_a_relative_deadline_once():
    """``DEADLINE=+2m`` becomes POSIX seconds at the script's start (each `recipes.grid` call of the
    script would otherwise count it from its own start); clock times pass unchanged."""

    def source(deadline):
        return subprocess.run(["bash", "-c", "source recipes/deadline.sh && echo \"$DEADLINE\""], cwd=ROOT,
                              env=dict(os.environ, DEADLINE=deadline), capture_output=True, text=True)

    before = time.time()
    fixed = source("+2m")
    assert fixed.returncode == 0 and before + 119 <= float(fixed.stdout) <= time.time() + 121
    assert abs(ex.parse_deadline(fixed.stdout.strip()) - float(fixed.stdout)) == 0
    assert source("07:30").stdout.strip() == "07:30"
    bad = source("+1.5h")
    assert bad.returncode == 2 and "whole number" in bad.stderr
    for script in ("cifar10n_grid.sh", "fidelity_grid.sh"):
        assert "source recipes/deadline.sh" in (ROOT / "recipes" / script).read_text()


# -- the report ------------------------------------------------------------------------------
def _history(path, loss, rate, seed, accs, fla=None, finished=True, epochs=None, **cfg):
    c = ex.RunConfig(dataset="fashion_mnist", arch="mlp1024", loss=loss, noise="symmetric" if rate else "none",
                     noise_rate=rate, seed=seed, epochs=epochs or len(accs), backend="jax", **cfg)
    rows = [{"epoch": i + 1, "loss": 1.0, "accuracy": 0.5, "test_loss": 1.0, "test_accuracy": a,
             "false_label_accuracy": None if fla is None else fla[i], "noisy_label_accuracy": None,
             "epsilon": None, "lr": 0.1, "seconds": 1.0} for i, a in enumerate(accs)]
    d = Path(path) / c.run_id
    d.mkdir(parents=True)
    (d / "history.json").write_text(json.dumps({"run_id": c.run_id, "config": c.to_dict(), "epochs": rows,
                                                "finished": finished}))


def test_report_mean_and_standard_error_on_hand_made_histories(tmp_path):
    res = tmp_path / "results"
    # CE at 40 %: final accuracies 0.80, 0.82, 0.87 -> mean 0.83,
    # sample std sqrt((0.03^2 + 0.01^2 + 0.04^2) / 2) = sqrt(0.0013), SE = that / sqrt(3) = 0.0208167
    for seed, (a, f) in enumerate([(0.80, 0.5), (0.82, 0.6), (0.87, 0.7)]):
        _history(res, "ce", 0.4, seed, [0.5, 0.9, a], fla=[0.9, 0.8, f])
    # MAE at 0 %: 0.60 and 0.70 -> mean 0.65, SE = 0.05 (std 0.0707107 / sqrt 2)
    _history(res, "mae", 0.0, 0, [0.1, 0.60])
    _history(res, "mae", 0.0, 1, [0.2, 0.70])
    # a single seed: no error bar
    _history(res, "ce", 0.0, 0, [0.3, 0.91])
    # unfinished runs and runs of another length are not mixed in
    _history(res, "ce", 0.4, 7, [0.1], finished=False, epochs=3)
    _history(res, "ce", 0.4, 0, [0.2, 0.2, 0.2, 0.2])

    out = tmp_path / "out"
    r = ex.report(res, out, verbose=0)
    cells = r["aggregate"][("fashion_mnist", "mlp1024", 3)]
    ce40 = cells[("CE", "symmetric", 0.4)]
    assert ce40["n"] == 3 and ce40["seeds"] == [0, 1, 2]
    assert ce40["mean"] == pytest.approx(0.83)
    assert ce40["se"] == pytest.approx(math.sqrt(0.0013) / math.sqrt(3))
    assert ce40["best_mean"] == pytest.approx((0.9 + 0.9 + 0.9) / 3)
    assert ce40["false_label_accuracy"] == pytest.approx(0.6)
    assert ce40["curves"]["test_accuracy"] == pytest.approx([0.5, 0.9, 0.83])
    mae0 = r["aggregate"][("fashion_mnist", "mlp1024", 2)][("MAE", "none", 0.0)]
    assert (mae0["mean"], mae0["se"]) == pytest.approx((0.65, 0.05))
    assert math.isnan(r["aggregate"][("fashion_mnist", "mlp1024", 2)][("CE", "none", 0.0)]["se"])

    md = (out / "table-fashion_mnist-mlp1024-3ep.md").read_text()
    assert "| loss | 40 % |" in md and "| CE | 83.00 ± 2.08 |" in md
    md2 = (out / "table-fashion_mnist-mlp1024-2ep.md").read_text()
    assert "| loss | 0 % |" in md2 and "| MAE | 65.00 ± 5.00 |" in md2 and "| CE | 91.00 (n=1) |" in md2
    with open(out / "table-fashion_mnist-mlp1024-3ep.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert float(row["mean"]) == pytest.approx(0.83) and float(row["se"]) == pytest.approx(0.0208167, abs=1e-6)
    assert (out / "table-fashion_mnist-mlp1024-3ep.png").stat().st_size > 1000


# -- real runs ---------------------------------------------------------------------------------
def test_one_short_epoch_on_real_fashion_mnist(tmp_path, capsys):
    c = _small("mae*")
    h = ex.run(c, tmp_path)
    assert h["finished"] and h["num_train"] == 320 and h["num_test"] == 200
    assert h["num_noisy"] == 128  # 128 relabelled, each to another class (the paper recipes' noise)
    (row,) = h["epochs"]
    assert 0.0 <= row["test_accuracy"] <= 1.0 and 0.0 <= row["false_label_accuracy"] <= 1.0
    assert row["epsilon"] == 0.5 and row["lr"] == pytest.approx(0.003) and np.isfinite(row["loss"])
    assert "epoch   1/1" in capsys.readouterr().out
    on_disk = json.loads((tmp_path / h["run_id"] / "history.json").read_text())
    assert on_disk["epochs"] == h["epochs"]
    ckpt = tmp_path / h["run_id"] / "checkpoint"
    assert (ckpt / (ckpt / "LATEST").read_text().strip() / "model.weights.h5").is_file()
    # a finished run is skipped, not retrained
    again = ex.run(c, tmp_path)
    assert "skipped" in capsys.readouterr().out and again["epochs"] == h["epochs"]


class _Kill(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt("simulated kill during epoch 2")


def _strip(history):
    return [{k: v for k, v in e.items() if k != "seconds"} for e in history["epochs"]]


def test_resume_after_a_kill_gives_the_uninterrupted_history(tmp_path, capsys):
    c = _small("ce", epochs=2, limit=256)
    full = ex.run(c, tmp_path / "a", verbose=0)
    with pytest.raises(KeyboardInterrupt):
        ex.run(c, tmp_path / "b", callbacks=[_Kill()], verbose=0)
    partial = json.loads((tmp_path / "b" / full["run_id"] / "history.json").read_text())
    assert not partial["finished"] and len(partial["epochs"]) == 1
    resumed = ex.run(c, tmp_path / "b", verbose=1)
    assert "resuming after epoch 1" in capsys.readouterr().out
    assert resumed["finished"]
    # epoch 1 was not trained again: its record (timing included) is the interrupted run's
    assert resumed["epochs"][0] == partial["epochs"][0]
    a, b = _strip(full), _strip(resumed)
    assert [e["epoch"] for e in b] == [1, 2]
    for ea, eb in zip(a, b):
        assert ea.keys() == eb.keys()
        for k in ea:
            if ea[k] is None:
                assert eb[k] is None
            else:
                assert eb[k] == pytest.approx(ea[k], rel=1e-5, abs=1e-6), k
    # a different seed does give a different run (the comparison above can fail)
    other = ex.run(c.replace(seed=1), tmp_path / "a", verbose=0)
    assert _strip(other) != a


def test_data_parallel_on_two_virtual_jax_devices(tmp_path):
    script = (
        "import json, sys\n"
        "from keras_robust import experiments as ex\n"
        "c = ex.paper_config('fashion_mnist', 'mlp1024', 'mae*', noise='symmetric', noise_rate=0.4,"
        " epochs=2, limit=250, test_limit=101)\n"
        "h = ex.run(c, sys.argv[1], distribute=True, verbose=0)\n"
        "print('RESULT', json.dumps(h))\n"
    )
    env = dict(os.environ, KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=2",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    h = json.loads(line[len("RESULT "):])
    assert h["distribution"] == "jax-data-parallel" and h["devices"] == 2 and h["finished"]
    first, last = h["epochs"]
    assert last["loss"] < first["loss"]  # it trains
    assert 0.0 <= last["test_accuracy"] <= 1.0
