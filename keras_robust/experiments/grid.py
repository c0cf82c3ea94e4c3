"""Grids of runs: deterministic shards over machines or processes, skipping failed runs,
their progress read from the runs' histories, and a deadline that starts no run it cannot finish."""

import datetime
import re
import sys
import time

import keras
import numpy as np

from keras_robust.experiments._io import read_json
from keras_robust.experiments.config import RunConfig, run_dir
from keras_robust.experiments.report import load_histories
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


def grid(configs, results_dir="results", shard="1/1", verbose=1, deadline=None, **run_kwargs):
    """Run this shard's configurations one after the other; returns their histories.

    A run that cannot start (`RunError`: damaged checkpoint, trained by another
    process) is reported and skipped; the others go on. The skipped runs are
    listed at the end and in the returned list as ``{"run_id", "error"}``.

    ``deadline`` (see `parse_deadline`): start no run whose time left, priced
    as in `status` (the mean recorded epoch time of its kind), would end after
    it. Such a run is deferred, not failed: it appears in the returned list as
    ``{"run_id", "deferred"}`` and later, shorter runs may still start. A run
    of a kind with no recorded epoch starts. Running runs are never stopped, so
    a session that ends at the deadline loses no half-trained run (checkpoints
    are not committed: a fresh clone restarts an unfinished run from epoch 0).
    """
    i, n = parse_shard(shard)
    mine = _select_shard(configs, (i, n))
    deadline = None if deadline is None else parse_deadline(deadline)
    if verbose:
        until = "" if deadline is None else f", starting none that would end after {_clock(deadline)}"
        print(f"grid: shard {i}/{n}: {len(mine)} runs{until}", flush=True)
    out, failed, deferred = [], [], []
    for c in mine:
        if deadline is not None:
            row = _row(c, results_dir, _epoch_times(results_dir))
            left = deadline - time.time()
            if row["seconds_left"] and row["seconds_left"] > left:
                note = (f"needs about {_hours(row['seconds_left'])}, "
                        f"{_hours(max(left, 0.0))} left before the deadline {_clock(deadline)}")
                if verbose:
                    print(f"grid: deferred {c.run_id}: {note}", flush=True)
                deferred.append({"run_id": c.run_id, "deferred": note})
                out.append(deferred[-1])
                continue
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
    if deferred and verbose:
        print(f"grid: {len(deferred)} of {len(mine)} runs deferred: they would end after the deadline", flush=True)
    return out


def parse_deadline(deadline, now=None):
    """A deadline as POSIX seconds, from one of:

    * a number or a string of digits (POSIX seconds, ``date +%s``), or a
      `datetime.datetime` (naive = local time);
    * ``"HH:MM"``: the next such local time (as ``at`` reads it: ``"06:00"``
      at 22:00 is tomorrow morning);
    * ``"+90m"``, ``"+2h"``, ``"+45s"``: that long from ``now``;
    * an ISO date and time, ``"2026-12-07T08:10"`` (naive = local time).
    """
    now = time.time() if now is None else now
    if isinstance(deadline, bool):
        raise ValueError(f"`deadline` must be a time, got {deadline!r}")
    if isinstance(deadline, (int, float)):
        return float(deadline)
    if isinstance(deadline, datetime.datetime):
        return deadline.timestamp()
    text = deadline.strip() if isinstance(deadline, str) else None
    if text is not None and re.fullmatch(r"\d{9,}(?:\.\d+)?", text):
        return float(text)
    if text is not None and (m := re.fullmatch(r"\+(\d+(?:\.\d+)?)([smh])", text)):
        return now + float(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]
    if text is not None and (m := re.fullmatch(r"(\d{1,2}):(\d{2})", text)) and int(m.group(1)) < 24 \
            and int(m.group(2)) < 60:
        today = datetime.datetime.fromtimestamp(now)
        at = today.replace(hour=int(m.group(1)), minute=int(m.group(2)), second=0, microsecond=0)
        return (at if at.timestamp() > now else at + datetime.timedelta(days=1)).timestamp()
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except (TypeError, ValueError):
        raise ValueError(f"`deadline` must be 'HH:MM', '+90m' / '+2h' / '+45s', an ISO date and time "
                         f"or POSIX seconds, got {deadline!r}") from None


