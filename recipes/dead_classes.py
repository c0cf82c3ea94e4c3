"""Which classes a run never learned: per-class test accuracy of recorded runs::

    KERAS_BACKEND=jax python -m recipes.dead_classes --results results/mlp1024 \
        --runs 'cifar10-mlp1024-mae-clean-s*' --epochs 10        # 4-6 min per old CIFAR-10 run, 2-core CPU

A bounded loss (MAE) has almost no gradient where a class's true-class
probability starts small (paper Sec. 3), so a class that loses the first
epochs can stay at 0 % for the whole run while the others learn; across seeds
that shows as a wide spread of the final accuracy. Runs recorded since
`keras_robust.metrics.class_accuracy` entered the history carry their last
epoch's per-class accuracy, which is printed as it is. Older runs are trained
again for ``--epochs`` epochs from their recorded config in a scratch folder
(a run is deterministic for a given code and environment: the retrained test
accuracy is printed next to the history's at the same epoch, and where the two
differ the run was recorded by other code), and their per-class
train (against the clean labels) and test accuracy are measured. Prints one markdown table.
"""

import argparse
import fnmatch
import json
import os
import tempfile
from pathlib import Path


def _retrain(config, epochs):
    """Per-class (train, test) accuracy and test accuracy after ``epochs`` epochs of ``config``.

    The test figures come from the retrained run's own history; the training set is measured here.
    """
    import keras

    from keras_robust import metrics
    from keras_robust.experiments import data, runs

    grab = {}

    class _Keep(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            grab["model"] = self.model

    config = config.replace(epochs=epochs)
    with tempfile.TemporaryDirectory() as scratch:
        h = runs.run(config, scratch, callbacks=[_Keep()], verbose=0, distribute=False, force=True)
    raw, y, *_, k = data.load_data(config)
    train = data.predict(grab["model"], data.normalise(raw, config))
    return metrics.class_accuracy(train, y, k), h["test_class_accuracy"], h["epochs"][-1]["test_accuracy"]


def rows(results, pattern, epochs):
    """One row per run folder of ``results`` matching ``pattern`` (a shell pattern of run ids)."""
    from keras_robust.experiments.config import RunConfig

    out = []
    for folder in sorted(Path(results).iterdir()):
        hist = folder / "history.json"
        if not (fnmatch.fnmatch(folder.name, pattern) and hist.is_file()):
            continue
        h = json.loads(hist.read_text())
        if not h.get("epochs"):
            continue  # started, no epoch recorded yet
        final = h["epochs"][-1]["test_accuracy"]
        if h.get("test_class_accuracy") is not None:
            out.append({"run": folder.name, "epoch": len(h["epochs"]), "test": h["test_class_accuracy"],
                        "train": None, "accuracy": final, "recorded": final, "final": final})
            continue
        n = min(epochs, len(h["epochs"]))
        train, test, acc = _retrain(RunConfig.from_dict(h["config"]), n)
        out.append({"run": folder.name, "epoch": n, "test": test, "train": [float(a) for a in train], "accuracy": acc,
                    "recorded": h["epochs"][n - 1]["test_accuracy"], "final": final})
    return out


def table(found):
    def pct(values):
        return " ".join("–" if v is None or v != v else f"{100 * v:.0f}" for v in values)

    lines = ["| run | epoch | test acc. (history) | per-class test acc. (%) | per-class train acc. (%, clean labels) "
             "| unlearned | final test acc. |", "|---|---|---|---|---|---|---|"]
    for r in found:
        dead = sum(1 for v in r["test"] if v == 0)
        lines.append(f"| {r['run']} | {r['epoch']} | {100 * r['accuracy']:.2f} ({100 * r['recorded']:.2f}) | "
                     f"{pct(r['test'])} | {pct(r['train']) if r['train'] else 'not recorded'} | {dead} | "
                     f"{100 * r['final']:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", default="results/mlp1024")
    p.add_argument("--runs", required=True, help="shell pattern of run ids, e.g. 'cifar10-mlp1024-mae-clean-s*'")
    p.add_argument("--epochs", type=int, default=10, help="epochs to retrain an old run for (default 10)")
    args = p.parse_args(argv)
    if args.epochs < 1:
        p.error("--epochs must be a positive integer")
    if not Path(args.results).is_dir():
        p.error(f"--results: no folder {args.results}")
    os.environ.setdefault("KERAS_BACKEND", "jax")
    found = rows(args.results, args.runs, args.epochs)
    if not found:
        p.error(f"no run folder in {args.results} matches {args.runs!r}")
    print(table(found))


if __name__ == "__main__":
    main()
