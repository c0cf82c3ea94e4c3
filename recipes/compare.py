"""Our runs next to the paper's published values, cell by cell (issue 10)::

    python -m recipes.compare --results results/mlp1024 --out docs/results/mlp1024.md

For every cell of the paper's appendix Table 3 (MLP1024: data set x loss x
symmetric-noise rate; ``recipes/paper_values.csv``) that has finished runs of
the paper configuration here (`keras_robust.experiments.paper_config`, the
given number of epochs), the table shows the paper's mean ± s.e.m. (5 seeds),
ours ± s.e.m. (n seeds), the difference, and a flag where
``|Δ| > max(1.5 points, 3 combined s.e.m.)``. With ``--lr-results`` it also
compares the appendix Table 2 learning-rate profiles of the active-passive
losses. A scatter plot (ours vs paper) is written next to the markdown.
"""

import argparse
import csv
import json
import math
from pathlib import Path

PAPER = Path(__file__).with_name("paper_values.csv")
TOLERANCE_POINTS = 1.5
TOLERANCE_SEM = 3.0
# What is known about cells that disagree (docs/results/identification.md); shown next to their flag.
EXPLANATIONS = {
    ("fashion_mnist", "ce", 0.4): "open: CE plateaus ≈ 3 points above the paper at any epoch count (other-class "
                                  "noise closed 2.5 of 5.5 points)",
    ("fashion_mnist", "ce", 0.2): "open, as at 40 %: the noise is memorised (train acc. 99.3 %, false-label "
                                  "acc. 2–3 %) and the test accuracy has settled (81.4–82.6 % at epochs 36, 43 and 50)",
    ("fashion_mnist", "gce", 0.6): "open: with any-class noise (54 % wrong) seed 0 ends at 80.34, the paper's value, "
                                   "but CE at 60 % then ends 8 points too high (identification.md §3)",
    ("fashion_mnist", "mae*", 0.6): "open: with any-class noise seed 0 ends at 85.94, the paper's value, but CE "
                                    "at 60 % then ends 8 points too high (identification.md §3)",
}
# Every CIFAR-10 cell at 40 % (seed 0, other-class noise) lies 1.2-2.9 points below the paper while the clean
# cells agree; with any-class noise (36 % wrong at rate 0.4) CE, genCE and MAE* match (study noise-cifar10).
_ANY_CLASS_C10 = {"ce": (36.88, 36.90), "gce": (47.57, 47.94), "mae*": (48.59, 49.30)}
EXPLANATIONS.update({("cifar10", loss, 0.4): (
    f"explained: the noise definition; with any-class noise (36 % wrong) seed 0 ends at {_ANY_CLASS_C10[loss][0]:.2f} "
    f"(paper {_ANY_CLASS_C10[loss][1]:.2f}); the grid keeps other-class noise (identification.md §3)"
    if loss in _ANY_CLASS_C10 else
    "likely the noise definition: below the paper like every CIFAR-10 40 % cell, while CE, genCE and MAE* match "
    "with any-class noise (identification.md §3)")
    for loss in ("ce", "bitempered", "gce", "mae", "mae*", "nce+mae", "nfl+mae")})
EXPLANATIONS[("cifar10", "mae", 0.0)] = (
    "explained: the seed decides how many classes MAE never learns (seed 0: 3 of 10 at 0 % after 10 epochs, "
    "final 43.28; seed 1: none, 53.96; seed 2: one, 52.21; identification.md §7), hence a wide spread like "
    "the paper's (s.d. ≈ 2.5 points over 5 seeds)")
# symCE runs with Wang et al.'s published weights; the paper's own setting is not identified.
EXPLANATIONS.update({(ds, "sce", rate): "expected: Wang et al.'s α 0.1, β 1, A −4 (the library default), not the "
                     "paper's symCE setting, which is unpublished and not identified (identification.md §4)"
                     for ds in ("fashion_mnist", "cifar10") for rate in (0.1, 0.2, 0.4, 0.6)})