def _clock(seconds):
    return datetime.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M")


def status(configs, results_dir="results", shard="1/1"):
    """Where this shard's runs stand, from their ``history.json`` alone (nothing is trained or locked).

    Returns one dict per run, in the order `grid` runs them: ``run_id``,
    ``state`` (``"finished"``, ``"started"``, ``"restarts"``: started, but
    its checkpoint is absent, as in a fresh clone, so it trains again from
    epoch 0; ``"to do"`` or ``"unreadable"``), ``epochs_done``, ``epochs``
    and ``seconds_left``: the epochs left times the mean epoch time of the
    histories in ``results_dir`` with the same data set, network and loss
    (else data set and network), ``None`` where none has been recorded yet.
    """
    times = _epoch_times(results_dir)
    return [_row(c, results_dir, times) for c in _select_shard(configs, shard)]


def _row(c, results_dir, times):
    """One run's `status` row."""
    row = {"run_id": c.run_id, "state": "to do", "epochs_done": 0, "epochs": c.epochs}
    folder = run_dir(c, results_dir)
    if (folder / "history.json").is_file():
        try:
            h = read_json(folder / "history.json")
            row["epochs_done"] = len(h["epochs"])
            row["state"] = "finished" if h.get("finished") else "started"
        except (OSError, ValueError, KeyError, TypeError):
            row["state"] = "unreadable"
    if row["state"] == "started" and not (folder / "checkpoint").exists():
        row["state"] = "restarts"
    left = {"finished": 0, "started": c.epochs - row["epochs_done"]}.get(row["state"], c.epochs)
    measured = times.get((c.dataset, c.arch, c.loss)) or times.get((c.dataset, c.arch))
    row["seconds_left"] = 0.0 if left == 0 else left * float(np.mean(measured)) if measured else None
    return row


def _epoch_times(results_dir):
    """The recorded epoch times (s) of every history in ``results_dir``, by (data set, network[, loss])."""
    times = {}
    for h in load_histories(results_dir):
        try:
            c = h["config"]
            seconds = [e["seconds"] for e in h["epochs"] if e.get("seconds")]
            keys = ((c["dataset"], c["arch"], c["loss"]), (c["dataset"], c["arch"]))
        except (KeyError, TypeError, AttributeError):
            continue
        for key in keys:
            times.setdefault(key, []).extend(seconds)
    return times


def format_status(rows, shard="1/1"):
    """`status`'s rows as a table with one summary line (the time left assumes one process)."""
    i, n = parse_shard(shard)
    counts = {s: sum(r["state"] == s for r in rows)
              for s in ("finished", "started", "restarts", "to do", "unreadable")}
    lines = [f"{r['run_id']:<52} {r['state']:<10} {r['epochs_done']:>4}/{r['epochs']:<4} "
             f"{'' if r['state'] == 'finished' else _hours(r['seconds_left'])}" for r in rows]
    known = [r["seconds_left"] for r in rows if r["seconds_left"] is not None]
    unknown = len(rows) - len(known)
    left = f"{_hours(sum(known))} at the epoch times recorded so far" if any(known) else ""
    if unknown:
        left += (" + " if left else "") + f"{unknown} runs of a kind with no recorded epoch yet"
    left = left or ("nothing" if counts["finished"] == len(rows) else "0 min")
    summary = (f"shard {i}/{n}: {len(rows)} runs: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v)
               + f"; left: {left}")
    return "\n".join(lines + [summary])


def _hours(seconds):
    if seconds is None:
        return "?"
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"
