"""Several JAX processes through Keras' own distribution (README, "Several hosts"), on the CPU.

Two processes with two forced host devices each (``XLA_FLAGS=--xla_force_host_platform_device_count=2``)
join through JAX's coordinator on 127.0.0.1, set up by ``keras.distribution.initialize`` from
Keras' ``KERAS_DISTRIBUTION_*`` variables, exactly as on several GPU hosts. Each runs the MLP1024
recipe for a few steps; the recipe's data-parallel path (`keras.distribution.DataParallel` over
all four devices) must give the numbers of one process with four devices, each process must
serve its own half of every batch, and both must evaluate the whole test set.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--dataset", "fashion_mnist", "--loss", "mae*", "--rate", "0.4", "--epochs", "2", "--limit", "256",
        "--test-limit", "100", "--quiet"]

# Runs the recipe and records the rows each process's batches served (EpochBatches, patched to count).
_DRIVER = r"""
import json, sys
from keras_robust.experiments import data
rows = []
get = data.EpochBatches.__getitem__
def counting(self, j):
    x, y = get(self, j)
    rows.append([int(j), int(len(y)), [int(v) for v in y[:4]]])
    return x, y
data.EpochBatches.__getitem__ = counting
from recipes import mlp1024
h = mlp1024.main(sys.argv[2:] + ["--results", sys.argv[1]])
print("RESULT " + json.dumps({"rows": rows, "history": h}))
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(tmp_path, name, devices, env_extra):
    env = dict(os.environ, PYTHONPATH=str(ROOT), KERAS_BACKEND="jax", PYTHONUNBUFFERED="1",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", **env_extra)
    for key in ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
                "KERAS_DISTRIBUTION_PROCESS_ID"):
        if key not in env_extra:
            env.pop(key, None)
    return subprocess.Popen([sys.executable, "-c", _DRIVER, str(tmp_path / name), *ARGS], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(proc, timeout=600):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError("timed out: " + err[-3000:]) from None
    assert proc.returncode == 0, err[-4000:]
    return json.loads(out.split("RESULT ", 1)[1])


@pytest.mark.slow
def test_two_processes_train_the_recipe_like_one_process_with_all_devices(tmp_path):
    port = _free_port()
    workers = [_start(tmp_path, f"p{i}", 2, {"KERAS_DISTRIBUTION_JOB_ADDRESSES": f"127.0.0.1:{port}",
                                               "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
                                               "KERAS_DISTRIBUTION_PROCESS_ID": str(i)}) for i in (0, 1)]
    results = [_result(w) for w in workers]
    single = _result(_start(tmp_path, "single", 4, {}))

    one = single["history"]
    assert one["distribution"] == "jax-data-parallel" and one["devices"] == 4
    for rank, r in enumerate(results):
        h = r["history"]
        assert h["distribution"] == "jax-data-parallel" and h["devices"] == 4, rank
        assert h["finished"] and len(h["epochs"]) == 2 and h["num_test"] == 100, rank
        for mine, ref in zip(h["epochs"], one["epochs"]):
            for key in ("loss", "accuracy", "test_loss", "test_accuracy", "false_label_accuracy"):
                assert mine[key] == pytest.approx(ref[key], rel=1e-4, abs=1e-5), (rank, key)
    # Each process served its own half of every batch (256 examples, batch 32: 8 steps per epoch).
    served = [sorted({(j, n) for j, n, _ in r["rows"]}) for r in results]
    assert served[0] == served[1] and {n for _, n in served[0]} == {16}, served
    assert {n for _, n, _ in single["rows"]} == {32}
    firsts = [{j: y for j, _, y in r["rows"]} for r in results]
    whole = {j: y for j, _, y in single["rows"]}
    assert any(firsts[0][j] != firsts[1][j] for j in firsts[0])  # different halves
    assert all(firsts[0][j] == whole[j][:4] for j in firsts[0])  # process 0 holds the front of the batch
