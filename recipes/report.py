"""Aggregate the runs of a results directory: mean ± standard error over seeds of the
final test accuracy, one table per data set x network (markdown + CSV), learning curves::

    python -m recipes.report --results results/fmnist --out docs/results

The paper-configuration runs next to the paper's own tables, with agreement flags, are
``python -m recipes.compare`` (``docs/results/mlp1024.md``).
"""

import argparse


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default="results")
    p.add_argument("--out", default=None, help="where tables and plots go (default: --results)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--include-unfinished", action="store_true")
    args = p.parse_args(argv)
    from keras_robust import experiments as ex

    r = ex.report(args.results, args.out, plots=not args.no_plots, finished_only=not args.include_unfinished)
    for f in r["files"]:
        print("wrote", f)
    return r


if __name__ == "__main__":
    main()
