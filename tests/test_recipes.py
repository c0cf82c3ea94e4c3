"""The recipes' command lines: bad arguments end in one line naming the argument, exit code 2."""

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
