"""Train-step time of every keras_robust loss relative to Keras' cross entropy.

The issue's benchmark: MLP1024 (784 -> 1024 -> 512 -> 512 -> K, batch 32) with
a 10-way head (K=10) and a 1000-way head (K=1000), one model per loss, trained
with ``fit`` on a fixed in-memory batch set. The reference is
``keras.losses.CategoricalCrossentropy(from_logits=True)`` on one-hot labels;
``SparseCategoricalCrossentropy(from_logits=True)`` on integer labels and a
second, independent CE model (the noise floor: its ratio should be 1.00) are
reported as extra rows. keras_robust losses get integer (sparse) labels, the
way they are used in the recipes.

Method (the machine is small, noisy and shared, so only ratios measured in one
process are reported):

* every model is built and compiled once, then warmed up (tracing / XLA
  compilation happens there, never inside a timed block);
* a timed block is one ``fit`` epoch over ``--steps`` batches; the clock starts
  at the ``skip``-th batch (a callback) and stops after ``fit`` returned and
  the weights were read back (which waits for asynchronous JAX dispatch), so
  ``fit``'s set-up is not counted;
* each round runs ``CE, loss_1, CE, loss_2, CE, ...`` (loss order shuffled per
  round); a loss's ratio in a round is its step time over the mean of the two
  CE blocks beside it, which cancels slow drifts of the machine's load;
* the reported ratio is the median over ``--rounds`` rounds (the JSON also
  keeps every per-round ratio and the median step times in ms).

Usage::

    KERAS_BACKEND=jax python benchmarks/loss_speed.py            # this backend
    python benchmarks/loss_speed.py --backends tensorflow,jax,torch
    python benchmarks/loss_speed.py --backends jax --quick       # smoke run

Results are merged per backend into ``benchmarks/results/loss_speed.json``
(a run for one backend keeps the others' entries) and plotted to
``benchmarks/results/loss_speed.png``; a markdown table is printed.
The goal of the issue: every loss <= 1.05x CE, bi-tempered <= 1.3x.
"""

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
DEFAULT_JSON = os.path.join(RESULTS, "loss_speed.json")
DEFAULT_PNG = os.path.join(RESULTS, "loss_speed.png")

BASELINE = "keras CategoricalCE"
ROWS_EXTRA = ("keras CategoricalCE (2nd model)", "keras SparseCategoricalCE")
BITEMPERED_LOW = "bitempered t2<1"
GOAL, GOAL_BITEMPERED = 1.05, 1.3
BATCH = 32
INPUT_DIM = 784


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# worker: one backend, in this process
# --------------------------------------------------------------------------


def _loss_specs(num_classes):
    """``[(row, make_loss, label_kind, description)]`` for one head size."""
    import keras

    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    import keras_robust.losses as krl

    # The paper's appendix Table 1: CIFAR-10 values at K=10, CIFAR-100 ones at K=1000.
    dataset = "cifar10" if num_classes <= 10 else "cifar100"

    def cce():
        return keras.losses.CategoricalCrossentropy(from_logits=True)

    def scce():
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    specs = [
        (BASELINE, cce, "onehot", "keras.losses.CategoricalCrossentropy(from_logits=True), one-hot labels"),
        (ROWS_EXTRA[0], cce, "onehot", "a second CE model: the noise floor of the method"),
        (ROWS_EXTRA[1], scce, "sparse", "keras.losses.SparseCategoricalCrossentropy(from_logits=True)"),
    ]
    for name in krl.names():
        def make(name=name):
            return krl.get(name, num_classes=num_classes, dataset=dataset)

        specs.append((name, make, "sparse", repr(make())))

    def bitempered_low():
        return krl.get("bitempered", num_classes=num_classes, t1=0.5, t2=0.8)

    specs.append((BITEMPERED_LOW, bitempered_low, "sparse", repr(bitempered_low())))
    return specs