EXPLANATIONS[("cifar10", "sce", 0.4)] = ("Wang et al.'s weights, not the paper's (unidentified); below the paper like "
                                         "every CIFAR-10 40 % cell with other-class noise (see genCE)")
# Appendix Table 2 cells are keyed with their learning rate as well.
EXPLANATIONS[("fashion_mnist", "nce+mae", 0.0, 0.005)] = (
    "the collapse regime: the paper's 43.06 ± 8.93 over 5 seeds (s.d. ≈ 20 points) mixes runs that collapse "
    "with runs that learn; ours too (seeds 0-2: 11.54, 37.06, 17.92; each peaks at 74-77 % and then collapses)")
NAMES = {"ce": "CE", "mae": "MAE", "mae*": "MAE* (ε 0.5)", "gce": "genCE", "sce": "symCE", "nfl+mae": "NF-MAE",
         "nce+mae": "NCE-MAE", "bitempered": "biTemp", "nce+agce": "NCE-AGCE"}


def paper_values(path=PAPER):
    """``{(table, dataset, arch, loss, noise_rate, lr): (mean, se)}`` in percent (lr None for Table A3)."""
    out = {}
    with open(path) as f:
        for row in csv.DictReader(line for line in f if not line.startswith("#")):
            lr = float(row["lr"]) if row["lr"] else None
            key = (row["table"], row["dataset"], row["arch"], row["loss"], float(row["noise_rate"]), lr)
            out[key] = (float(row["mean"]), float(row["se"]))
    return out


def our_values(results, epochs=None, by_lr=False):
    """``{(dataset, arch, loss, noise_rate[, lr]): [final test accuracy % per seed]}`` of finished runs
    whose configuration is the paper's (up to the seed, the learning rate when ``by_lr``)."""
    from keras_robust import experiments as ex

    cells = {}
    for h in ex.load_histories(results):
        if not h.get("finished") or not h.get("epochs"):
            continue
        c = ex.RunConfig.from_dict(h["config"])
        rate = 0.0 if c.noise == "none" else c.noise_rate
        if epochs is not None and c.epochs != epochs:
            continue
        if not by_lr:
            noise = "symmetric" if rate else "none"
            reference = ex.paper_config(c.dataset, c.arch, c.loss, noise=noise, noise_rate=rate, seed=c.seed,
                                        epochs=c.epochs, backend=c.backend)
            if reference.to_dict() != c.to_dict():
                continue  # an identification or ablation run, not the paper configuration
        key = (c.dataset, c.arch, c.loss, rate) + ((c.lr,) if by_lr else ())
        cells.setdefault(key, []).append(100.0 * h["epochs"][-1]["test_accuracy"])
    return cells


def _mean_se(values):
    n = len(values)
    mean = sum(values) / n
    se = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n) if n > 1 else float("nan")
    return mean, se


def compare(paper, ours, table="A3"):
    """Rows ``{dataset, loss, rate, lr, paper, paper_se, ours, ours_se, n, delta, tolerance, agrees}``."""
    rows = []
    for (tab, dataset, arch, loss, rate, lr), (pm, pse) in sorted(paper.items(), key=lambda kv: str(kv[0])):
        if tab != table:
            continue
        key = (dataset, arch, loss, rate) + ((lr,) if lr is not None else ())
        if key not in ours:
            continue
        om, ose = _mean_se(ours[key])
        combined = math.sqrt(pse**2 + (ose if math.isfinite(ose) else 0.0) ** 2)
        tol = max(TOLERANCE_POINTS, TOLERANCE_SEM * combined)
        rows.append({"dataset": dataset, "loss": loss, "rate": rate, "lr": lr, "paper": pm, "paper_se": pse,
                     "ours": om, "ours_se": ose, "n": len(ours[key]), "delta": om - pm, "tolerance": tol,
                     "agrees": abs(om - pm) <= tol})
    return rows


