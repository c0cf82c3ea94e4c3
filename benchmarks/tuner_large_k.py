"""The tuner where it matters (issue 15, item 4): seeded vs plain keras-tuner search at K = 1,000.

    KERAS_BACKEND=jax taskset -c 0 python benchmarks/tuner_large_k.py              # the comparison (resumable)
    python benchmarks/tuner_large_k.py --summary                                   # table + JSON + plot, no training
    KERAS_BACKEND=jax python benchmarks/tuner_large_k.py --time-one                # time one trial

Task: ``teacher1000`` of `benchmarks/large_k.py` (inputs x ~ N(0, I_32), labels
from a fixed random teacher network, K = 1,000; its student MLP
32-256-256-64-K), here with ``--n-train`` fresh training inputs (default
50,000) whose labels carry ``--noise`` (default 40 %) symmetric noise with
``exclude_true`` (exactly that fraction is wrong), and ``--val`` (default
5,000) held-out inputs with their *clean* labels as validation data. The
objective is ``val_accuracy`` (keras-tuner's default for a "max" objective:
its best epoch). Each trial trains ``--epochs`` (default 2) epochs of SGD
(momentum 0.95, the learning rate times 0.95 per epoch: `large_k.build_optimizer`)
at batch ``--batch-size`` (default 128), initialised and shuffled with the
search seed.

Search space (the same for every strategy): the learning rate (log,
``--lr-range``, default [1e-3, 1], default value 0.1 -- the K-sweep's SGD
rate) and `keras_robust.tuner.LossSpace(1000, ["mae*", "gce", "nce+agce"])`
(MAE*'s epsilon in eps(K) +- 3, genCE's q in [0.02, 1] (log), NCE-AGCE's
alpha in [0.1, 1000], beta in [0.01, 10], a in [0.01, 10], q in [0.01, 5]).

Strategies, ``--trials`` (default 10) trials per search, one keras-tuner
project per (strategy, seed) under ``--dir`` (``overwrite=False``: a killed
run resumes; finished searches are not rerun):

* ``calibrated_random`` -- `CalibratedOracle(strategy="random")`: trials 1-3
  at the theory's values for K = 1,000 (MAE* eps(1000), genCE q matched,
  NCE-AGCE transferred; learning rate at its default), then half of the
  trials near the best seed, the rest keras-tuner's random search.
* ``random`` -- keras-tuner's `RandomSearchOracle`.
* ``calibrated_bayesian`` -- `CalibratedOracle(strategy="bayesian")`, with
  ``num_initial_points=3`` (the seeds are the initial points).
* ``bayesian`` -- keras-tuner's `BayesianOptimizationOracle`,
  ``num_initial_points=3`` (its default, 3 x the number of hyperparameters,
  would exceed the budget and make it a random search).

Oracle seed = search seed + 1 (keras-tuner reads 0 as "no seed").

Trial cache: training is deterministic given the hyperparameter values and
the search seed, so a trial whose values were already trained in another
strategy's search with the same search seed (the calibrated searches' seed
trials; keras-tuner's random and Bayesian oracles draw the same initial
points) reuses that result instead of training again (marked ``cached`` in
the JSON). ``--no-cache`` trains every trial.
"""

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

RESULTS = Path(__file__).resolve().with_name("results")
STRATEGIES = ("calibrated_random", "random", "calibrated_bayesian", "bayesian")
LABELS = {"calibrated_random": "seeded random (CalibratedOracle)", "random": "keras-tuner RandomSearch",
          "calibrated_bayesian": "seeded Bayesian (CalibratedOracle)", "bayesian": "keras-tuner BayesianOptimization"}
LOSSES = ("mae*", "gce", "nce+agce")
MOMENTUM = 0.95
REPORT_AT = (1, 3, 6, 10)
TARGET_FRACTIONS = (0.9, 0.5)  # targets: this fraction of the best accuracy any search found


