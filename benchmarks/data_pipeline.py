"""Epoch time of the recipes' TensorFlow-free input path vs the ``tf.data`` pipeline (issue 13, item 1).

Two tasks, each as the recipes run it (`keras_robust.experiments`: the model, loss
and optimizer of `runs.build` for `paper_config`, real data from the offline sources):

* ``mlp1024``: MLP1024 on Fashion-MNIST, batch 32, no augmentation (the paper's MLP setup);
* ``resnet32``: ResNet-32 on CIFAR-10, batch 128, the paper's augmentation (flip, pad-4 crop).

Two input paths feed the same Keras model under the same backend:

* ``numpy``: what the recipes use on every backend, `experiments.data.EpochBatches`
  (a `keras.utils.PyDataset`; augmentation by `keras_robust.augment` in NumPy);
* ``tf.data``: `keras_robust.datasets.pipeline` (shuffle, augmentation and
  normalisation in ``tf.data``, parallel map, prefetch).

Both train on the same ``--*-steps`` batches' worth of examples per epoch (a
``limit``-subset of the training set, balanced over classes). Per round and
path, one ``fit`` of ``--epochs`` epochs; an epoch's time is clocked by a
callback; the first epoch of each ``fit`` (compilation, pipeline start-up) is
dropped; the path's epoch time is the median over the other epochs of all
rounds (paths alternate order across rounds). The ratio numpy / tf.data of
the wall-clock epoch time is taken per round (the two paths' fits of a round
run one after the other, under about the same load) and the median over rounds
is reported; the goal is <= 1.1. The same ratio of process CPU time (all
threads, tf.data's included) is recorded too: on a shared machine it is the
steadier of the two. ``data_only_s`` is the time to produce one epoch's batches
without training (what the input path itself costs).

    taskset -c 0 python benchmarks/data_pipeline.py                        # jax (default)
    taskset -c 0 python benchmarks/data_pipeline.py --backends jax,tensorflow
    python benchmarks/data_pipeline.py --quick --out /tmp/dp.json          # smoke run (seconds)

Needs TensorFlow for the ``tf.data`` side (the recipes' side needs none), and the offline
data: ``$KERAS_ROBUST_DATA`` (default ``../shared/data``) for CIFAR-10.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).with_name("results") / "data_pipeline.json"
TASKS = {"mlp1024": ("fashion_mnist", "mlp1024", 32), "resnet32": ("cifar10", "resnet32", 128)}

CHILD = r"""
import json, sys, time
import numpy as np
import keras
from keras_robust import datasets
from keras_robust.experiments import data, paper_config, runs

args = json.loads(sys.argv[1])


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times, self.cpu = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.t0, self.c0 = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.t0)
        self.cpu.append(time.process_time() - self.c0)  # every thread of the process (tf.data's included)


def source(path, config, raw, x, noisy):
    augment_kind = datasets.info(config.dataset).augment if config.augment else None
    if path == "numpy":  # what experiments.run feeds to fit
        if augment_kind:
            batches = data.EpochBatches(raw, noisy, config, 0, 1, augment_kind=augment_kind)
        else:
            batches = data.EpochBatches(x, noisy, config, 0, 1)
        return batches, {"steps_per_epoch": batches.per_epoch, "shuffle": False}
    ds = datasets.pipeline(raw, noisy, dataset=config.dataset, training=True, batch_size=config.batch_size,
                           seed=int(config.seed), augment=None if augment_kind else False,
                           flatten=config.arch == "mlp1024")
    return ds, {}


def data_only(path, config, raw, x, noisy):
    # One epoch's batches without training: NumPy indexing/augmentation, or iterating tf.data to NumPy.
    src, _ = source(path, config, raw, x, noisy)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        if path == "numpy":
            for j in range(src.per_epoch):
                src[j]
        else:
            for b in src.as_numpy_iterator():
                pass
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


