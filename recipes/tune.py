"""Tune MLP1024's learning rate and loss parameters on noisy Fashion-MNIST with keras-tuner.

Compares, at an equal trial budget, `keras_robust.tuner.CalibratedOracle`
(first trials at the theory's parameters for K = 10, then half of the trials
near the best seed) with plain random search over the same space, for several
search seeds, and writes the table to ``docs/results/tuner.md``::

    KERAS_BACKEND=jax python -m recipes.tune --trials 6 --seeds 0,1,2

The data: a class-balanced subset of the Fashion-MNIST training set with
symmetric label noise (the true class can be drawn) for training, and a clean
subset of the test split for validation (the objective, ``val_accuracy``).
MLP1024 is trained with SGD (momentum 0.95, as in the appendix) for a few
epochs; only the learning rate and the loss (choice and parameters) are tuned.
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np


def _csv_int(text):
    return [int(v) for v in text.split(",") if v.strip()]


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--losses", default="mae*,gce,nce+agce", help="comma-separated loss registry names")
    p.add_argument("--trials", type=int, default=6, help="trial budget per search")
    p.add_argument("--seeds", type=_csv_int, default=[0, 1, 2], help="search seeds (comma-separated)")
    p.add_argument("--strategy", default="random", choices=["random", "bayesian"], help="wrapped strategy")
    p.add_argument("--train", type=int, default=3000, help="training examples (balanced subset)")
    p.add_argument("--val", type=int, default=1000, help="clean validation examples (from the test split)")
    p.add_argument("--rate", type=float, default=0.4, help="symmetric label-noise rate of the training labels")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out", default="docs/results/tuner.md", help="markdown report ('' to skip)")
    p.add_argument("--directory", default=None, help="keras-tuner project folder (default: a temp dir)")
    return p.parse_args(argv)


def load_data(args):
    from keras_robust import datasets, noise

    x_train, y_train = datasets.load("fashion_mnist", split="train", limit=args.train, verbose=0)
    x_val, y_val = datasets.load("fashion_mnist", split="test", limit=args.val, verbose=0)
    info = datasets.info("fashion_mnist")

    def normalise(x):
        x = x.astype("float32") / 255.0
        return ((x - np.float32(info.mean[0])) / np.float32(info.std[0])).reshape(len(x), -1)

    y_noisy = noise.symmetric_noise(y_train, args.rate, 10, seed=1234)
    if isinstance(y_noisy, tuple):
        y_noisy = y_noisy[0]
    return normalise(x_train), np.asarray(y_noisy), normalise(x_val), np.asarray(y_val)


def make_build_model(space):
    import keras

    from keras_robust.models import mlp1024

    def build_model(hp):
        lr = hp.Float("lr", 3e-4, 0.1, sampling="log", default=0.005)
        model = mlp1024((784,), 10)
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate=lr, momentum=0.95),
            loss=space.build(hp),
            metrics=["accuracy"],
        )
        return model

    return build_model


def search(kind, seed, space, data, args, directory):
    import keras
    import keras_tuner as kt

    from keras_robust.tuner import CalibratedOracle

    objective = kt.Objective("val_accuracy", direction="max")
    if kind == "calibrated":
        oracle = CalibratedOracle(space, strategy=args.strategy, objective=objective, max_trials=args.trials, seed=seed + 1)
    elif args.strategy == "bayesian":
        oracle = kt.oracles.BayesianOptimizationOracle(objective=objective, max_trials=args.trials, seed=seed + 1)
    else:
        oracle = kt.oracles.RandomSearchOracle(objective=objective, max_trials=args.trials, seed=seed + 1)
    keras.utils.set_random_seed(seed)
    tuner = kt.Tuner(
        oracle=oracle, hypermodel=make_build_model(space), directory=directory,
        project_name=f"{kind}_{args.strategy}_{seed}", overwrite=True,
    )
    x, y, xv, yv = data
    start = time.time()
    tuner.search(x, y, validation_data=(xv, yv), epochs=args.epochs, batch_size=args.batch_size, verbose=0)
    seconds = time.time() - start
    trials = [oracle.trials[t] for t in oracle.start_order]
    scores = [t.score if t.status == "COMPLETED" and t.score is not None else float("nan") for t in trials]
    return tuner, trials, scores, seconds


def _fmt(values):
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


def _mean_se(values):
    values = np.asarray(values, dtype="float64")
    se = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
    return values.mean(), se


def main(argv=None):
    args = parse(argv)
    import keras

    from keras_robust.tuner import LossSpace, seed_parameters

    losses = [n for n in args.losses.split(",") if n.strip()]
    space = LossSpace(10, losses=losses)
    print(f"backend {keras.backend.backend()}; space: {space.space}", flush=True)
    for name in space.losses:
        print(f"  seed {seed_parameters(name, 10)}", flush=True)
    data = load_data(args)
    print(f"data: {len(data[0])} train ({args.rate:.0%} symmetric noise), {len(data[2])} clean validation", flush=True)
    directory = args.directory or tempfile.mkdtemp(prefix="kr-tune-")
    best = {"calibrated": [], "random": []}
    curves = {"calibrated": [], "random": []}
    seconds = {"calibrated": 0.0, "random": 0.0}
    last = None
    for seed in args.seeds:
        for kind in ("calibrated", "random"):
            tuner, trials, scores, took = search(kind, seed, space, data, args, directory)
            seconds[kind] += took
            running = np.fmax.accumulate(np.nan_to_num(scores, nan=0.0))
            best[kind].append(float(running[-1]))
            curves[kind].append(running)
            print(f"seed {seed} {kind:10s}: best val_accuracy {running[-1]:.4f} after {len(trials)} trials "
                  f"({took:.0f} s); per trial: {', '.join(f'{s:.3f}' for s in scores)}", flush=True)
            if kind == "calibrated":
                last = (seed, trials)
    seed, trials = last
    print(f"\nBest trials of the calibrated search (seed {seed}):")
    for t in sorted(trials, key=lambda t: -(t.score or 0.0))[:3]:
        print(f"  trial {t.trial_id}: val_accuracy {t.score:.4f}  {_fmt(t.hyperparameters.values)}")

    n = args.trials
    lines = [
        "# Seeded (calibrated) oracle vs plain random search",
        "",
        f"Produced by `KERAS_BACKEND={keras.backend.backend()} python -m recipes.tune "
        f"--trials {n} --seeds {','.join(map(str, args.seeds))} --strategy {args.strategy}` "
        f"on a 2-core CPU ({time.strftime('%Y-%m-%d')}).",
        "",
        f"Task: MLP1024 on {args.train} Fashion-MNIST training images with {args.rate:.0%} symmetric label "
        f"noise, {args.epochs} epochs, SGD (momentum 0.95), batch {args.batch_size}; objective: accuracy on "
        f"{args.val} clean test-split images. Tuned: learning rate (log, [3e-4, 0.1], default 0.005) and "
        f"the loss ({', '.join(space.losses)}) with its parameters (`LossSpace(10)` ranges). "
        f"Budget: {n} trials per search. Seeded oracle: `CalibratedOracle(strategy={args.strategy!r})` "
        f"(first {len(space.losses)} trials at the theory's values for K = 10, then half of the trials "
        "near the best seed); baseline: keras-tuner's own oracle with the same seed.",
        "",
        "Seeds used for K = 10: " + "; ".join(f"{s.loss}: {_fmt(s.params)} ({s.method})"
                                              for s in (seed_parameters(nm, 10) for nm in space.losses)) + ".",
        "",
        "| search seed | seeded oracle: best val acc | random search: best val acc | difference |",
        "|---|---|---|---|",
    ]
    for i, seed in enumerate(args.seeds):
        c, r = best["calibrated"][i], best["random"][i]
        lines.append(f"| {seed} | {c:.4f} | {r:.4f} | {c - r:+.4f} |")
    (mc, sc), (mr, sr) = _mean_se(best["calibrated"]), _mean_se(best["random"])
    md, sd = _mean_se(np.subtract(best["calibrated"], best["random"]))
    lines.append(f"| mean ± s.e. | {mc:.4f} ± {sc:.4f} | {mr:.4f} ± {sr:.4f} | {md:+.4f} ± {sd:.4f} |")
    lines += ["", "Best validation accuracy after k trials (mean over search seeds):", "",
              "| k | " + " | ".join(str(k) for k in range(1, n + 1)) + " |",
              "|---|" + "---|" * n]
    for kind, label in (("calibrated", "seeded"), ("random", "random")):
        mean_curve = np.mean(np.stack(curves[kind]), axis=0)
        lines.append(f"| {label} | " + " | ".join(f"{v:.4f}" for v in mean_curve) + " |")
    seeded_curve = np.mean(np.stack(curves["calibrated"]), axis=0)
    random_curve = np.mean(np.stack(curves["random"]), axis=0)
    ahead = [k + 1 for k in range(n) if seeded_curve[k] > random_curve[k]]
    verdict = "no better than" if md - 2 * sd <= 0 <= md + 2 * sd else ("better than" if md > 0 else "worse than")
    lines += [
        "",
        f"Reading: at the full budget of {n} trials the seeded oracle is {verdict} random search within two "
        f"standard errors ({md:+.4f} ± {sd:.4f}, {len(args.seeds)} search seeds); the mean best-so-far of the "
        f"seeded search is ahead after k = {', '.join(map(str, ahead)) or 'no'} trial(s). "
        "The seed trials fix only the loss parameters; the learning rate stays at the space's default "
        "(0.005), while random search also draws the learning rate from the first trial on. At K = 10 the "
        "calibration has little to add: genCE and NCE-AGCE are at their literature reference (K_ref = 10), "
        "so only MAE*'s logit bias comes from Eq. 4. The theory's advantage is expected at large K, where "
        "the literature's values stop learning (paper Sec. 3.3, appendix 4); that is not tested here.",
        "",
        f"Search time: seeded {seconds['calibrated']:.0f} s, random {seconds['random']:.0f} s "
        f"(all seeds; shared machine, so only the ratio means anything).",
    ]
    report = "\n".join(lines) + "\n"
    print("\n" + report)
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        kept = ""  # the K = 1,000 section (benchmarks/tuner_large_k.py) and what follows it stay
        if os.path.exists(args.out):
            with open(args.out) as f:
                old = f.read()
            kept = old[old.find("\n## K = 1,000"):] if "\n## K = 1,000" in old else ""
        with open(args.out, "w") as f:
            f.write(report + kept)
        print(f"wrote {args.out}", file=sys.stderr)
    return best


if __name__ == "__main__":
    main()
