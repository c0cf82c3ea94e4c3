"""Aggregate finished runs: mean ± standard error over seeds, tables (markdown, CSV), learning curves."""

import csv
import json
import math
import sys
from pathlib import Path

import numpy as np

from keras_robust import plots as plotting
from keras_robust.experiments._io import read_json
from keras_robust.experiments.config import RunConfig

def load_histories(results_dir):
    """All runs' ``history.json`` under ``results_dir`` (any depth), finished or not.

    The copies inside the runs' checkpoints (``checkpoint/epoch-NNNN/``) are not runs of their own.
    """
    out = []
    for p in sorted(Path(results_dir).rglob("history.json")):
        if "checkpoint" in p.relative_to(results_dir).parts[:-1]:
            continue
        try:
            h = read_json(p)
        except (OSError, json.JSONDecodeError) as e:
            print(f"report: skipping unreadable {p}: {e}", file=sys.stderr)
            continue
        h["_path"] = str(p)
        out.append(h)
    return out


def _group_key(h):
    c = RunConfig.from_dict(h["config"])
    if c.labels is not None:  # CIFAR-10N: the label set is the noise
        noise = f"{c.noise}:{c.labels}"
    else:
        noise = "none" if c.noise_rate == 0 else c.noise
    return (c.dataset, c.arch, c.epochs), (c.label, noise, c.noise_rate)