def _csv(text, kind=str):
    return [kind(v) for v in text.split(",") if v.strip()]


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--k", type=int, default=1000, help="classes of the teacher task (teacher<K>)")
    p.add_argument("--n-train", type=int, default=50_000)
    p.add_argument("--val", type=int, default=5_000, help="clean held-out validation inputs")
    p.add_argument("--noise", type=float, default=0.4, help="symmetric noise rate (exclude_true)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr-range", type=lambda s: _csv(s, float), default=[1e-3, 1.0])
    p.add_argument("--lr-default", type=float, default=0.1)
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--seeds", type=lambda s: _csv(s, int), default=[0, 1, 2])
    p.add_argument("--strategies", type=_csv, default=list(STRATEGIES))
    p.add_argument("--samples", type=int, default=4096, help="Monte-Carlo samples of the seed calibration")
    p.add_argument("--dir", default=str(RESULTS / "tuner_large_k"), help="keras-tuner projects and the trial cache")
    p.add_argument("--json", default=str(RESULTS / "tuner_large_k.json"))
    p.add_argument("--plot", default=str(RESULTS / "tuner_large_k.png"), help="'' to skip")
    p.add_argument("--no-cache", action="store_true", help="train every trial (no reuse across strategies)")
    p.add_argument("--summary", action="store_true", help="only tabulate the projects on disk")
    p.add_argument("--markdown", default=None,
                   help="with --summary: replace the K = 1,000 section (between its markers) of this markdown file")
    p.add_argument("--time-one", action="store_true", help="time one trial (MAE* at eps(K), default lr) and exit")
    args = p.parse_args(argv)
    for s in args.strategies:
        if s not in STRATEGIES:
            p.error(f"unknown strategy {s!r}: one of {','.join(STRATEGIES)}")
    if len(args.lr_range) != 2 or not 0 < args.lr_range[0] < args.lr_range[1]:
        p.error("--lr-range must be lo,hi with 0 < lo < hi")
    return args


# -- data and model ---------------------------------------------------------------------------


def load_data(args):
    """``(x, noisy labels, x_val, clean val labels)`` of teacher<K> (teacher cached in large_k's results)."""
    import numpy as np

    import large_k
    from keras_robust import noise

    task = large_k.get_task(f"teacher{args.k}", n_train=args.n_train)
    x, y, xt, yt = large_k.load_task(task, large_k.OUT)
    noisy, mask = noise.symmetric_noise(y, args.noise, args.k, seed=large_k.NOISE_SEED_OFFSET, exclude_true=True)
    return x, np.asarray(noisy), xt[: args.val], yt[: args.val], float(np.mean(mask))


def make_space(args):
    from keras_robust.tuner import LossSpace

    return LossSpace(args.k, losses=list(LOSSES))


def make_build_model(args, space):
    import large_k

    task = large_k.get_task(f"teacher{args.k}", n_train=args.n_train, epochs=args.epochs)
    steps = math.ceil(args.n_train / args.batch_size)

    def build_model(hp):
        lr = hp.Float("lr", args.lr_range[0], args.lr_range[1], sampling="log", default=args.lr_default)
        model = large_k.build_student(task, large_k.TEACHER_DIM)
        optimizer = large_k.build_optimizer("sgd", steps, lr)
        model.compile(optimizer=optimizer, loss=space.build(hp), metrics=["accuracy"])
        return model

    return build_model


# -- the trial cache ----------------------------------------------------------------------------


class TrialCache:
    """``{key: record}`` in one JSON file; key = search seed + the trial's values."""

    def __init__(self, path):
        self.path = Path(path)
        self.data = json.loads(self.path.read_text()) if self.path.is_file() else {}

    @staticmethod
    def key(seed, values):
        return f"s{seed}|" + json.dumps(values, sort_keys=True)

    def get(self, seed, values):
        return self.data.get(self.key(seed, values))

    def put(self, seed, values, record):
        self.data[self.key(seed, values)] = record
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
        os.replace(tmp, self.path)


def _score(history):
    import numpy as np

    vals = np.asarray(history.get("val_accuracy", []), dtype="float64")
    vals = vals[np.isfinite(vals)]
    return float(vals.max()) if len(vals) else 0.0


