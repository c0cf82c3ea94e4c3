"""CIFAR-10N: losses on real human noise next to synthetic noise of the same rate (issue 14)::

    python -m recipes.cifar10n_table --results results/cifar10n results/mlp1024 \\
        --out docs/results/cifar10n-losses.md --into docs/results/cifar10n.md

For every loss: final test accuracy (%, mean ± standard error over seeds, n) with each CIFAR-10N
label set (``aggre``, ``random1``, ``worse``), with symmetric noise at the label set's rate, and, for
``worse``, with its transition matrix applied synthetically; the differences that answer issue 14's
questions (real minus synthetic noise per loss; MAE*'s lead over CE and over the best other loss), each
loss's peak against its final accuracy on the real labels, the false-label accuracy of every cell, the
runs that ended with unlearned classes, a grouped bar plot (PNG beside the markdown) and the noise
summary (per-class wrong rates, the transition matrices as a plot). Only finished runs of the paper's
MLP1024 setup (``paper_config``) on CIFAR-10 count. ``--into`` also puts the accuracy table and the
differences between the ``<!-- cifar10n_table: start/end -->`` markers of a hand-written page.
"""

import argparse
import collections
import math
from pathlib import Path

from recipes.compare import NAMES, _mean_se

# label set -> the symmetric rate it is compared with (its measured fraction of wrong labels, rounded)
LABEL_SETS = {"aggre": 0.09, "random1": 0.17, "worse": 0.4}
KINDS = ("human", "symmetric", "human_matrix")
KIND_NAMES = {"human": "real", "symmetric": "symmetric", "human_matrix": "matrix"}
# the table's columns: every label set with its symmetric twin; `worse` also with its matrix twin
COLUMNS = [(ls, kind) for ls in LABEL_SETS for kind in KINDS if kind != "human_matrix" or ls == "worse"]

# One finished run: ``key = (loss label, label set, kind)``; accuracies in %; ``unlearned`` (classes at 0 %
# test accuracy at the end) is None for runs logged before the count existed.
Run = collections.namedtuple("Run", "key seed accuracy peak peak_epoch false_label unlearned")


def _runs(results_dirs, epochs):
    """Yield a `Run` for each finished run of the paper's setup."""
    from keras_robust import experiments as ex

    rates = {rate: name for name, rate in LABEL_SETS.items()}
    for results in results_dirs:
        for h in ex.load_histories(results):
            if not h.get("finished") or not h.get("epochs"):
                continue
            c = ex.RunConfig.from_dict(h["config"])
            if (c.dataset, c.arch, c.epochs) != ("cifar10", "mlp1024", epochs):
                continue
            if c.noise in ("human", "human_matrix"):
                setting, kind = dict(noise=c.noise, noise_rate=0.0, labels=c.labels), c.noise
                label_set = c.labels
            elif c.noise == "symmetric" and c.noise_rate in rates:
                setting, kind = dict(noise="symmetric", noise_rate=c.noise_rate), "symmetric"
                label_set = rates[c.noise_rate]
            else:
                continue
            reference = ex.paper_config("cifar10", "mlp1024", c.loss, seed=c.seed, epochs=c.epochs,
                                        backend=c.backend, **setting)
            if reference.to_dict() != c.to_dict() or label_set not in LABEL_SETS:
                continue  # an ablation, not the paper's setup
            last = h["epochs"][-1]
            peak = max(h["epochs"], key=lambda e: e["test_accuracy"])
            false_label = last.get("false_label_accuracy")
            yield Run((NAMES.get(c.loss, c.label), label_set, kind), c.seed, 100.0 * last["test_accuracy"],
                      100.0 * peak["test_accuracy"], peak["epoch"],
                      None if false_label is None else 100.0 * false_label, last.get("unlearned_classes"))


def _table(runs, field="accuracy"):
    """``{(loss label, label set, kind): [field of each run]}``, runs without the field left out."""
    out = {}
    for run in runs:
        value = getattr(run, field)
        if value is not None:
            out.setdefault(run.key, []).append(value)
    return out


def _stats(values):
    return (*_mean_se(values), len(values))


def _cell(values):
    if not values:
        return ""
    mean, se, n = _stats(values)
    return f"{mean:.2f} ± {se:.2f} ({n})" if n > 1 else f"{mean:.2f} (1)"