def _pm(m, se):
    return f"{m:.2f}" if not math.isfinite(se) else f"{m:.2f} ± {se:.2f}"


def markdown(rows, title, epochs, by_lr=False):
    lines = [f"### {title}", ""]
    if not rows:
        return "\n".join(lines + ["(no finished runs of the paper configuration yet)", ""])
    agree = sum(r["agrees"] for r in rows)
    lines.append(f"{len(rows)} cells compared; **{agree} ({100 * agree / len(rows):.0f} %) agree** within "
                 f"max({TOLERANCE_POINTS} points, {TOLERANCE_SEM:g} combined s.e.m.); ours after {epochs} epochs.")
    lines += ["", f"| data set | loss | {'lr' if by_lr else 'noise'} | paper | ours | n | Δ | |",
              "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        setting = f"{r['lr']:g}" if by_lr else f"{100 * r['rate']:g} %"
        key = (r["dataset"], r["loss"], r["rate"]) + ((r["lr"],) if by_lr else ())
        flag = "" if r["agrees"] else "**✗** " + EXPLANATIONS.get(key, "open")
        lines.append(f"| {r['dataset']} | {NAMES.get(r['loss'], r['loss'])} | {setting} | "
                     f"{_pm(r['paper'], r['paper_se'])} | {_pm(r['ours'], r['ours_se'])} | {r['n']} | "
                     f"{r['delta']:+.2f} | {flag} |")
    return "\n".join(lines) + "\n"


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({r["dataset"] for r in rows})
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.2 * len(datasets), 4.8), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        sub = [r for r in rows if r["dataset"] == ds]
        for loss in sorted({r["loss"] for r in sub}):
            pts = [r for r in sub if r["loss"] == loss]
            ax.errorbar([r["paper"] for r in pts], [r["ours"] for r in pts],
                        yerr=[0 if not math.isfinite(r["ours_se"]) else r["ours_se"] for r in pts],
                        xerr=[r["paper_se"] for r in pts], fmt="o", ms=4, label=NAMES.get(loss, loss))
        lo = min(min(r["paper"], r["ours"]) for r in sub) - 2
        hi = max(max(r["paper"], r["ours"]) for r in sub) + 2
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        ax.fill_between([lo, hi], [lo - TOLERANCE_POINTS, hi - TOLERANCE_POINTS],
                        [lo + TOLERANCE_POINTS, hi + TOLERANCE_POINTS], color="gray", alpha=0.2, lw=0)
        ax.set_xlabel("paper (%)")
        ax.set_ylabel("ours (%)")
        ax.set_title(ds)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default="results/mlp1024", help="runs of the paper configuration (Table A3)")
    p.add_argument("--lr-results", default=None, help="clean runs over learning rates (Table A2)")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--out", default="docs/results/mlp1024.md")
    args = p.parse_args(argv)
    paper = paper_values()
    rows = compare(paper, our_values(args.results, args.epochs))
    text = ["## MLP1024: our runs next to the paper's appendix Table 3", "",
            "Generated by `python -m recipes.compare`; the paper's values: `recipes/paper_values.csv`.", "",
            markdown(rows, "Final test accuracy (%), paper (5 seeds) vs ours", args.epochs)]
    lr_rows = []
    if args.lr_results:
        lr_rows = compare(paper, our_values(args.lr_results, args.epochs, by_lr=True), table="A2")
        text.append(markdown(lr_rows, "Appendix Table 2: clean data, per learning rate", args.epochs, by_lr=True))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(text))
    print(out.read_text())
    if rows:
        print("wrote", plot(rows, out.with_suffix(".png")))
    (out.with_suffix(".json")).write_text(json.dumps({"table3": rows, "table2": lr_rows}, indent=1))
    return rows


if __name__ == "__main__":
    main()
