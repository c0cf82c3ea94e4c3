"""Benchmark: eps(K) of Eq. 4 by exact quadrature against the paper's Monte Carlo + bisection.

For K in {10, 100, 1000, 1e4, 1e5, 1e6}: the time of `epsilon_for_classes`
and its error, and the time and error of `epsilon_monte_carlo` (fresh
Gaussian samples at every bisection step, the paper's Sec. 3.2 method) at
several sample sizes and seeds. Reference: the exact method, cross-checked
where it is cheap by a very large independent Monte Carlo of <a_k>(eps) and
everywhere by the symmetry <a_k>(0) = 1/K.

    .venv/bin/python benchmarks/calibration.py            # full run (a few minutes)
    .venv/bin/python benchmarks/calibration.py --quick    # smaller Monte Carlo budget

Prints a markdown table, writes benchmarks/results/calibration.json and
benchmarks/results/calibration.png (error against time). Times are wall
clock on this machine; compare them only within one run.
"""

import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from keras_robust.calibration import epsilon_for_classes, epsilon_monte_carlo, mean_true_probability  # noqa: E402

KS = [10, 100, 1000, 10**4, 10**5, 10**6]
SAMPLES = [10, 100, 1000, 10_000, 100_000]
TARGET = 0.15
GOAL = 1e-4


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def best_time(fn, repeats):
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t)
    return best, value