def _difference(a, b):
    """Mean of ``a`` minus mean of ``b`` (points), with the combined standard error when both have 2+ seeds."""
    (ma, sa, _), (mb, sb, _) = _stats(a), _stats(b)
    return f"{ma - mb:+.2f}" + ("" if math.isnan(sa) or math.isnan(sb) else f" ± {math.hypot(sa, sb):.2f}")


def _losses(table):
    return sorted({loss for loss, _, _ in table}, key=lambda s: ({"CE": 0, "MAE": 1}.get(s, 2), s))


def _ranked(table, label_set, kind):
    """The losses of one column, best mean first."""
    return [loss for _, loss in sorted(((_stats(v)[0], loss) for (loss, s, k), v in table.items()
                                        if s == label_set and k == kind and v), reverse=True)]


def _grid(table):
    """The losses × columns table of ``{key: [values]}`` (mean ± s.e.m. (seeds) per cell)."""
    header = ["loss"] + [f"{ls} {KIND_NAMES[kind]}" + (f" {100 * LABEL_SETS[ls]:g} %" if kind == "symmetric" else "")
                         for ls, kind in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for loss in _losses(table):
        row = [loss] + [_cell(table.get((loss, ls, kind), [])) for ls, kind in COLUMNS]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def markdown(table):
    lines = _grid(table)
    winners = []
    for ls in LABEL_SETS:
        ranked = _ranked(table, ls, "human")
        if ranked:
            first = table[(ranked[0], ls, "human")]
            text = f"{ls}: {ranked[0]} ({_stats(first)[0]:.2f} %"
            if len(ranked) > 1:
                text += f"; ahead of {ranked[1]} by {_difference(first, table[(ranked[1], ls, 'human')])}"
            winners.append(text + ")")
    lines += ["", "Best mean on real noise: " + ("; ".join(winners) if winners else "no finished runs yet") + "."]
    return "\n".join(lines) + "\n"


# (label set, kind, minus kind): real noise against its synthetic twins
COMPARISONS = [("aggre", "human", "symmetric"), ("random1", "human", "symmetric"), ("worse", "human", "symmetric"),
               ("worse", "human_matrix", "symmetric"), ("worse", "human", "human_matrix")]
MAE_STAR = NAMES["mae*"]


def differences(table):
    """Markdown: real minus synthetic noise per loss, then MAE*'s lead over CE and over the best other loss."""
    header = ["loss"] + [f"{ls}: {KIND_NAMES[a]} − {KIND_NAMES[b]}" for ls, a, b in COMPARISONS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for loss in _losses(table):
        row = [loss]
        for ls, a, b in COMPARISONS:
            va, vb = table.get((loss, ls, a)), table.get((loss, ls, b))
            row.append(_difference(va, vb) if va and vb else "")
        lines.append("| " + " | ".join(row) + " |")
    lead = ["| | " + " | ".join(f"{ls} {KIND_NAMES[kind]}" for ls, kind in COLUMNS) + " |",
            "|" + "---|" * (len(COLUMNS) + 1)]
    over_ce, over_best = ["MAE* − CE"], ["MAE* − best other loss"]
    for ls, kind in COLUMNS:
        mine, ce = table.get((MAE_STAR, ls, kind)), table.get(("CE", ls, kind))
        over_ce.append(_difference(mine, ce) if mine and ce else "")
        others = [loss for loss in _ranked(table, ls, kind) if loss != MAE_STAR]
        over_best.append(f"{_difference(mine, table[(others[0], ls, kind)])} ({others[0]})"
                         if mine and others else "")
    lead += ["| " + " | ".join(over_ce) + " |", "| " + " | ".join(over_best) + " |"]
    return "\n".join(lines) + "\n\n" + "\n".join(lead) + "\n"


def unlearned(runs):
    """Markdown list of the runs that ended with classes at 0 % test accuracy (runs logged before the
    per-class count existed are counted apart)."""
    dead, unknown = [], 0
    for run in sorted(runs, key=lambda r: (r.key, r.seed)):
        (loss, ls, kind), n = run.key, run.unlearned
        if n is None:
            unknown += 1
        elif n:
            dead.append(f"- {loss}, {ls} {KIND_NAMES[kind]}, seed {run.seed}: {n} unlearned "
                        f"class{'es' if n > 1 else ''}, {run.accuracy:.2f} %")
    text = "\n".join(dead) if dead else "- none"
    if unknown:
        text += f"\n\n({unknown} of {len(runs)} runs predate the per-class count and are not in this list.)"
    return text + "\n"


def peaks(runs):
    """Markdown: on the real labels, each loss's peak test accuracy (and its epoch, means over seeds)
    against its final one."""
    real = [run for run in runs if run.key[2] == "human"]
    final, peak, epoch = (_table(real, field) for field in ("accuracy", "peak", "peak_epoch"))
    header = ["loss"] + [f"{ls}: {part}" for ls in LABEL_SETS for part in ("peak (epoch)", "final − peak")]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for loss in _losses(final):
        row = [loss]
        for ls in LABEL_SETS:
            key = (loss, ls, "human")
            if key not in final:
                row += ["", ""]
                continue
            last, best, when = (_stats(t[key])[0] for t in (final, peak, epoch))
            row += [f"{best:.2f} ({when:.0f})", f"{last - best:+.2f}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def plot(table, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    losses = _losses(table)
    fig, axes = plt.subplots(1, len(LABEL_SETS), figsize=(5 * len(LABEL_SETS), 4), sharey=True)
    width = 0.27
    for ax, ls in zip(axes, LABEL_SETS):
        for j, kind in enumerate(KINDS):
            xs, means, errs = [], [], []
            for i, loss in enumerate(losses):
                values = table.get((loss, ls, kind))
                if values:
                    mean, se, _ = _stats(values)
                    xs.append(i + (j - 1) * width)
                    means.append(mean)
                    errs.append(0.0 if math.isnan(se) else se)
            if xs:
                ax.bar(xs, means, width, yerr=errs, label=KIND_NAMES[kind], capsize=2)
        ax.set_xticks(range(len(losses)), losses, rotation=45, ha="right")
        ax.set_title(f"{ls} (symmetric: {100 * LABEL_SETS[ls]:g} %)")
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("final test accuracy (%)")
    handles = {}
    for ax in axes:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(name, handle)
    if handles:  # above the panels, where no bar can hide under it
        fig.legend(handles.values(), handles.keys(), loc="upper right", ncol=len(handles), fontsize=9)
    fig.suptitle("CIFAR-10N, MLP1024: real human noise vs synthetic noise of the same rate")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", nargs="+", default=["results/cifar10n", "results/mlp1024"])
    p.add_argument("--out", default="docs/results/cifar10n-losses.md")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--into", help="a markdown page whose <!-- cifar10n_table: start/end --> markers "
                                   "receive the accuracy table and the differences")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--no-noise-summary", action="store_true",
                   help="leave out the label sets' per-class wrong rates and transition matrices")
    args = p.parse_args(argv)
    runs = list(_runs([r for r in args.results if Path(r).is_dir()], args.epochs))
    table = _table(runs)
    text = ("## CIFAR-10N, MLP1024: final test accuracy (%), mean ± s.e.m. (seeds)\n\n"
            f"Generated by `python -m recipes.cifar10n_table`; {args.epochs} epochs, the appendix's MLP setup.\n\n"
            + markdown(table))
    if table:
        compared = ("\n### Real against synthetic noise, and MAE*'s lead: differences of means (points; ± the "
                    "combined s.e.m. where both cells have two or more seeds)\n\n" + differences(table))
        if args.into:
            from keras_robust.experiments import embed_markdown

            embed_markdown(args.into, "cifar10n_table", "Final test accuracy (%), mean ± s.e.m. (seeds); "
                           "generated by `python -m recipes.cifar10n_table`.\n\n" + markdown(table) + compared)
        text += (compared + "\n### Real labels: peak against final test accuracy (means over seeds)\n\n" + peaks(runs)
                 + "\n### False-label accuracy at the end (%): the mislabelled training images scored against "
                 "their clean labels (near 0: the wrong labels are learnt)\n\n"
                 + "\n".join(_grid(_table(runs, "false_label"))) + "\n"
                 + "\n### Runs that ended with unlearned classes (0 % test accuracy)\n\n" + unlearned(runs))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if table and not args.no_plot:
        png = plot(table, out.with_suffix(".png"))
        text += f"\n![CIFAR-10N losses]({Path(png).name})\n"
    if not args.no_noise_summary:
        from recipes.cifar10n_check import noise_summary

        png = out.with_name(out.stem + "-transition.png")
        text += ("\n### The noise: wrong labels per class (%), and the transition matrices T[clean, human]\n\n"
                 + noise_summary(png, tuple(LABEL_SETS)) + f"\n![transition matrices]({png.name})\n")
    out.write_text(text)
    print(text)
    return table


if __name__ == "__main__":
    main()
