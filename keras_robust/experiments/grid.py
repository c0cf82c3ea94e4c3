"""Grids of runs: deterministic shards over machines or processes, skipping failed runs."""

import re
import sys

import keras

from keras_robust.experiments.config import RunConfig
from keras_robust.experiments.checkpoint import RunError
from keras_robust.experiments.runs import run

def parse_shard(shard):
    """``"i/n"`` (1 <= i <= n) -> ``(i, n)``; ``None`` -> ``(1, 1)``."""
    if shard is None:
        return 1, 1
    if isinstance(shard, (tuple, list)) and len(shard) == 2:
        i, n = shard
    elif isinstance(shard, str) and re.fullmatch(r"\s*\d+\s*/\s*\d+\s*", shard):
        i, n = (int(s) for s in shard.split("/"))
    else:
        raise ValueError(f"`shard` must be 'i/n' with 1 <= i <= n (e.g. '2/4'), got {shard!r}")
    if not (isinstance(i, int) and isinstance(n, int) and 1 <= i <= n):
        raise ValueError(f"`shard` must be 'i/n' with 1 <= i <= n (e.g. '2/4'), got {shard!r}")
    return i, n


def shard(configs, shard="1/1"):
    """The configurations of shard ``"i/n"``: runs sorted by id, every n-th from the i-th.

    The shards of ``1/n ... n/n`` partition the (de-duplicated) grid, whatever
    the order of ``configs``, so machines given the same grid and different
    shards never run the same configuration.
    """
    i, n = parse_shard(shard)
    unique = {}
    for c in configs:
        if isinstance(c, dict):
            c = RunConfig.from_dict(c)
        if not isinstance(c, RunConfig):
            raise TypeError(f"`configs` must hold RunConfig objects or dicts, got {c!r}")
        if c.backend is None:
            c = c.replace(backend=keras.backend.backend())
        unique.setdefault(c.run_id, c)
    ordered = [unique[r] for r in sorted(unique)]
    return ordered[i - 1::n]


_select_shard = shard  # `grid`'s argument `shard` shadows the function


def grid(configs, results_dir="results", shard="1/1", verbose=1, **run_kwargs):
    """Run this shard's configurations one after the other; returns their histories.

    A run that cannot start (`RunError`: damaged checkpoint, trained by another
    process) is reported and skipped; the others go on. The skipped runs are
    listed at the end and in the returned list as ``{"run_id", "error"}``.
    """
    i, n = parse_shard(shard)
    mine = _select_shard(configs, (i, n))
    if verbose:
        print(f"grid: shard {i}/{n}: {len(mine)} runs", flush=True)
    out, failed = [], []
    for c in mine:
        try:
            out.append(run(c, results_dir, verbose=verbose, **run_kwargs))
        except RunError as e:
            print(f"grid: skipped: {e}", file=sys.stderr, flush=True)
            failed.append({"run_id": c.run_id, "error": str(e)})
            out.append(failed[-1])
    if failed:
        print(f"grid: {len(failed)} of {len(mine)} runs could not run:", file=sys.stderr)
        for f in failed:
            print(f"  {f['run_id']}: {f['error']}", file=sys.stderr)
    return out