def mc_check(k, eps, n, seed=2024, chunk=2**22):
    """<a_k>(eps) by plain Monte Carlo with n rows (mean, standard error)."""
    rng = np.random.default_rng(seed)
    rows = max(1, chunk // k)
    s = s2 = 0.0
    done = 0
    while done < n:
        m = min(rows, n - done)
        z = rng.standard_normal((m, k))
        z[:, 0] += eps
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        a = e[:, 0] / e.sum(axis=1)
        s += a.sum()
        s2 += (a * a).sum()
        done += m
    mean = s / n
    return mean, math.sqrt(max(s2 / n - mean * mean, 0.0) / n)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller Monte-Carlo budget")
    parser.add_argument("--budget", type=float, default=None, help="max samples*K per bisection step")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = parser.parse_args()
    budget = args.budget or (2e6 if args.quick else 2e7)
    os.makedirs(args.out, exist_ok=True)

    rows = []
    for k in KS:
        log(f"K={k}: exact quadrature ...")
        t_exact, eps = best_time(lambda k=k: epsilon_for_classes(k, TARGET), 15)
        t_prob, _ = best_time(lambda k=k, eps=eps: mean_true_probability(k, eps), 15)
        sym = abs(mean_true_probability(k, 0.0) - 1.0 / k)
        # Slope d<a_k>/d eps by central differences, to turn <a_k> errors into eps errors.
        slope = (mean_true_probability(k, eps + 1e-3) - mean_true_probability(k, eps - 1e-3)) / 2e-3
        check = None
        n_check = int(min(4e6, 4e8 / k)) if k <= 1000 else 0
        if n_check:
            log(f"K={k}: independent Monte-Carlo check with {n_check} rows ...")
            mean, se = mc_check(k, eps, n_check)
            check = {"rows": n_check, "mean": mean, "se": se, "eps_error_bound": 5 * se / slope,
                     "z_score": (mean - TARGET) / se}
        row = {"K": k, "eps": eps, "time_exact_s": t_exact, "time_mean_prob_s": t_prob, "symmetry_error": sym,
               "slope": slope, "mc_check": check, "monte_carlo": []}
        for n in SAMPLES:
            if n * k > budget and n != SAMPLES[0]:
                continue  # always run the smallest size, so every K has a Monte-Carlo point
            errs, times = [], []
            for seed in range(args.seeds):
                log(f"K={k}: Monte Carlo + bisection, samples={n}, seed={seed} ...")
                t = time.perf_counter()
                e_mc = epsilon_monte_carlo(k, TARGET, samples=n, seed=seed, tol=1e-5)
                times.append(time.perf_counter() - t)
                errs.append(e_mc - eps)
            rms = float(np.sqrt(np.mean(np.square(errs))))
            row["monte_carlo"].append({"samples": n, "rms_error": rms, "errors": errs, "time_s": float(np.median(times))})
        # Extrapolate Monte Carlo to the goal accuracy: error = c / sqrt(n) (c fitted
        # over the sizes >= 100 where available), time per sample from the largest run.
        big = [m for m in row["monte_carlo"] if m["samples"] >= 100] or row["monte_carlo"]
        c = math.exp(np.mean([math.log(m["rms_error"]) + 0.5 * math.log(m["samples"]) for m in big]))
        n_goal = (c / GOAL) ** 2
        last = big[-1]
        row["mc_error_constant"] = c
        row["mc_samples_at_goal"] = n_goal
        row["mc_time_at_goal_s"] = last["time_s"] / last["samples"] * n_goal
        row["speedup_at_goal"] = row["mc_time_at_goal_s"] / t_exact
        rows.append(row)

    lines = [
        f"eps(K) for C = {TARGET}, logits N(0, 1). Exact = `epsilon_for_classes` (quadrature + brentq); "
        "MC = the paper's fresh-sample Monte Carlo + bisection (RMS error over "
        f"{args.seeds} seeds against the exact value).",
        "",
        "| K | eps(K) | exact: time | exact: check | MC samples | MC RMS error | MC time | MC time for 1e-4 (extrap.) | speed-up at 1e-4 |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r["mc_check"]:
            chk = f"MC of <a_k> ({r['mc_check']['rows']:.0e} rows): z = {r['mc_check']['z_score']:+.1f}"
        else:
            chk = f"<a_k>(0) - 1/K = {r['symmetry_error']:.0e}"
        first = True
        for m in r["monte_carlo"]:
            head = (
                f"| {r['K']:.0e} | {r['eps']:.5f} | {1e3 * r['time_exact_s']:.2f} ms | {chk} "
                if first
                else "| | | | "
            )
            tail = (
                f"| {r['mc_time_at_goal_s']:.3g} s | {r['speedup_at_goal']:.2g}x |" if first else "| | |"
            )
            lines.append(head + f"| {m['samples']} | {m['rms_error']:.2g} | {m['time_s']:.3g} s " + tail)
            first = False
    table = "\n".join(lines)
    print(table)

    result = {
        "target": TARGET,
        "goal_accuracy": GOAL,
        "mc_budget_samples_times_K": budget,
        "machine": {"python": platform.python_version(), "processor": platform.processor(), "cpus": os.cpu_count()},
        "rows": rows,
        "table_markdown": table,
    }
    path = os.path.join(args.out, "calibration.json")
    with open(path, "w") as fh:
        json.dump(result, fh, indent=1)
    log(f"wrote {path}")

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        log("matplotlib not installed: no plot")
        return
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(rows)))
    for r, c in zip(rows, colors):
        mc = r["monte_carlo"]
        ax.plot([m["time_s"] for m in mc], [m["rms_error"] for m in mc], "o-", color=c, label=f"MC, K={r['K']:.0e}")
        # The exact method's error is below 1e-6 (brentq xtol 1e-9, quadrature 1e-10): plotted at 1e-6.
        ax.plot([r["time_exact_s"]], [1e-6], "*", color=c, markersize=12)
    ax.axhline(GOAL, color="gray", ls="--", lw=1)
    ax.text(min(r["time_exact_s"] for r in rows), GOAL * 1.3, "goal 1e-4", color="gray", fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("time to compute eps(K) [s]")
    ax.set_ylabel("error in eps (RMS over seeds)")
    ax.set_title("eps(K), Eq. 4: exact quadrature (stars, error < 1e-6) vs Monte Carlo")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    png = os.path.join(args.out, "calibration.png")
    fig.savefig(png, dpi=120)
    log(f"wrote {png}")


if __name__ == "__main__":
    main()