out = {}
for task in args["tasks"]:
    dataset, arch, batch = args["specs"][task]
    steps = args["steps"][task]
    config = paper_config(dataset, arch, "ce", noise="none", noise_rate=0.0, seed=0, epochs=args["epochs"],
                          limit=steps * batch, test_limit=10, backend=keras.backend.backend())
    raw, y, noisy, mask, raw_test, yt, k = data.load_data(config)
    x = data.normalise(raw, config)
    models = {}
    times = {"numpy": [], "tf.data": []}
    cpu = {"numpy": [], "tf.data": []}
    paired, paired_cpu = [], []
    for r in range(args["rounds"]):
        this, this_cpu = {}, {}
        for path in (("numpy", "tf.data") if r % 2 == 0 else ("tf.data", "numpy")):
            if path not in models:
                models[path] = runs.build(config, k, x.shape[1:])[0]
            src, kw = source(path, config, raw, x, noisy)
            timer = EpochTimer()
            models[path].fit(src, epochs=args["epochs"], verbose=0, callbacks=[timer], **kw)
            times[path] += timer.times[1:]
            cpu[path] += timer.cpu[1:]
            this[path], this_cpu[path] = np.median(timer.times[1:]), np.median(timer.cpu[1:])
        paired.append(float(this["numpy"] / this["tf.data"]))
        paired_cpu.append(float(this_cpu["numpy"] / this_cpu["tf.data"]))
    numpy_s, tf_s = (float(np.median(times[p])) for p in ("numpy", "tf.data"))
    numpy_cpu, tf_cpu = (float(np.median(cpu[p])) for p in ("numpy", "tf.data"))
    out[task] = {
        "dataset": dataset, "arch": arch, "batch_size": batch, "steps_per_epoch": steps,
        "examples_per_epoch": int(len(noisy)), "augment": bool(config.augment),
        "numpy_epoch_s": numpy_s, "tfdata_epoch_s": tf_s, "ratio": float(np.median(paired)),
        "ratio_per_round": paired, "ratio_of_medians": numpy_s / tf_s,
        "numpy_epochs_s": times["numpy"], "tfdata_epochs_s": times["tf.data"],
        "numpy_epoch_cpu_s": numpy_cpu, "tfdata_epoch_cpu_s": tf_cpu, "cpu_ratio": float(np.median(paired_cpu)),
        "cpu_ratio_per_round": paired_cpu,
        "numpy_data_only_s": data_only("numpy", config, raw, x, noisy),
        "tfdata_data_only_s": data_only("tf.data", config, raw, x, noisy),
    }
    print(f"[{keras.backend.backend()}] {task}: numpy {numpy_s:.3f} s, tf.data {tf_s:.3f} s, "
          f"ratio {np.median(paired):.3f} (rounds {', '.join(f'{v:.2f}' for v in paired)})", file=sys.stderr,
          flush=True)
print("RESULT " + json.dumps(out))
"""


def _versions(backend):
    code = ("import json, keras, numpy, tensorflow as tf; b = keras.backend.backend(); "
            "m = __import__({'jax': 'jax', 'torch': 'torch'}.get(b, 'tensorflow')); "
            "print(json.dumps({'keras': keras.__version__, 'numpy': numpy.__version__, "
            "'tensorflow': tf.__version__, b: m.__version__}))")
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else {}


def _load():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", default="jax", help="comma-separated; one subprocess each")
    p.add_argument("--tasks", default="mlp1024,resnet32")
    p.add_argument("--mlp-steps", type=int, default=300, help="batches of 32 per MLP1024 epoch")
    p.add_argument("--resnet-steps", type=int, default=8, help="batches of 128 per ResNet-32 epoch")
    p.add_argument("--epochs", type=int, default=3, help="epochs per fit (the first is dropped)")
    p.add_argument("--rounds", type=int, default=5, help="fits per path (alternating order)")
    p.add_argument("--quick", action="store_true", help="smoke run: 4 + 1 steps, 2 epochs, 1 round")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    if args.quick:
        args.mlp_steps, args.resnet_steps, args.epochs, args.rounds = 4, 1, 2, 1
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown or not tasks:
        p.error(f"--tasks must name some of {sorted(TASKS)}, got {args.tasks!r}")
    if args.epochs < 2 or args.rounds < 1 or args.mlp_steps < 1 or args.resnet_steps < 1:
        p.error("--epochs must be >= 2 (the first is dropped); --rounds and the step counts >= 1")
    spec = {"tasks": tasks, "specs": TASKS, "epochs": args.epochs, "rounds": args.rounds,
            "steps": {"mlp1024": args.mlp_steps, "resnet32": args.resnet_steps}}
    results, versions = {}, {}
    load = {"start": _load()}
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3",
                   PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        if not env.get("KERAS_ROBUST_DATA") and (ROOT.parent / "shared" / "data").is_dir():
            env["KERAS_ROBUST_DATA"] = str(ROOT.parent / "shared" / "data")  # as the Makefile sets it
        proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], env=env, capture_output=True,
                              text=True, cwd=ROOT)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr[-4000:])
            raise SystemExit(f"data_pipeline.py: the {backend} run failed (exit {proc.returncode})")
        results[backend] = json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))[7:])
        versions[backend] = _versions(backend)
    load["end"] = _load()

    print("| backend | task | examples / epoch | numpy path: epoch (s) | tf.data: epoch (s) | ratio numpy / tf.data "
          "| ratio of process CPU time | data only: numpy (s) | data only: tf.data (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for backend, rows in results.items():
        for task, r in rows.items():
            flag = "" if r["ratio"] <= 1.1 else " **!**"
            print(f"| {backend} | {task}{' (augmented)' if r['augment'] else ''} | {r['examples_per_epoch']} | "
                  f"{r['numpy_epoch_s']:.3f} | {r['tfdata_epoch_s']:.3f} | {r['ratio']:.2f}{flag} | "
                  f"{r['cpu_ratio']:.2f} | "
                  f"{r['numpy_data_only_s']:.3f} | {r['tfdata_data_only_s']:.3f} |")
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": platform.platform(), "cpus": os.cpu_count(),
            "cpu_affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "load_average": load, "args": {k: v for k, v in vars(args).items() if k != "out"},
            "versions": versions, "goal": "ratio <= 1.1", "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(meta, indent=1))
    return meta


if __name__ == "__main__":
    main()