def make_tuner(strategy, seed, args, space, cache, directory):
    import keras
    import keras_tuner as kt

    from keras_robust.tuner import CalibratedOracle

    objective = kt.Objective("val_accuracy", direction="max")
    common = dict(objective=objective, max_trials=args.trials, seed=seed + 1)
    if strategy == "calibrated_random":
        oracle = CalibratedOracle(space, strategy="random", samples=args.samples, **common)
    elif strategy == "calibrated_bayesian":
        oracle = CalibratedOracle(space, strategy="bayesian", samples=args.samples, num_initial_points=3, **common)
    elif strategy == "random":
        oracle = kt.oracles.RandomSearchOracle(**common)
    else:
        oracle = kt.oracles.BayesianOptimizationOracle(num_initial_points=3, **common)

    class Tuner(kt.Tuner):
        """keras-tuner's Tuner; a trial already trained with the same values and search seed is not retrained."""

        def run_trial(self, trial, *fit_args, **fit_kwargs):
            values = dict(trial.hyperparameters.values)
            hit = cache.get(seed, values) if cache is not None else None
            if hit is None:
                keras.utils.set_random_seed(seed)
                wall, cpu = time.perf_counter(), time.process_time()
                histories = super().run_trial(trial, *fit_args, **fit_kwargs)
                history = {k: [float(v) for v in vs] for k, vs in histories[0].history.items()}
                hit = {"score": _score(history), "history": history, "seconds": time.perf_counter() - wall,
                       "cpu_seconds": time.process_time() - cpu, "trained_in": f"{strategy}/{seed}/{trial.trial_id}"}
                if cache is not None:
                    cache.put(seed, values, hit)
                self._last = dict(hit, cached=False)
            else:
                self._last = dict(hit, cached=True)
            return {"val_accuracy": hit["score"]}

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            n = len(self.oracle.trials)
            done = [t.score for t in self.oracle.trials.values() if t.score is not None]
            last = getattr(self, "_last", {})
            took = "cached" if last.get("cached") else f"{last.get('seconds', 0):.0f} s"
            print(f"  [{strategy} seed {seed}] trial {n}/{args.trials}: val_accuracy "
                  f"{(trial.score if trial.score is not None else float('nan')):.4f} (best so far "
                  f"{max(done) if done else float('nan'):.4f}; {_fmt(trial.hyperparameters.values)}; "
                  f"{took})", flush=True)

    return Tuner(oracle=oracle, hypermodel=make_build_model(args, space), directory=str(directory),
                 project_name=f"{strategy}_s{seed}", overwrite=False)


def _fmt(values):
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


def search_record(strategy, seed, tuner, cache):
    """What one search did: trials in start order with values, score, cached; best-so-far."""
    import numpy as np

    oracle = tuner.oracle
    trials = []
    for tid in oracle.start_order:
        t = oracle.trials[tid]
        values = dict(t.hyperparameters.values)
        hit = cache.get(seed, values) if cache is not None else None
        trials.append({
            "trial_id": tid, "status": t.status, "values": values,
            "score": None if t.score is None else float(t.score),
            "trained_in": hit.get("trained_in") if hit else None,
            "cached": bool(hit) and hit.get("trained_in") != f"{strategy}/{seed}/{tid}",
            "seconds": hit.get("seconds") if hit else None, "cpu_seconds": hit.get("cpu_seconds") if hit else None,
            "val_accuracy": hit["history"].get("val_accuracy") if hit else None,
        })
    scores = [t["score"] if t["score"] is not None else 0.0 for t in trials]
    best = np.maximum.accumulate(scores).tolist() if scores else []
    rec = {"strategy": strategy, "seed": seed, "oracle_seed": seed + 1, "oracle": type(oracle).__name__,
           "trials": trials, "best_so_far": best, "complete": len(trials) >= oracle.max_trials and all(
               t["status"] == "COMPLETED" for t in trials)}
    if getattr(oracle, "seeds", None) is not None:
        rec["seed_trials"] = oracle.seeds
        rec["seed_methods"] = oracle.seed_methods
    return rec


# -- statistics ---------------------------------------------------------------------------------


def _mean_se(values):
    import numpy as np

    v = np.asarray(values, dtype="float64")
    if len(v) == 0:
        return None, None
    return float(v.mean()), (float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else None)


def trials_to_reach(best, target):
    """1-based index of the first trial whose best-so-far is >= target, else None."""
    for i, b in enumerate(best, 1):
        if b >= target:
            return i
    return None


def aggregate(searches, trials):
    complete = [s for s in searches if s["complete"] and len(s["best_so_far"]) >= trials]
    top = max((max(s["best_so_far"]) for s in complete), default=None)
    targets = {f: (f * top if top is not None else None) for f in TARGET_FRACTIONS}
    out = {"best_any_search": top, "targets": {str(f): t for f, t in targets.items()}, "strategies": {}}
    for strategy in STRATEGIES:
        ss = [s for s in complete if s["strategy"] == strategy]
        if not ss:
            continue
        at = {}
        for k in REPORT_AT:
            if k <= trials:
                m, se = _mean_se([s["best_so_far"][k - 1] for s in ss])
                at[str(k)] = {"mean": m, "se": se}
        reach = {}
        for f, target in targets.items():
            ns = [trials_to_reach(s["best_so_far"][:trials], target) for s in ss]
            hit = [n for n in ns if n is not None]
            m, se = _mean_se(hit)
            reach[str(f)] = {"per_seed": ns, "reached": len(hit), "searches": len(ns), "mean_of_reached": m, "se": se,
                             # not reaching counts as trials + 1 (a lower bound on the true number)
                             "mean_censored": _mean_se([n if n is not None else trials + 1 for n in ns])[0]}
        curves = [s["best_so_far"][:trials] for s in ss]
        mean_curve = [_mean_se([c[i] for c in curves]) for i in range(trials)]
        out["strategies"][strategy] = {"searches": len(ss), "seeds": [s["seed"] for s in ss], "best_after": at,
                                       "trials_to_target": reach,
                                       "curve_mean": [m for m, _ in mean_curve],
                                       "curve_se": [se for _, se in mean_curve]}
    return out