def aggregate(histories, finished_only=True, metric="test_accuracy"):
    """Mean and standard error over seeds of the final ``metric``, per cell.

    Returns ``{(dataset, arch, epochs): {(loss label, noise, rate): {"mean",
    "se", "n", "best_mean", "false_label_accuracy", "seeds", "curves"}}}``
    where ``se = std(ddof=1) / sqrt(n)`` (NaN for a single seed) and
    ``curves`` maps each per-epoch key to its mean over seeds.
    """
    cells = {}
    for h in histories:
        if (finished_only and not h.get("finished")) or not h.get("epochs"):
            continue
        table, cell = _group_key(h)
        cells.setdefault(table, {}).setdefault(cell, []).append(h)
    out = {}
    for table, group in cells.items():
        out[table] = {}
        for cell, hs in group.items():
            final = np.array([h["epochs"][-1][metric] for h in hs], float)
            best = np.array([max(e[metric] for e in h["epochs"]) for h in hs], float)
            fla = [h["epochs"][-1].get("false_label_accuracy") for h in hs]
            fla = np.array([np.nan if v is None else v for v in fla], float)
            n = len(final)
            length = min(len(h["epochs"]) for h in hs)
            curves = {}
            for key in ("test_accuracy", "false_label_accuracy", "accuracy", "loss", "epsilon", "lr"):
                arr = np.array([[np.nan if e.get(key) is None else e[key] for e in h["epochs"][:length]]
                                for h in hs], float)
                curves[key] = np.nanmean(arr, 0).tolist() if not np.all(np.isnan(arr)) else None
            out[table][cell] = {
                "mean": float(final.mean()),
                "se": float(final.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan"),
                "n": n,
                "best_mean": float(best.mean()),
                "false_label_accuracy": float(np.nanmean(fla)) if not np.all(np.isnan(fla)) else None,
                "seeds": sorted(h["config"]["seed"] for h in hs),
                "curves": curves,
            }
    return out


def _pm(mean, se, scale=100.0):
    if se is None or not math.isfinite(se):
        return f"{mean * scale:.2f}"
    return f"{mean * scale:.2f} ± {se * scale:.2f}"


def _rate_name(noise, rate):
    if noise.startswith("human"):
        kind, labels = noise.split(":")
        return f"{labels} ({'human' if kind == 'human' else 'its matrix, synthetic'})"
    return "0 %" if rate == 0 else f"{rate * 100:g} %" + ("" if noise == "symmetric" else f" ({noise})")


def tables(agg):
    """``{(dataset, arch, epochs): (header, rows)}``, rows losses, columns noise rates (percent)."""
    out = {}
    for table, cells in sorted(agg.items()):
        cols = sorted({(noise, rate) for _, noise, rate in cells}, key=lambda c: (c[1], c[0]))
        losses = []
        for label, _, _ in cells:
            if label not in losses:
                losses.append(label)
        order = {"CE": 0, "MAE": 1}
        losses.sort(key=lambda s: (order.get(s, 2), s))
        header = ["loss"] + [_rate_name(*c) for c in cols]
        rows = []
        for label in losses:
            row = [label]
            for noise, rate in cols:
                c = cells.get((label, noise, rate))
                row.append(_pm(c["mean"], c["se"]) + (f" (n={c['n']})" if c and c["n"] < 2 else "")
                           if c else "")
            rows.append(row)
        out[table] = (header, rows)
    return out


def embed_markdown(path, name, text):
    """Replace what stands between ``<!-- name: start -->`` and ``<!-- name: end -->`` in the markdown
    file ``path`` with ``text`` (generated tables inside hand-written docs)."""
    path = Path(path)
    doc = path.read_text()
    start, end = f"<!-- {name}: start -->", f"<!-- {name}: end -->"
    i, j = doc.find(start), doc.find(end)
    if i < 0 or j < i:
        raise ValueError(f"{path} has no {start!r} followed by {end!r}: add both markers where the "
                         f"generated text goes")
    path.write_text(doc[: i + len(start)] + "\n" + text.strip("\n") + "\n" + doc[j:])


def plot_curves(agg, path, table):
    """Learning curves of one table of `aggregate` (paper Fig. 4/5 style) as a PNG; returns its path."""
    dataset, arch, epochs = table
    plotting.learning_curves(agg[table], path, f"{dataset}, {arch}, {epochs} epochs (mean over seeds)", _rate_name)
    return str(path)


def report(results_dir="results", out_dir=None, plots=True, finished_only=True, verbose=1):
    """Aggregate every run under ``results_dir`` into tables (markdown + CSV) and plots.

    Writes, per (data set, network, epochs), ``<stem>.md``, ``<stem>.csv`` and
    ``<stem>.png`` into ``out_dir`` (default ``results_dir``), where ``<stem>``
    is ``table-<dataset>-<arch>-<epochs>ep``. Cells are the final test accuracy
    in percent, mean ± standard error over seeds (paper Tables 2, A3). Returns
    ``{"markdown": str, "files": [...], "aggregate": ...}``.
    """
    out_dir = Path(out_dir or results_dir)
    agg = aggregate(load_histories(results_dir), finished_only=finished_only)
    md_all, files = [], []
    for table, (header, rows) in tables(agg).items():
        dataset, arch, epochs = table
        stem = f"table-{dataset}-{arch}-{epochs}ep"
        seeds = sorted({c["n"] for c in agg[table].values()})
        title = (f"### {dataset}, {arch}, {epochs} epochs: final test accuracy (%), "
                 f"mean ± standard error over {'/'.join(map(str, seeds))} seed(s)")
        md = [title, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        md += ["| " + " | ".join(r) + " |" for r in rows]
        extra = ["", "| loss | noise | best test acc. (%) | final false-label acc. (%) | seeds |", "|---|---|---|---|---|"]
        for (label, noise, rate), c in sorted(agg[table].items(), key=lambda kv: (kv[0][2], kv[0][0])):
            fla = "" if c["false_label_accuracy"] is None else f"{100 * c['false_label_accuracy']:.2f}"
            extra.append(f"| {label} | {_rate_name(noise, rate)} | {100 * c['best_mean']:.2f} | {fla} | "
                         f"{','.join(map(str, c['seeds']))} |")
        text = "\n".join(md + extra) + "\n"
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"{stem}.md").write_text(text)
        with open(out_dir / f"{stem}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["dataset", "arch", "epochs", "loss", "noise", "rate", "mean", "se", "n",
                        "best_mean", "false_label_accuracy", "seeds"])
            for (label, noise, rate), c in sorted(agg[table].items()):
                w.writerow([dataset, arch, epochs, label, noise, rate, f"{c['mean']:.6f}",
                            "" if not math.isfinite(c["se"]) else f"{c['se']:.6f}", c["n"],
                            f"{c['best_mean']:.6f}",
                            "" if c["false_label_accuracy"] is None else f"{c['false_label_accuracy']:.6f}",
                            " ".join(map(str, c["seeds"]))])
        files += [str(out_dir / f"{stem}.md"), str(out_dir / f"{stem}.csv")]
        if plots:
            files.append(plot_curves(agg, out_dir / f"{stem}.png", table))
        md_all.append(text)
    markdown = "\n".join(md_all)
    if verbose:
        print(markdown if markdown else f"report: no finished runs under {results_dir}")
    return {"markdown": markdown, "files": files, "aggregate": agg}
