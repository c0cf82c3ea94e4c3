"""benchmarks/data_pipeline.py (the recipes' NumPy input path vs tf.data, issue 13) at smoke size.

The script runs in a subprocess per backend (Keras fixes its backend at import). Each pass of the
suite runs it on its own backend: both tasks on jax and tensorflow, MLP1024 only on torch (ResNet-32
trains at a few images/s on this CPU with torch).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "data_pipeline.py"
TASKS = {"jax": "mlp1024,resnet32", "tensorflow": "mlp1024,resnet32", "torch": "mlp1024"}


def _run(args, timeout=900):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_bad_arguments_fail_before_any_work():
    proc = _run(["--tasks", "mlp1024,vgg"], timeout=60)
    assert proc.returncode == 2 and "--tasks must name some of" in proc.stderr
    proc = _run(["--epochs", "1"], timeout=60)
    assert proc.returncode == 2 and "--epochs must be >= 2" in proc.stderr


def test_quick_run_writes_the_table_and_json(tmp_path):
    backend = keras.backend.backend()
    tasks = TASKS[backend]
    if "resnet32" in tasks and not (Path(os.environ["KERAS_ROBUST_DATA"]) / "cifar10-jpeg.tar.gz").is_file():
        tasks = "mlp1024"
    out = tmp_path / "dp.json"
    proc = _run(["--quick", "--backends", backend, "--tasks", tasks, "--out", str(out)])
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    result = json.loads(out.read_text())
    assert result["goal"] == "ratio <= 1.1" and result["args"]["quick"] is True
    rows = result["results"][backend]
    assert sorted(rows) == sorted(tasks.split(","))
    for task, r in rows.items():
        steps, batch = (4, 32) if task == "mlp1024" else (1, 128)
        assert r["steps_per_epoch"] == steps and r["examples_per_epoch"] == steps * batch, task
        assert r["augment"] is (task == "resnet32"), task
        assert len(r["numpy_epochs_s"]) == len(r["tfdata_epochs_s"]) == 1, task  # 2 epochs, the first dropped
        assert r["numpy_epoch_s"] > 0 and r["tfdata_epoch_s"] > 0 and r["cpu_ratio"] > 0, task
        assert r["ratio"] == pytest.approx(r["ratio_per_round"][0]) and r["ratio"] > 0, task
        assert r["ratio_of_medians"] == pytest.approx(r["numpy_epoch_s"] / r["tfdata_epoch_s"]), task
        assert r["numpy_data_only_s"] >= 0 and r["tfdata_data_only_s"] > 0, task
        assert f"| {backend} | {task}" in proc.stdout, task
    assert result["versions"][backend]["keras"] == keras.__version__
