"""The recipes' command lines (bad arguments end in one line naming the argument, exit code 2) and the
small recipes' logic."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("argv, message", [
    (["recipes.grid", "--losses", "ce,foo"], "argument --losses: Unknown loss 'foo'"),
    (["recipes.grid", "--shard", "3/2"], "argument --shard: `shard` must be 'i/n'"),
    (["recipes.grid", "--rates", "0,1.5"], "argument --rates: noise rates must lie in [0, 1], got 1.5"),
    (["recipes.mlp1024", "--loss", "bar"], "argument --loss: Unknown loss 'bar'"),
    (["recipes.grid", "--dataset", "cifar10", "--noise", "human", "--labels", "worst"],
     "argument --labels: unknown CIFAR-10N label set 'worst'"),
    (["recipes.dead_classes", "--runs", "nothing-*"], "no run folder in"),
    (["recipes.dead_classes", "--runs", "x", "--epochs", "0"], "--epochs must be a positive integer"),
])
def test_bad_recipe_arguments_give_one_line_and_exit_2(argv, message, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", *argv, "--results", str(tmp_path)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in proc.stderr


@pytest.mark.parametrize("argv, expected", [
    ([], dict(arch="resnet32", noise="none", labels=None, epochs=200, l2=1e-4)),
    (["--setup", "cifar-n"], dict(arch="resnet34", noise="human", labels="worse", epochs=100, l2=5e-4)),
    (["--setup", "cifar-n", "--labels", "aggre", "--arch", "resnet32"],
     dict(arch="resnet32", noise="human", labels="aggre", epochs=100, l2=5e-4)),
    (["--setup", "cifar-n", "--noise", "none"], dict(arch="resnet34", noise="none", labels=None, epochs=100)),
])
def test_resnet_recipe_setups(argv, expected):
    """``--setup cifar-n`` selects the CIFAR-N preset (its ResNet-34 and human labels by default)."""
    import recipes

    args = recipes.common_parser("resnet", dataset="cifar10", arch="resnet32").parse_args(argv)
    (config,) = recipes.configs(args, [args.loss], [args.rate], [args.seed])
    assert {k: getattr(config, k) for k in expected} == expected


def test_dead_classes_retrains_an_old_run_to_its_recorded_accuracy(tmp_path):
    """A history without per-class accuracy is retrained (deterministically) and measured per class."""
    import json

    import numpy as np

    from keras_robust import experiments as ex
    from recipes import dead_classes

    c = ex.paper_config("fashion_mnist", "mlp1024", "mae", noise="symmetric", noise_rate=0.4, epochs=2,
                        limit=320, test_limit=200)
    h = ex.run(c, tmp_path, verbose=0)
    path = ex.run_dir(c, tmp_path) / "history.json"
    old = {k: v for k, v in h.items() if k != "test_class_accuracy"}  # as recorded before the field existed
    path.write_text(json.dumps(old))
    (row,) = dead_classes.rows(tmp_path, "fashion_mnist-*-mae-*", epochs=1)
    assert row["epoch"] == 1 and row["accuracy"] == pytest.approx(h["epochs"][0]["test_accuracy"], abs=1e-6)
    counts = np.bincount(ex.data.load_data(c)[5], minlength=10)
    assert np.nansum(np.array(row["test"]) * counts) / counts.sum() == pytest.approx(row["accuracy"])
    assert row["final"] == h["epochs"][-1]["test_accuracy"] and len(row["train"]) == 10
    path.write_text(json.dumps(h))  # a recorded run is read, not retrained
    (recorded,) = dead_classes.rows(tmp_path, "fashion_mnist-*", epochs=1)
    assert recorded["test"] == h["test_class_accuracy"] and recorded["train"] is None
    text = dead_classes.table([row, recorded])
    assert text.count("| fashion_mnist-") == 2 and "not recorded" in text
    assert f"| {sum(v == 0 for v in row['test'])} |" in text.splitlines()[2]


def test_dead_classes_names_a_missing_results_folder(capsys):
    from recipes import dead_classes

    with pytest.raises(SystemExit) as e:
        dead_classes.main(["--runs", "x", "--results", "/nonexistent/folder"])
    assert e.value.code == 2 and "--results: no folder /nonexistent/folder" in capsys.readouterr().err
