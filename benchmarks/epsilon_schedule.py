"""Cost of changing epsilon every epoch (issue 12): `EpsilonScheduler` vs a constant epsilon.

MLP 784-1024-512-512-10 with MAE and a logit bias, one process per backend;
per round, one `fit` of E epochs with a constant epsilon (no callback) and one
with an `EpsilonScheduler` that sets a new epsilon every epoch; the epoch time
is the median over epochs 2..E (epoch 1 includes compilation), and the ratio
scheduled / constant is taken per round, then the median over rounds. The
inputs are random normal (speed does not depend on the data). Goal: <= 1.3x.

    python benchmarks/epsilon_schedule.py --backends jax,tensorflow,torch
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).with_name("results") / "epsilon_schedule.json"

CHILD = r"""
import json, sys, time
import numpy as np, keras
import keras_robust as kr
n, epochs, rounds, batch = (int(a) for a in sys.argv[1:5])
rng = np.random.default_rng(0)
x = rng.standard_normal((n, 784)).astype("float32"); y = rng.integers(0, 10, n)

class Timer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None): self.t = time.perf_counter()
    def on_epoch_end(self, epoch, logs=None): self.times.append(time.perf_counter() - self.t)

def epoch_time(scheduled):
    model = kr.models.get("mlp1024", 10, input_shape=(784,))
    loss = kr.losses.MAE(logit_bias=0.5)
    model.compile(loss=loss, optimizer=keras.optimizers.SGD(0.001, momentum=0.95))
    timer = Timer(); timer.times = []
    cbs = [kr.EpsilonScheduler(lambda e: 0.5 + 0.25 * e)] if scheduled else []
    model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, shuffle=False, callbacks=cbs + [timer])
    return float(np.median(timer.times[1:]))

rows = []
for r in range(rounds):
    c = epoch_time(False); s = epoch_time(True)
    rows.append({"constant_s": c, "scheduled_s": s, "ratio": s / c})
print("RESULT " + json.dumps(rows))
"""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", default="jax,tensorflow,torch")
    p.add_argument("--samples", type=int, default=8192)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    results = {}
    for backend in args.backends.split(","):
        env = dict(os.environ, KERAS_BACKEND=backend)
        cmd = [sys.executable, "-c", CHILD, str(args.samples), str(args.epochs), str(args.rounds), str(args.batch_size)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
        rows = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
        ratios = sorted(r["ratio"] for r in rows)
        results[backend] = {"rounds": rows, "median_ratio": ratios[len(ratios) // 2]}
    print("| backend | constant epsilon: epoch (s) | epsilon changed every epoch: epoch (s) | ratio (median of rounds) |")
    print("|---|---|---|---|")
    for backend, r in results.items():
        c = sorted(x["constant_s"] for x in r["rounds"])[len(r["rounds"]) // 2]
        s = sorted(x["scheduled_s"] for x in r["rounds"])[len(r["rounds"]) // 2]
        print(f"| {backend} | {c:.3f} | {s:.3f} | {r['median_ratio']:.2f} |")
    meta = {"samples": args.samples, "epochs": args.epochs, "batch_size": args.batch_size,
            "date": time.strftime("%Y-%m-%d"), "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(meta, indent=1))
    return results


if __name__ == "__main__":
    main()
