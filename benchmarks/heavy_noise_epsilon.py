"""Epsilon under heavy noise at large K (issue 15 item 5): fixed epsilon(K) against schedules.

On Omniglot (K = 242) at 40 % noise, MAE with the fixed epsilon(K) = 3.93 of
Eq. 4 ends below CE; the paper sees the same on CIFAR-100 and, on WebVision,
"weans" the network off the bias (appendix 2). This benchmark trains the
bounded losses with a logit bias under several epsilon schedules, on the
tasks, students, optimizer and budgets of `large_k.py` (SGD, momentum 0.95,
learning rate x 0.95 per epoch; symmetric noise among the other classes):

* ``fixed``: epsilon(K) every epoch (the paper's MAE*, Sec. 3.2).
* ``wean``: the paper's WebVision weaning, scaled: epsilon(K) times
  (5.2, 4.8, 4.3, 3.7, 3.0, 2.3) / 5.2, each value held for
  ``max(1, round(E / 18))`` of the E epochs, restarting after the sixth; the
  paper's 198 epochs hold 3 such cycles of 66 (`keras_robust.schedules.Cyclic`).
* ``adaptive``: `keras_robust.schedules.AdaptiveEpsilon` (initial epsilon(K),
  target 0.15, reading the `TrueClassProbability` of the unbiased logits).
* ``anneal`` (ours): epsilon(K) (1 - t / (E - 1)) in epoch t = 0 .. E - 1, linear to 0 at the last epoch.
* ``pdecay`` (ours, now `keras_robust.schedules.ProbabilityDecay`):
  epsilon_{t+1} = epsilon(K) max(0, 1 - p_t / 0.5), p_t the mean true-class
  probability (of the given, noisy, labels, unbiased logits) in epoch t, never
  increasing: the bias is withdrawn as the network learns and is gone when it
  gives the labelled class half its probability on average, which 40 % noise
  lets it do only by fitting the clean majority. (``stop = 0.5`` was set before
  the first run, from that argument, and not tuned.)

References: CE and MAE without a bias. Losses with the schedules: MAE
(``mae*``) and genCE q = 0.7 (``gce*``, the loss the paper weaned). Per cell:
clean test accuracy per epoch, final clean training accuracy, the fraction of
wrongly labelled training examples predicted as their wrong label
(memorised), epsilon per epoch.

    python benchmarks/heavy_noise_epsilon.py                 # the grid (resumable)
    python benchmarks/heavy_noise_epsilon.py --schedules pdecay-0.3,pdecay-0.7 --references ''   # stop's sensitivity
    python benchmarks/heavy_noise_epsilon.py --noise 0 --losses 'mae*' --seeds 0,1   # clean labels
    python benchmarks/heavy_noise_epsilon.py --summary --plot docs/results/heavy_noise_epsilon.png
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import large_k  # noqa: E402

OUT = Path(__file__).resolve().with_name("results") / "heavy_noise_epsilon"
SCHEDULES = ("fixed", "wean", "adaptive", "anneal", "pdecay")
REFERENCES = ("ce", "mae")
BIASED = ("mae*", "gce*")
WEAN_RATIOS = tuple(v / 5.2 for v in (5.2, 4.8, 4.3, 3.7, 3.0, 2.3))
PDECAY_STOP = 0.5
LABELS = {"ce": "CE", "mae": "MAE (no bias)", "mae*": "MAE + ε", "gce*": "genCE q=0.7 + ε",
          "fixed": "fixed ε(K)", "wean": "paper's weaning", "adaptive": "AdaptiveEpsilon", "anneal": "linear anneal",
          "pdecay": "p-decay (ours)"}


def variants(losses=BIASED, schedules=SCHEDULES, references=REFERENCES):
    """``(loss, schedule)`` pairs in run order; references have schedule None."""
    return [(r, None) for r in references] + [(loss, s) for loss in losses for s in schedules]


def variant_id(loss, schedule):
    name = loss.replace("*", "star")
    return name if schedule is None else f"{name}-{schedule}"


def cell_id(task, optimizer, rate, loss, schedule, seed):
    return f"{task}-{optimizer}-n{round(100 * rate)}-{variant_id(loss, schedule)}-s{seed}"


def build_schedule(name, epsilon, epochs):
    """The epsilon schedule ``name`` starting at ``epsilon`` for an ``epochs``-epoch run."""
    from keras_robust import schedules

    if name == "fixed":
        return schedules.Constant(epsilon)
    if name == "wean":
        return schedules.Cyclic([round(epsilon * r, 4) for r in WEAN_RATIOS], max(1, round(epochs / 18)))
    if name == "adaptive":
        return schedules.AdaptiveEpsilon(epsilon, target=0.15, observed="probability")
    if name == "anneal":
        return lambda epoch: epsilon * max(0.0, 1.0 - epoch / max(1, epochs - 1))
    if name == "pdecay" or name.startswith("pdecay-"):
        return schedules.ProbabilityDecay(epsilon, stop=pdecay_stop(name))
    raise ValueError(f"Unknown schedule {name!r}: one of {SCHEDULES} or pdecay-<stop>.")


def pdecay_stop(name):
    """``stop`` of ``"pdecay"`` (0.5) or ``"pdecay-<stop>"`` (the sensitivity runs), else None."""
    if name == "pdecay":
        return PDECAY_STOP
    try:
        stop = float(name[len("pdecay-"):]) if name.startswith("pdecay-") else None
    except ValueError:
        return None
    return stop if stop is not None and 0.0 < stop <= 1.0 else None


def schedule_label(name):
    stop = pdecay_stop(name)
    return LABELS[name] if name in LABELS else f"p-decay, stop {stop:g}"


def run_cell(task, data, optimizer, rate, loss_name, schedule_name, seed, lr=None):
    """Train one cell; return its record."""
    import keras
    import numpy as np

    import keras_robust as kr
    from keras_robust.calibration import epsilon_for_classes

    x, y, xt, yt = data
    k = task.num_classes
    start = time.perf_counter()
    noisy, mask = (kr.noise.symmetric_noise(y, rate, k, seed=seed + large_k.NOISE_SEED_OFFSET, exclude_true=True)
                   if rate > 0 else (y.copy(), np.zeros(len(y), bool)))
    keras.utils.set_random_seed(seed)
    model = large_k.build_student(task, x.shape[1])
    epsilon = float(epsilon_for_classes(k))
    callbacks = []
    if schedule_name is None:
        loss = large_k.build_loss(loss_name, k)
    else:
        base = {"mae*": "mae", "gce*": "gce"}[loss_name]
        loss = kr.losses.get(base, num_classes=k, logit_bias=epsilon, **({"q": 0.7} if base == "gce" else {}))
        callbacks.append(kr.EpsilonScheduler(build_schedule(schedule_name, epsilon, task.epochs)))
    steps = math.ceil(len(x) / task.batch_size)
    lr = lr if lr is not None else (task.sgd_lr if optimizer == "sgd" else large_k.LEARNING_RATES[optimizer])
    model.compile(loss=loss, optimizer=large_k.build_optimizer(optimizer, steps, lr),
                  metrics=["accuracy", kr.schedules.TrueClassProbability()])
    hist = model.fit(x, noisy, batch_size=task.batch_size, epochs=task.epochs, verbose=0, shuffle=True,
                     validation_data=(xt, yt), callbacks=callbacks)
    n_eval = min(len(x), large_k.TRAIN_EVAL)
    pred = np.argmax(model.predict(x[:n_eval], batch_size=1024, verbose=0), axis=1)
    wrong = mask[:n_eval]
    history = {key: [float(v) for v in vals] for key, vals in hist.history.items()}
    return {
        "cell": cell_id(task.name, optimizer, rate, loss_name, schedule_name, seed),
        "task": task.name, "num_classes": k, "loss": loss_name, "schedule": schedule_name,
        "epsilon_k": epsilon, "optimizer": optimizer, "learning_rate": lr, "batch_size": task.batch_size,
        "epochs": task.epochs, "noise_rate": rate, "noise": "symmetric, other classes (exclude_true)",
        "wrong_label_fraction": float(mask.mean()), "seed": seed, "n_train": int(len(x)), "n_test": int(len(xt)),
        "history": history,
        "test_accuracy": history["val_accuracy"][-1],
        "best_test_accuracy": max(history["val_accuracy"]),
        "clean_train_accuracy": float(np.mean(pred == y[:n_eval])),
        "memorised": float(np.mean(pred[wrong] == noisy[:n_eval][wrong])) if wrong.any() else 0.0,
        "seconds": time.perf_counter() - start,
        "backend": keras.backend.backend(), "keras": keras.__version__,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


# -- tables and plot -----------------------------------------------------------------------------------


load_cells = large_k.load_cells


def aggregate(cells):
    """``{(task, optimizer, rate, loss, schedule): {metric: (mean, se), "n": n}}`` over seeds."""
    groups = {}
    for c in cells:
        groups.setdefault((c["task"], c["optimizer"], c["noise_rate"], c["loss"], c["schedule"]), []).append(c)
    agg = {}
    for key, cs in groups.items():
        agg[key] = {"n": len(cs), "k": cs[0]["num_classes"], "epsilon_k": cs[0]["epsilon_k"],
                    **{m: large_k._mean_se([c[m] for c in cs])
                       for m in ("test_accuracy", "best_test_accuracy", "clean_train_accuracy", "memorised")},
                    "final_epsilon": large_k._mean_se([c["history"].get("epsilon", [0.0])[-1] for c in cs])}
    return agg


def _pct(pair):
    return large_k._pct(*pair)


def summary(out):
    cells = load_cells(out)
    if not cells:
        return f"no finished cells in {out}"
    agg = aggregate(cells)
    lines = [f"{len(cells)} finished cells in {out}"]
    order = variants()
    for task, opt, rate in sorted({k[:3] for k in agg}):
        rows = {k[3:]: v for k, v in agg.items() if k[:3] == (task, opt, rate)}
        any_v = next(iter(rows.values()))
        lines += ["", f"{task} (K = {any_v['k']}, ε(K) = {any_v['epsilon_k']:.2f}), {opt.upper()}, "
                  f"{round(100 * rate)} % noise: clean accuracy % (mean ± s.e. over seeds)", "",
                  "| loss | ε schedule | test (last epoch) | test (best epoch) | clean train | memorised | ε at end | seeds |",
                  "|---|---|---|---|---|---|---|---|"]
        for loss, schedule in sorted(rows, key=lambda v: order.index(v) if v in order else 99):
            v = rows[(loss, schedule)]
            eps = "–" if schedule is None else f"{v['final_epsilon'][0]:.2f}"
            name = "–" if schedule is None else schedule_label(schedule)
            lines.append(f"| {LABELS[loss]} | {name} | {_pct(v['test_accuracy'])} | "
                         f"{_pct(v['best_test_accuracy'])} | {_pct(v['clean_train_accuracy'])} | "
                         f"{_pct(v['memorised'])} | {eps} | {v['n']} |")
    return "\n".join(lines)


def plot(out, path):
    """Clean test accuracy and epsilon per epoch (mean over seeds); one column per task, one row per loss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cells = load_cells(out)
    tasks = sorted({(c["task"], c["optimizer"], c["noise_rate"]) for c in cells})
    if not tasks:
        raise ValueError(f"no finished cells in {out}")
    fig, axes = plt.subplots(3, len(tasks), figsize=(5.5 * len(tasks), 10), squeeze=False)
    colors = {s: plt.get_cmap("tab10")(i) for i, s in enumerate((None,) + SCHEDULES)}
    for col, (task, opt, rate) in enumerate(tasks):
        mine = [c for c in cells if (c["task"], c["optimizer"], c["noise_rate"]) == (task, opt, rate)]
        schedules = [s for s in dict.fromkeys(c["schedule"] for c in mine) if s is not None]
        for row, loss in enumerate(BIASED):
            ax, eax = axes[row][col], axes[2][col]
            for ref, ls in (("ce", ":"), ("mae", "--")):
                curves = [c["history"]["val_accuracy"] for c in mine if c["loss"] == ref]
                if curves:
                    ax.plot(np.arange(1, len(curves[0]) + 1), 100 * np.mean(curves, axis=0), ls=ls, color="k",
                            lw=1, label=LABELS[ref])
            for schedule in schedules:
                runs = [c for c in mine if c["loss"] == loss and c["schedule"] == schedule]
                if not runs:
                    continue
                epochs = np.arange(1, len(runs[0]["history"]["val_accuracy"]) + 1)
                extra = [x for x in schedules if x not in colors]  # pdecay-<stop> variants
                color = colors[schedule] if schedule in colors else plt.get_cmap("Dark2")(extra.index(schedule) % 8)
                style = {"color": color, "label": schedule_label(schedule), "ls": "-" if schedule in colors else "-."}
                ax.plot(epochs, 100 * np.mean([c["history"]["val_accuracy"] for c in runs], axis=0), **style)
                if row == 0:
                    eax.plot(epochs, np.mean([c["history"]["epsilon"] for c in runs], axis=0), **style)
            ax.set_title(f"{task}, {opt.upper()}, {round(100 * rate)} % noise: {LABELS[loss]}", fontsize=9)
            ax.set_ylabel("clean test accuracy %")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        axes[2][col].set_title(f"{task}: ε per epoch ({LABELS['mae*']}, mean over seeds)", fontsize=9)
        axes[2][col].set_xlabel("epoch")
        axes[2][col].set_ylabel("ε")
        axes[2][col].grid(alpha=0.3)
        axes[2][col].legend(fontsize=7)
    fig.tight_layout()
    return large_k.save_figure(fig, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default="omniglot,teacher1000")
    p.add_argument("--optimizers", default="sgd")
    p.add_argument("--noise", type=float, default=0.4)
    p.add_argument("--losses", default=",".join(BIASED), help=f"losses with a logit bias: {','.join(BIASED)}")
    p.add_argument("--schedules", default=",".join(SCHEDULES))
    p.add_argument("--references", default=",".join(REFERENCES), help="losses without a bias ('' for none)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--n-train", type=int, default=None, help="override every task's training examples")
    p.add_argument("--epochs", type=int, default=None, help="override every task's epochs")
    p.add_argument("--list", action="store_true", help="print the cells and exit")
    p.add_argument("--summary", action="store_true", help="print the tables of the finished cells and exit")
    p.add_argument("--plot", default=None, help="write the curves of the finished cells here and exit")
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.summary or args.plot:
        if args.summary:
            print(summary(out))
        if args.plot:
            print(f"plot: {plot(out, args.plot)}")
        return 0
    parse = large_k._parse_list
    for name, given, allowed in (("loss", parse(args.losses), BIASED), ("schedule", parse(args.schedules), SCHEDULES),
                                 ("reference", parse(args.references), REFERENCES)):
        for v in given:
            if v not in allowed and not (name == "schedule" and pdecay_stop(v) is not None):
                p.error(f"unknown {name} {v!r}: one of {','.join(allowed)}" +
                        (" or pdecay-<stop in (0, 1]>" if name == "schedule" else ""))
    if not 0.0 <= args.noise < 1.0:
        p.error(f"--noise must lie in [0, 1), got {args.noise}")
    tasks = [large_k.get_task(t, args.n_train, args.epochs) for t in parse(args.tasks)]
    todo = variants(parse(args.losses), parse(args.schedules), parse(args.references))
    cells = [(t, o, s, v) for t in tasks for s in parse(args.seeds, int) for o in parse(args.optimizers) for v in todo]
    if args.list:
        for t, o, s, (loss, sched) in cells:
            print(cell_id(t.name, o, args.noise, loss, sched, s))
        return 0
    os.environ.setdefault("KERAS_BACKEND", "jax")
    data, t0, done = {}, time.perf_counter(), 0
    for j, (task, opt, seed, (loss, schedule)) in enumerate(cells, 1):
        cid = cell_id(task.name, opt, args.noise, loss, schedule, seed)
        path = out / "cells" / f"{cid}.json"
        if path.is_file():
            print(f"[{j}/{len(cells)}] {cid}: finished earlier, skipped", flush=True)
            continue
        if task.name not in data:
            data.clear()
            data[task.name] = large_k.load_task(task, out)
        rec = run_cell(task, data[task.name], opt, args.noise, loss, schedule, seed)
        large_k._write(path, rec)
        done += 1
        left = (time.perf_counter() - t0) / done * (len(cells) - j) / 60
        print(f"[{j}/{len(cells)}] {cid}: test {100 * rec['test_accuracy']:.2f} % (best "
              f"{100 * rec['best_test_accuracy']:.2f}), clean train {100 * rec['clean_train_accuracy']:.2f} %, "
              f"memorised {100 * rec['memorised']:.1f} %, ε at end {rec['history'].get('epsilon', ['–'])[-1]}; "
              f"{rec['seconds']:.0f} s; ~{left:.0f} min left", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