def _pm(m, se, pct=True):
    if m is None:
        return "–"
    f = 100.0 if pct else 1.0
    return f"{f * m:.2f}" + (f" ± {f * se:.2f}" if se is not None else "")


def table(agg, trials):
    ks = [k for k in REPORT_AT if k <= trials]
    fr = TARGET_FRACTIONS
    head = ("| strategy | searches | " + " | ".join(f"best after {k}" for k in ks) + " | "
            + " | ".join(f"trials to {round(100 * f)} % of best (reached)" for f in fr) + " |")
    lines = [head, "|---" * (2 + len(ks) + len(fr)) + "|"]
    for strategy, v in agg["strategies"].items():
        cells = [_pm(v["best_after"][str(k)]["mean"], v["best_after"][str(k)]["se"]) for k in ks]
        for f in fr:
            r = v["trials_to_target"][str(f)]
            per = ",".join("–" if n is None else str(n) for n in r["per_seed"])
            cells.append(f"{_pm(r['mean_of_reached'], r['se'], pct=False)} ({r['reached']}/{r['searches']}; {per})")
        lines.append(f"| {LABELS[strategy]} | {v['searches']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(agg, trials, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    styles = {"calibrated_random": ("C0", "-"), "random": ("C1", "-"),
              "calibrated_bayesian": ("C0", "--"), "bayesian": ("C1", "--")}
    x = np.arange(1, trials + 1)
    for strategy, v in agg["strategies"].items():
        m = 100 * np.asarray(v["curve_mean"], dtype=float)
        se = 100 * np.asarray([s or 0.0 for s in v["curve_se"]], dtype=float)
        color, ls = styles[strategy]
        ax.plot(x, m, color=color, ls=ls, marker="o", ms=3, label=f"{LABELS[strategy]} (n={v['searches']})")
        ax.fill_between(x, m - se, m + se, color=color, alpha=0.12)
    for f, t in agg["targets"].items():
        if t is not None:
            ax.axhline(100 * t, color="k", lw=0.7, ls=":")
            ax.text(trials, 100 * t, f" {round(100 * float(f))} % of best", va="bottom", ha="right", fontsize=7)
    ax.set_xlabel("trials")
    ax.set_ylabel("best clean val. accuracy so far (%)")
    ax.set_title("K = 1,000 teacher task, 40 % noise: best-so-far (mean ± s.e.)", fontsize=9)
    ax.set_xticks(x)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    import large_k

    return large_k.save_figure(fig, path)


def write_results(args, searches, meta):
    agg = aggregate(searches, args.trials)
    record = {"meta": meta, "aggregate": agg, "searches": searches}
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True))
    os.replace(tmp, path)
    if args.plot and agg["strategies"]:
        plot(agg, args.trials, args.plot)
    return agg