def _build(num_classes, loss, seed):
    import keras

    import keras_robust.models

    keras.utils.set_random_seed(seed)
    model = keras_robust.models.mlp1024((INPUT_DIM,), num_classes)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss=loss)
    return model


class _Clock:
    """A callback factory: records the time when batch ``skip`` begins."""

    def __new__(cls, skip):
        import keras

        class Clock(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.t0 = None

            def on_train_batch_begin(self, batch, logs=None):
                if batch == skip:
                    self.t0 = time.perf_counter()
                    self.c0 = time.process_time()

        return Clock()


def _timed_block(model, x, y, skip):
    """``(wall, cpu)`` seconds per step of one ``fit`` epoch, from batch ``skip`` on.

    ``cpu`` is this process's CPU time (all threads): on a loaded machine it
    is much less disturbed by other processes than the wall clock.
    """
    from keras import ops

    steps = x.shape[0] // BATCH
    clock = _Clock(skip)
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[clock])
    ops.convert_to_numpy(model.trainable_variables[-1])  # wait for the last update
    wall, cpu = time.perf_counter() - clock.t0, time.process_time() - clock.c0
    return wall / (steps - skip), cpu / (steps - skip)


def run_backend(heads, rounds, steps, skip, seed):
    """Measure every loss on this process's backend; return a JSON-able dict."""
    import keras
    import numpy as np

    backend = keras.backend.backend()
    rng = np.random.default_rng(seed)
    out = {
        "backend": backend,
        "keras": keras.__version__,
        "heads": {},
        "rounds": rounds,
        "steps_per_block": steps,
        "skipped_steps": skip,
        "batch_size": BATCH,
        "load_average_start": list(os.getloadavg()),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    for k in heads:
        x = rng.standard_normal((steps * BATCH, INPUT_DIM)).astype("float32")
        labels = rng.integers(0, k, size=steps * BATCH)
        y = {"sparse": labels.astype("int32"), "onehot": np.eye(k, dtype="float32")[labels]}
        specs = _loss_specs(k)
        models = {}
        t_build = time.perf_counter()
        for i, (row, make, kind, _) in enumerate(specs):
            _log(f"[{backend}] K={k}: building and warming up {i + 1}/{len(specs)}: {row}")
            model = _build(k, make(), seed)
            # Warm-up: compile the train step and run a few steps.
            model.fit(x[: 4 * BATCH], y[kind][: 4 * BATCH], batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
            models[row] = (model, kind)
        _log(f"[{backend}] K={k}: {len(specs)} models ready in {time.perf_counter() - t_build:.0f} s")

        others = [row for row, *_ in specs if row != BASELINE]
        times = {row: [] for row, *_ in specs}
        cpu_times = {row: [] for row, *_ in specs}
        ratios = {row: [] for row in others}
        cpu_ratios = {row: [] for row in others}
        order_rng = random.Random(seed)
        base_model, base_kind = models[BASELINE]
        for r in range(rounds):
            t_round = time.perf_counter()
            order = list(others)
            order_rng.shuffle(order)
            before = _timed_block(base_model, x, y[base_kind], skip)
            times[BASELINE].append(before[0])
            cpu_times[BASELINE].append(before[1])
            for row in order:
                model, kind = models[row]
                t = _timed_block(model, x, y[kind], skip)
                after = _timed_block(base_model, x, y[base_kind], skip)
                times[row].append(t[0])
                cpu_times[row].append(t[1])
                times[BASELINE].append(after[0])
                cpu_times[BASELINE].append(after[1])
                ratios[row].append(t[0] / (0.5 * (before[0] + after[0])))
                cpu_ratios[row].append(t[1] / (0.5 * (before[1] + after[1])))
                before = after
            worst = max(others, key=lambda row: statistics.median(ratios[row]))
            _log(
                f"[{backend}] K={k}: round {r + 1}/{rounds} in {time.perf_counter() - t_round:.0f} s; "
                f"CE step {1e3 * statistics.median(times[BASELINE]):.2f} ms; "
                f"slowest so far {worst} {statistics.median(ratios[worst]):.3f}x"
            )
        out["heads"][str(k)] = {
            "ce_step_ms": 1e3 * statistics.median(times[BASELINE]),
            "ce_cpu_step_ms": 1e3 * statistics.median(cpu_times[BASELINE]),
            "losses": {
                row: {
                    "loss": desc,
                    "labels": kind,
                    "ratio": 1.0 if row == BASELINE else statistics.median(ratios[row]),
                    "ratio_median_of_medians": statistics.median(times[row]) / statistics.median(times[BASELINE]),
                    "ratio_of_minimums": min(times[row]) / min(times[BASELINE]),
                    "ratios": [] if row == BASELINE else ratios[row],
                    "step_ms": 1e3 * statistics.median(times[row]),
                    "cpu_ratio": 1.0 if row == BASELINE else statistics.median(cpu_ratios[row]),
                    "cpu_ratios": [] if row == BASELINE else cpu_ratios[row],
                    "cpu_step_ms": 1e3 * statistics.median(cpu_times[row]),
                }
                for row, _, kind, desc in specs
            },
        }
        del models
        keras.backend.clear_session()
    out["load_average_end"] = list(os.getloadavg())
    return out


# --------------------------------------------------------------------------
# driver: subprocesses, merge, table, JSON, plot
# --------------------------------------------------------------------------


def _run_subprocess(backend, args):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{backend}.json")
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", path, *_shared_argv(args)]
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
        env.setdefault("KERAS_HOME", os.path.join(tmp, "keras_home"))
        _log(f"=== {backend}: {' '.join(cmd)}")
        proc = subprocess.run(cmd, env=env, cwd=ROOT)
        if proc.returncode != 0:
            raise SystemExit(f"The {backend} run failed with exit code {proc.returncode}.")
        with open(path) as f:
            return json.load(f)


def _shared_argv(args):
    return [
        "--heads", ",".join(map(str, args.heads)),
        "--rounds", str(args.rounds),
        "--steps", str(args.steps),
        "--skip", str(args.skip),
        "--seed", str(args.seed),
    ]


def _goal(row):
    return GOAL_BITEMPERED if row.startswith("bitempered") else GOAL


def markdown_table(results, key="ratio"):
    """Rows: losses; columns: backend x head size; cells: ``key`` (a ratio to CE).

    ``key="ratio"``: wall-clock time; ``"cpu_ratio"``: process CPU time.
    """
    columns = [(b, k) for b in results for k in results[b]["heads"]]
    rows = []
    for b, k in columns:
        for row in results[b]["heads"][k]["losses"]:
            if row not in rows:
                rows.append(row)
    head = "| loss | " + " | ".join(f"{b} K={k}" for b, k in columns) + " |"
    lines = [head, "|" + "---|" * (len(columns) + 1)]
    ms_key = "ce_cpu_step_ms" if key == "cpu_ratio" else "ce_step_ms"
    lines.append(
        "| CE step (ms) | "
        + " | ".join(f"{results[b]['heads'][k].get(ms_key, float('nan')):.2f}" for b, k in columns)
        + " |"
    )
    for row in rows:
        cells = []
        for b, k in columns:
            entry = results[b]["heads"][k]["losses"].get(row)
            if entry is None or key not in entry:
                cells.append("")
                continue
            mark = " **!**" if entry[key] > _goal(row) else ""
            cells.append(f"{entry[key]:.2f}{mark}")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results, path, key="ratio"):
    """Grouped bars of ``key`` per loss, one bar per backend x head size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    columns = [(b, k) for b in results for k in results[b]["heads"]]
    rows = [r for r in results[columns[0][0]]["heads"][columns[0][1]]["losses"] if r != BASELINE]
    width = 0.8 / len(columns)
    fig, ax = plt.subplots(figsize=(max(10, 0.6 * len(rows)), 5))
    positions = np.arange(len(rows))
    for i, (b, k) in enumerate(columns):
        losses = results[b]["heads"][k]["losses"]
        values = [losses.get(r, {}).get(key, np.nan) for r in rows]
        ax.bar(positions + (i - (len(columns) - 1) / 2) * width, values, width, label=f"{b}, K={k}")
    ax.axhline(1.0, color="black", lw=0.8)
    ax.axhline(GOAL, color="tab:red", lw=0.8, ls="--", label=f"goal {GOAL}x")
    ax.axhline(GOAL_BITEMPERED, color="tab:purple", lw=0.8, ls=":", label=f"bi-tempered goal {GOAL_BITEMPERED}x")
    ax.set_xticks(positions)
    ax.set_xticklabels(rows, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(("CPU" if key == "cpu_ratio" else "wall-clock") + " train-step time / CE")
    ax.set_title("keras_robust losses: MLP1024 train step relative to keras CategoricalCrossentropy")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", help="comma-separated; one subprocess each (default: this process's KERAS_BACKEND)")
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (2 rounds of 8 steps)")
    parser.add_argument("--heads", default="10,1000", help="head sizes K (default 10,1000)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=40, help="batches per timed block")
    parser.add_argument("--skip", type=int, default=2, help="untimed batches at the start of each block")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=DEFAULT_JSON, help="JSON file (merged per backend)")
    parser.add_argument("--plot", default=DEFAULT_PNG, help="PNG file ('' to skip)")
    parser.add_argument("--merge", help="comma-separated JSON files of earlier runs: merge them into --output, no timing")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.heads = [int(k) for k in str(args.heads).split(",") if k]
    if args.quick:
        args.rounds, args.steps, args.skip = 2, 8, 2
    if args.steps <= args.skip:
        parser.error("--steps must exceed --skip")

    if args.worker:
        result = run_backend(args.heads, args.rounds, args.steps, args.skip, args.seed)
        with open(args.worker, "w") as f:
            json.dump(result, f)
        return 0

    if args.merge:
        fresh = {}
        for path in args.merge.split(","):
            with open(path) as f:
                fresh.update(json.load(f)["results"])
    elif args.backends:
        backends = [b.strip() for b in args.backends.split(",") if b.strip()]
        fresh = {}
        for backend in backends:
            fresh[backend] = _run_subprocess(backend, args)
            _write(args, fresh, quiet=True)  # keep finished backends if a later one fails
    else:
        result = run_backend(args.heads, args.rounds, args.steps, args.skip, args.seed)
        fresh = {result["backend"]: result}

    merged = _write(args, fresh)
    print("Wall-clock train-step time / CE (median of paired ratios):\n")
    print(markdown_table(merged, "ratio"))
    if any("cpu_ratio" in e for r in merged.values() for h in r["heads"].values() for e in h["losses"].values()):
        print("\nProcess CPU time per train step / CE (median of paired ratios):\n")
        print(markdown_table(merged, "cpu_ratio"))
    if args.plot:
        has_cpu = all("cpu_ratio" in e for r in merged.values() for h in r["heads"].values() for e in h["losses"].values())
        plot(merged, args.plot, "cpu_ratio" if has_cpu else "ratio")
        _log(f"wrote {args.plot}")
    return 0


def _write(args, fresh, quiet=False):
    """Merge ``fresh`` (backend -> result) into ``args.output``; return all results."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    for entry in fresh.values():
        entry.setdefault("date", stamp)
        entry.setdefault("quick", args.quick)
    merged = {}
    if os.path.exists(args.output):
        with open(args.output) as f:
            merged = json.load(f).get("results", {})
    merged.update(fresh)
    document = {
        "benchmark": "train-step time relative to keras CategoricalCrossentropy(from_logits=True)",
        "model": "MLP1024 784-1024-512-512-K, SGD(0.01, momentum 0.9), batch 32, fit() on in-memory arrays",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "goal": {"default": GOAL, "bitempered": GOAL_BITEMPERED},
        "results": merged,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(document, f, indent=1)
    if not quiet:
        _log(f"wrote {args.output}")
    return merged


if __name__ == "__main__":
    sys.exit(main())
