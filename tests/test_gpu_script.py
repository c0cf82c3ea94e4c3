"""benchmarks/gpu.py (the GPU run of issue 13) at tiny size on the CPU: it must work the first time on the device.

The script runs in a subprocess (it sets environment variables at import and
Keras fixes its backend then). Each backend's pass of the suite covers another
combination, so that the three passes together run every path the device uses:

* jax: Keras on JAX, the plain-JAX reference, mixed bfloat16, MAE*;
* torch: Keras on torch, the PyTorch reference, MAE* (smallest data: torch
  trains ResNet-32 at a few images/s on this CPU);
* tensorflow: the device has no TensorFlow, so Keras on JAX with the PyTorch
  reference in the same process (the device's default pairing), CE.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import keras

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu.py"
TINY = ["--limit", "256", "--test-limit", "100", "--budget-s", "20", "--epochs-max", "1",
        "--batch-size", "32", "--speed-epochs", "2", "--speed-steps", "2"]
# backend the script runs on, its arguments after TINY (later ones win), references, losses.
# Compilation dominates at this size; each pass runs one loss or the smallest data, to stay near a minute.
CASES = {
    "jax": ("jax", ["--reference", "jax", "--bf16", "--losses", "mae*"], ("jax",), ("mae*",)),
    "torch": ("torch", ["--reference", "torch", "--losses", "mae*", "--limit", "64", "--test-limit", "20",
                        "--batch-size", "16", "--speed-steps", "1"], ("torch",), ("mae*",)),
    "tensorflow": ("jax", ["--reference", "torch", "--losses", "ce", "--batch-size", "16", "--speed-steps", "1"],
                   ("torch",), ("ce",)),
}


def _data_dir():
    return Path(os.environ.get("KERAS_ROBUST_DATA") or ROOT.parent / "shared" / "data")


def _run(args, backend, timeout=600):
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_bad_arguments_fail_before_any_work():
    proc = _run(["--speed-epochs", "1"], "jax", timeout=60)
    assert proc.returncode == 2 and "--speed-epochs must be >= 2" in proc.stderr
    proc = _run(["--phases", "speed,nope"], "jax", timeout=60)
    assert proc.returncode == 2 and "unknown phases" in proc.stderr


def test_gpu_script_tiny_run(tmp_path):
    backend, extra, references, losses = CASES[keras.backend.backend()]
    out = tmp_path / "gpu"
    t0 = time.perf_counter()
    proc = _run([*TINY, *extra, "--out", str(out)], backend)
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    result = json.loads(out.with_suffix(".json").read_text())
    md = out.with_suffix(".md").read_text()

    assert result["backend"] == backend and result["complete"] is True and result["errors"] == []
    assert result["bf16"] is ("--bf16" in extra)
    assert result["dtype_policy"] == ("mixed_bfloat16" if "--bf16" in extra else "float32")
    assert result["device"] and result["versions"]["keras"] == keras.__version__
    args = result["args"]
    assert result["data"] == {**result["data"], "num_train": args["limit"], "num_test": args["test_limit"]}

    k = result["speed"]["keras"]
    assert k["parameters"] == 464_154  # ResNet-32, option A, 10 classes
    assert k["timed_epochs"] == 1 and k["images_per_second"] > 0 and k["seconds_per_epoch"] > 0
    assert k["first_epoch_seconds"] > 0 and k["images_per_epoch"] == args["batch_size"] * args["speed_steps"]
    assert result["speed"]["augment_only"]["images_per_second"] > 0
    assert sorted(result["speed"]["references"]) == sorted(references)
    for name in references:
        r = result["speed"]["references"][name]
        assert r["parameters"] == 464_154, name  # the same network as the Keras model
        assert r["ratio_keras_over_reference"] > 0 and r["images_per_second"] > 0, name
        assert r["final_loss"] == r["final_loss"], name  # not NaN
        assert f"plain {name}" in md

    runs = result["accuracy"]["runs"]
    assert sorted(runs) == sorted(losses)
    for loss, r in runs.items():
        assert r["epochs"] == 1 and 0.0 <= r["final_test_accuracy"] <= 1.0, loss
        assert r["num_train"] == args["limit"] and r["num_test"] == args["test_limit"], loss
        assert r["num_noisy"] == round(0.4 * args["limit"]), loss
        assert r["label"] == {"ce": "CE", "mae*": "MAE* (ε=0.5)"}[loss]
        assert f"| {r['label']} | 1 |" in md
    assert "ResNet-32 on CIFAR-10" in md
    print(f"\ngpu.py tiny run on {backend} ({' '.join(extra)}): {seconds:.1f} s; Keras "
          f"{k['images_per_second']} images/s; ratios "
          + ", ".join(f"{n} {result['speed']['references'][n]['ratio_keras_over_reference']}" for n in references))
