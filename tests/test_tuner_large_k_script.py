"""benchmarks/tuner_large_k.py (issue 15 item 4) at tiny size, in this process on the suite's backend.

A 20-class teacher task (256 examples, one epoch), 2 trials per search, one
search seed, the four strategies: the JSON's fields, best-so-far is the
running maximum of the trial scores (so non-decreasing), the seeded searches'
first trials are `seed_parameters`' values at the learning rate's default,
trials repeated across strategies come from the trial cache (and training is
deterministic, which the cache relies on), and a second run resumes without
training anything.
"""

import importlib.util
import json
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_robust.tuner import LossSpace, seed_parameters

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("tuner_large_k_script", ROOT / "benchmarks" / "tuner_large_k.py")
script = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(script)

K, SAMPLES, LR_DEFAULT = 20, 256, 0.05
TINY = ["--k", str(K), "--n-train", "256", "--val", "128", "--epochs", "1", "--trials", "2", "--seeds", "0",
        "--samples", str(SAMPLES), "--lr-default", str(LR_DEFAULT)]


def _run(tmp, *extra):
    args = [*TINY, "--dir", str(tmp / "projects"), "--json", str(tmp / "out.json"), "--plot", str(tmp / "out.png"),
            *extra]
    assert script.main(args) == 0
    return json.loads((tmp / "out.json").read_text())


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tuner_large_k")
    with pytest.warns(UserWarning, match="clipped"):  # K = 20: NCE-AGCE's transferred alpha exceeds the range's K
        return tmp, _run(tmp)


def test_json_fields_and_best_so_far(run):
    tmp, rec = run
    assert set(rec) == {"meta", "aggregate", "searches"}
    meta = rec["meta"]
    assert meta["k"] == K and meta["trials"] == 2 and meta["backend"] == keras.backend.backend()
    assert meta["wrong_label_fraction"] == pytest.approx(0.4, abs=1 / 256)
    assert [s["strategy"] for s in rec["searches"]] == list(script.STRATEGIES)
    for s in rec["searches"]:
        assert s["complete"] and len(s["trials"]) == 2
        scores = [t["score"] for t in s["trials"]]
        assert all(0.0 <= v <= 1.0 for v in scores)
        assert s["best_so_far"] == pytest.approx(np.maximum.accumulate(scores).tolist())
        assert np.all(np.diff(s["best_so_far"]) >= 0)
        for t in s["trials"]:  # the objective is the best epoch's clean validation accuracy
            assert t["score"] == pytest.approx(max(t["val_accuracy"]))
    agg = rec["aggregate"]
    top = max(max(s["best_so_far"]) for s in rec["searches"])
    assert agg["best_any_search"] == pytest.approx(top)
    assert agg["targets"]["0.9"] == pytest.approx(0.9 * top)
    for s in rec["searches"]:
        st = agg["strategies"][s["strategy"]]
        assert st["best_after"]["1"]["mean"] == pytest.approx(s["best_so_far"][0])
        assert st["trials_to_target"]["0.9"]["per_seed"] == [script.trials_to_reach(s["best_so_far"], 0.9 * top)]
    assert (tmp / "out.png").stat().st_size > 1000


def test_seeded_first_trials_are_the_solvers_seeds(run):
    _, rec = run
    space = LossSpace(K, losses=list(script.LOSSES))
    with pytest.warns(UserWarning, match="clipped"):
        expected = [space.seed_values(seed_parameters(n, K, samples=SAMPLES)) for n in script.LOSSES]
    for strategy in ("calibrated_random", "calibrated_bayesian"):
        s = next(s for s in rec["searches"] if s["strategy"] == strategy)
        assert len(s["seed_trials"]) == 3
        for trial, want in zip(s["trials"], expected):  # 2 trials: the first two seeds (mae*, gce)
            values = trial["values"]
            assert values["loss"] == want["loss"]
            assert values["lr"] == pytest.approx(LR_DEFAULT)
            for name, value in want.items():
                if name != "loss":
                    assert values[name] == pytest.approx(value, rel=1e-6)
        assert s["trials"][0]["values"]["mae*.epsilon"] == pytest.approx(float(seed_parameters("mae*", K).params["epsilon"]))
    plain = next(s for s in rec["searches"] if s["strategy"] == "random")
    assert plain["trials"][0]["values"]["lr"] != pytest.approx(LR_DEFAULT)  # keras-tuner draws it


def test_repeated_trials_come_from_the_cache(run):
    _, rec = run
    by = {s["strategy"]: s for s in rec["searches"]}
    # The calibrated searches share their seed trials; keras-tuner's random and Bayesian oracles (same seed)
    # draw the same initial points. The second of each pair reuses the first's training.
    for first, second in (("calibrated_random", "calibrated_bayesian"), ("random", "bayesian")):
        assert not any(t["cached"] for t in by[first]["trials"])
        for a, b in zip(by[first]["trials"], by[second]["trials"]):
            assert b["values"] == a["values"] and b["cached"] and b["score"] == a["score"]
            assert b["trained_in"] == f"{first}/0/{a['trial_id']}"


def test_training_is_deterministic_without_the_cache(tmp_path):
    # What the cache relies on: the same values and search seed train to the same validation accuracy.
    with pytest.warns(UserWarning, match="clipped"):
        rec = _run(tmp_path, "--trials", "1", "--strategies", "calibrated_random,calibrated_bayesian", "--no-cache")
    a, b = (s["trials"][0] for s in rec["searches"])
    assert a["values"] == b["values"] and not a["cached"] and not b["cached"]
    assert a["val_accuracy"] == pytest.approx(b["val_accuracy"], abs=1e-6)


def test_resumed_run_trains_nothing(run, capsys):
    tmp, rec = run
    cache = tmp / "projects" / "trials.json"
    before = cache.stat().st_mtime_ns
    again = _run(tmp)
    assert cache.stat().st_mtime_ns == before
    assert "] trial " not in capsys.readouterr().out  # no trial ran
    assert [s["best_so_far"] for s in again["searches"]] == [s["best_so_far"] for s in rec["searches"]]


def test_trials_to_reach():
    assert script.trials_to_reach([0.1, 0.2, 0.5], 0.2) == 2
    assert script.trials_to_reach([0.1, 0.2], 0.3) is None