def main(argv=None):
    args = parse(argv)
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    space = make_space(args)
    directory = Path(args.dir)
    cache = None if args.no_cache else TrialCache(directory / "trials.json")
    meta = {"k": args.k, "n_train": args.n_train, "val": args.val, "noise": args.noise,
            "noise_kind": "symmetric, exclude_true", "epochs": args.epochs, "batch_size": args.batch_size,
            "optimizer": f"SGD momentum {MOMENTUM}, lr x0.95 per epoch", "lr_range": args.lr_range,
            "lr_default": args.lr_default, "losses": list(LOSSES), "space": {k: {p: list(s) if isinstance(s, tuple)
                                                                                 else s for p, s in v.items()}
                                                                             for k, v in space.space.items()},
            "trials": args.trials, "seeds": args.seeds, "strategies": args.strategies,
            "objective": "val_accuracy on clean held-out labels (keras-tuner: best epoch)",
            "backend": keras.backend.backend(), "targets": f"fractions {TARGET_FRACTIONS} of the best any search found"}
    if args.time_one:
        return time_one(args, space)
    data = None if args.summary else load_data(args)
    if data is not None:
        print(f"teacher{args.k}: {len(data[0])} train ({100 * data[4]:.1f} % wrong labels), {len(data[2])} clean "
              f"validation; backend {keras.backend.backend()}", flush=True)
        meta["wrong_label_fraction"] = data[4]
    # keras-tuner order: the random pair first (all seeds), then the Bayesian pair.
    order = [(s, seed) for pair in (("calibrated_random", "random"), ("calibrated_bayesian", "bayesian"))
             for seed in args.seeds for s in pair if s in args.strategies]
    searches = []
    t0 = time.perf_counter()
    for j, (strategy, seed) in enumerate(order, 1):
        project = directory / f"{strategy}_s{seed}"
        if args.summary and not project.is_dir():
            continue
        tuner = make_tuner(strategy, seed, args, space, cache, directory)
        if not args.summary:
            print(f"[{j}/{len(order)}] {strategy} seed {seed} ({time.perf_counter() - t0:.0f} s so far)", flush=True)
            x, y, xv, yv, _ = data
            tuner.search(x, y, validation_data=(xv, yv), epochs=args.epochs, batch_size=args.batch_size,
                         verbose=0)
        rec = search_record(strategy, seed, tuner, cache)
        searches.append(rec)
        if not args.summary:
            print(f"[{j}/{len(order)}] {strategy} seed {seed}: best-so-far "
                  + " ".join(f"{b:.4f}" for b in rec["best_so_far"]), flush=True)
            write_results(args, searches, meta)
    if searches and searches[0].get("seed_methods"):
        print("seeds: " + "; ".join(searches[0]["seed_methods"]))
    agg = write_results(args, searches, meta)
    print()
    print(f"K = {args.k}, {args.noise:.0%} noise: best clean val. accuracy (%) after k trials, mean ± s.e. over "
          f"search seeds; trials to reach the target (mean over the searches that reached it; "
          f"per seed, – = not within {args.trials})")
    print(f"best any search: {_pm(agg['best_any_search'], None)} %; targets: "
          + ", ".join(f"{round(100 * float(f))} % of it = {_pm(t, None)} %" for f, t in agg["targets"].items()
                      if t is not None))
    print(table(agg, args.trials))
    print(f"wrote {args.json}" + (f", {args.plot}" if args.plot else ""), flush=True)
    if args.markdown:
        update_markdown(args.markdown, markdown_table(agg, args.trials))
        print(f"updated the table in {args.markdown}", flush=True)
    return 0


def markdown_table(agg, trials):
    top = agg["best_any_search"]
    targets = ", ".join(f"{round(100 * float(f))} % of it = {_pm(t, None)} %" for f, t in agg["targets"].items()
                        if t is not None)
    return (f"Best clean validation accuracy (%) after k trials, mean ± s.e. over search seeds; trials to reach a "
            f"target: mean ± s.e. over the searches that reached it within {trials} trials (reached/searches; per "
            f"search seed, – = not reached). Best accuracy any search found: {_pm(top, None)} %; targets: "
            f"{targets}.\n\n" + table(agg, trials))


def update_markdown(path, text):
    """Replace the table between ``path``'s ``<!-- tuner_large_k table: start/end -->`` markers."""
    from keras_robust.experiments import embed_markdown

    embed_markdown(path, "tuner_large_k table", text)


def time_one(args, space):
    """Train one trial (the MAE* seed at the default learning rate) and print wall and CPU seconds."""
    import keras
    import keras_tuner as kt

    x, y, xv, yv, wrong = load_data(args)
    hp = kt.HyperParameters()
    build = make_build_model(args, space)
    hp.values["loss"] = "mae*"
    keras.utils.set_random_seed(0)
    model = build(hp)
    wall, cpu = time.perf_counter(), time.process_time()
    h = model.fit(x, y, validation_data=(xv, yv), epochs=args.epochs, batch_size=args.batch_size, verbose=0)
    print(f"one trial ({args.n_train} x {args.epochs} epochs, batch {args.batch_size}, {hp.values}): "
          f"wall {time.perf_counter() - wall:.1f} s, cpu {time.process_time() - cpu:.1f} s; "
          f"val_accuracy {[round(v, 4) for v in h.history['val_accuracy']]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
