"""keras_robust.tuner: the loss space, the seeded oracle, resuming, and distributed search."""

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import warnings

import keras
import keras_tuner as kt
import numpy as np
import pytest

from keras_robust import cli
from keras_robust import losses as kr_losses
from keras_robust.calibration import epsilon_for_classes, match_hyperparameter, transfer_nce_agce
from keras_robust.tuner import (
    CalibratedBayesianOptimization,
    CalibratedBayesianOptimizationOracle,
    CalibratedOracle,
    CalibratedRandomSearch,
    CalibratedRandomSearchOracle,
    LossSpace,
    SeedParameters,
    seed_parameters,
)
from keras_robust.tuner import oracles as tuner_oracles
from keras_robust.tuner import seeding as tuner_seeding

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = 512  # Monte-Carlo samples of the calibration in these tests


class ScoreTuner(kt.Tuner):
    """Runs no training: scores a trial by its loss on fixed logits (builds the loss on the backend)."""

    def __init__(self, space, *args, interrupt_at=None, **kwargs):
        self.space, self.ran, self.interrupt_at = space, [], interrupt_at
        super().__init__(*args, **kwargs)

    def run_trial(self, trial, *args, **kwargs):
        if self.interrupt_at is not None and len(self.ran) == self.interrupt_at:
            raise KeyboardInterrupt("simulated kill")
        self.ran.append((trial.trial_id, dict(trial.hyperparameters.values)))
        loss = self.space.build(trial.hyperparameters)
        rng = np.random.default_rng(0)
        logits = rng.normal(size=(16, self.space.num_classes)).astype("float32")
        labels = rng.integers(0, self.space.num_classes, 16)
        value = float(keras.ops.convert_to_numpy(loss(labels, logits)))
        assert np.isfinite(value)
        return value + float(trial.hyperparameters.values.get("lr", 0.0))


def _space(k=50):
    return LossSpace(k, losses=["mae*", "gce", "nce+agce", "ce"])


def _tuner(tmp_path, space, oracle, name="p", **kwargs):
    return ScoreTuner(space, oracle=oracle, hypermodel=None, directory=str(tmp_path), project_name=name, **kwargs)


def _declare_lr(oracle):
    oracle.hyperparameters.Float("lr", 1e-4, 1e-1, sampling="log", default=1e-2)


def _populate(tuner, space):
    hp = tuner.oracle.get_space()
    space.declare(hp)
    tuner.oracle.update_space(hp)


def _run(tmp_path, space, strategy, max_trials, name="p", seed=3, interrupt_at=None, overwrite=False, **oracle_kwargs):
    oracle = CalibratedOracle(space, strategy=strategy, max_trials=max_trials, seed=seed, samples=SAMPLES, **oracle_kwargs)
    _declare_lr(oracle)
    tuner = _tuner(tmp_path, space, oracle, name=name, interrupt_at=interrupt_at, overwrite=overwrite)
    _populate(tuner, space)
    try:
        tuner.search(verbose=0)
    except KeyboardInterrupt:
        pass
    return tuner


# -- the seeds ----------------------------------------------------------------------------


def test_seed_parameters_sources():
    # Matched values are compared with independent solver calls in test_first_trials_are_the_seeds.
    assert seed_parameters("mae*", 50).params == {"epsilon": pytest.approx(float(epsilon_for_classes(50)), abs=1e-12)}
    assert seed_parameters("mae*", 50).method == "eq4"
    # At a reference K the literature's values (appendix Table 1) are returned unchanged.
    assert seed_parameters("gce", 100).params == {"q": 0.7}
    assert seed_parameters("nce+agce", 10).params == {"alpha": 1.0, "beta": 4.0, "a": 6.0, "q": 1.5}
    assert seed_parameters("nce+agce", 100).method == "literature"
    # Losses without a matched parameter: the table at the nearest reference, else the class defaults.
    assert seed_parameters("nfl+mae", 200).params == {"alpha": 1.0, "beta": 0.2, "gamma": 0.5,
                                                       "detach_weight": False, "mae_form": "l1_mean"}
    assert seed_parameters("agce", 20).params == {"a": 0.6, "q": 0.6}
    assert seed_parameters("ael", 10).method == "default"


def test_seed_parameters_reproduce_the_paper_at_1000_classes():
    # Sec. 3.3: q = 0.7 at K = 100 becomes q = 0.48 at K = 1000; appendix 4: NCE-AGCE
    # with beta = 0.7, a = q = 0.05 keeps <delta_k>(0) = -0.021 with alpha = 100.
    q = seed_parameters("gce", 1000, samples=1024).params["q"]
    assert abs(q - 0.48) < 0.01
    params = seed_parameters("nce+agce", 1000, samples=1024).params
    assert params["beta"] == 0.7 and params["a"] == 0.05 and params["q"] == 0.05
    assert 90 < params["alpha"] < 115


def test_seed_without_solution_falls_back_to_literature(monkeypatch):
    def no_root(*args, **kwargs):
        raise ValueError("No q in bracket (0.01, 1.0) gives <delta_k>(0) = -0.05 at K=3")

    monkeypatch.setattr(tuner_seeding, "match_hyperparameter", no_root)
    with pytest.warns(UserWarning, match="No matched q"):
        found = seed_parameters("gce", 3, samples=64)
    assert found.method == "literature" and found.params == {"q": 0.7}


# -- the search space ------------------------------------------------------------------------


@pytest.mark.parametrize("k", [10, 1000])
def test_space_builds_every_registered_loss(k, rng):
    space = LossSpace(k)
    assert space.losses == kr_losses.names()
    logits = rng.normal(size=(8, k)).astype("float32")
    labels = rng.integers(0, k, 8)
    for name in kr_losses.names():
        hp = kt.HyperParameters()
        hp.values[space.name] = name
        loss = space.build(hp)
        expected = kr_losses.get(name, num_classes=k, **space.defaults()[name])
        assert type(loss) is type(expected), name
        assert loss.params == expected.params, name
        assert loss.epsilon == expected.epsilon, name
        assert set(hp.values) == {space.name, *(f"{name}.{p}" for p in space.parameters(name))}, name
        value = float(keras.ops.convert_to_numpy(loss(labels, logits)))
        assert np.isfinite(value), name
    # Every parameter of every loss is declared (conditionally) in one space.
    hp = kt.HyperParameters()
    space.declare(hp)
    declared = {h.name for h in hp.space}
    assert declared == {space.name} | {f"{n}.{p}" for n in space.losses for p in space.parameters(n)}


def test_space_ranges_follow_k_and_contain_the_references():
    for k in (10, 100, 1000, 10**5):
        space = LossSpace(k, losses=["mae*", "gce", "nce+agce", "agce", "nfl+mae", "nce+mae", "bitempered"])
        eps = float(epsilon_for_classes(k))
        lo, hi, _ = space.parameters("mae*")["epsilon"]
        assert lo <= eps <= hi and hi - eps == pytest.approx(3.0)
        assert space.defaults()["mae*"]["epsilon"] == pytest.approx(eps)
        lo, hi, _ = space.parameters("nce+agce")["alpha"]
        assert lo <= k / 10 <= hi  # alpha ~ K / 10 in the literature (1, 10) and the paper (100)
    # The appendix's values at K = 10 and 100, and the paper's at K = 1000, lie inside the ranges.
    large = {"gce": {"q": 0.48}, "nce+agce": {"alpha": 100.0, "beta": 0.7, "a": 0.05, "q": 0.05}}
    for k, table in ((10, kr_losses.PAPER_PARAMETERS["cifar10"]), (100, kr_losses.PAPER_PARAMETERS["cifar100"]),
                     (1000, large)):
        space = LossSpace(k, losses=list(table))
        for name, params in table.items():
            for param, value in params.items():
                if isinstance(value, str):  # a convention (mae_form), not a searched number
                    continue
                lo, hi, _ = space.parameters(name)[param]
                assert lo <= value <= hi, (k, name, param, value)


def test_space_ranges_override_and_fixed_values():
    space = LossSpace(10, losses=["gce", "nfl"], ranges={"gce": {"q": (0.3, 0.9)}, "nfl": {"gamma": 2.0}})
    hp = kt.HyperParameters()
    hp.values["loss"] = "nfl"
    loss = space.build(hp)
    assert loss.params == {"gamma": 2.0, "detach_weight": False}
    hp = kt.HyperParameters()
    space.declare(hp)
    q = next(h for h in hp.space if h.name == "gce.q")
    assert (q.min_value, q.max_value, q.sampling) == (0.3, 0.9, "linear")


def test_space_serialisation_round_trip():
    space = LossSpace(100, losses=["mae*", "GCE"], ranges={"gce": {"q": (0.1, 0.9, "log")}}, name="objective_loss")
    assert keras.saving.get_registered_name(LossSpace) == "keras_robust>LossSpace"
    cls = keras.saving.get_registered_object("keras_robust>LossSpace")
    restored = cls.from_config(json.loads(json.dumps(space.get_config())))
    assert isinstance(restored, LossSpace)
    assert restored.get_config() == space.get_config()
    assert restored.space == space.space and restored.losses == ["mae*", "gce"]
    assert restored.name == "objective_loss" and restored.space["gce"]["q"] == (0.1, 0.9, "log")


# -- the oracle ---------------------------------------------------------------------------------


def test_first_trials_are_the_seeds(tmp_path):
    k = 50  # nearest literature reference: K = 100 (log distance)
    tuner = _run(tmp_path, _space(k), "random", max_trials=6, seed_values={"lr": 3e-3})
    oracle = tuner.oracle
    values = [oracle.trials[t].hyperparameters.values for t in oracle.start_order]
    assert len(values) == 6
    fixed = {"beta": 0.1, "a": 1.8, "q": 3.0}  # the appendix's CIFAR-100 values
    q = match_hyperparameter("gce", "q", reference=(100, 0.7), num_classes=k, bracket=(0.01, 1.0), samples=SAMPLES)
    alpha = match_hyperparameter(
        "nce+agce", "alpha", reference=(100, 10.0), num_classes=k, bracket=(1e-3, 1e5), fixed=fixed, samples=SAMPLES
    )
    assert 0.7 < q.value < 1.0  # fewer classes than the reference: a larger q (paper Fig. 3, reversed)
    expected = {
        "mae*": {"mae*.epsilon": float(epsilon_for_classes(k))},
        "gce": {"gce.q": q.value},
        "nce+agce": {"nce+agce.alpha": alpha.value, **{f"nce+agce.{p}": v for p, v in fixed.items()}},
        "ce": {},
    }
    for got, (name, params) in zip(values[:4], expected.items()):
        assert got["loss"] == name and got["lr"] == 3e-3
        assert set(got) == {"loss", "lr", *params}
        for key, value in params.items():
            assert got[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    assert oracle.seed_methods[0].startswith("eq4") and oracle.seed_methods[1].startswith("matched")
    assert oracle.seed_methods[2].startswith("matched") and oracle.seed_methods[3].startswith("default")


def test_first_trials_are_the_seeds_bayesian(tmp_path):
    space = LossSpace(10, losses=["gce", "mae*"])
    # Two seeds complete the initial points, so trial 2 is the Gaussian process's proposal.
    oracle = _run(tmp_path, space, "bayesian", max_trials=3, num_initial_points=2, local_fraction=0.0).oracle
    values = [oracle.trials[t].hyperparameters.values for t in oracle.start_order]
    assert values[0] == {"lr": 1e-2, "loss": "gce", "gce.q": 0.7}  # literature at K = 10, lr default
    assert values[1] == {"lr": 1e-2, "loss": "mae*", "mae*.epsilon": pytest.approx(float(epsilon_for_classes(10)))}
    assert len(values) == 3 and values[2] not in values[:2]
    assert all(oracle.trials[t].status == "COMPLETED" for t in oracle.trials)


def test_after_the_seeds_random_strategy_is_delegated(tmp_path):
    space = _space(10)
    calibrated = _run(tmp_path, space, "random", max_trials=7, name="c", local_fraction=0.0).oracle
    plain = kt.oracles.RandomSearchOracle(max_trials=3, seed=3)
    _declare_lr(plain)
    plain_tuner = _tuner(tmp_path, space, plain, name="r")
    _populate(plain_tuner, space)
    plain_tuner.search(verbose=0)
    after_seeds = [calibrated.trials[t].hyperparameters.values for t in calibrated.start_order[4:]]
    assert after_seeds == [plain.trials[t].hyperparameters.values for t in plain.start_order]


def test_local_trials_stay_near_the_best_seed(tmp_path):
    space = LossSpace(10, losses=["mae*", "gce", "nce+agce"])
    width = 0.05
    oracle = _run(tmp_path, space, "random", max_trials=9, local_fraction=1.0, local_width=width).oracle
    trials = [oracle.trials[t] for t in oracle.start_order]
    best_seed = min(trials[:3], key=lambda t: t.score)  # ScoreTuner's objective is minimised
    centre = best_seed.hyperparameters.values
    hps = {h.name: h for h in oracle.hyperparameters.space}
    lrs = set()
    for trial in trials[3:]:
        values = trial.hyperparameters.values
        assert values["loss"] == centre["loss"]
        for name in space.parameters(centre["loss"]):
            key = f"{centre['loss']}.{name}"
            distance = abs(hps[key].value_to_prob(values[key]) - hps[key].value_to_prob(centre[key]))
            assert distance <= width + 1e-9, (key, values[key], centre[key])
        lrs.add(values["lr"])
    assert len(lrs) == 6  # the learning rate is still explored by the strategy


@pytest.mark.parametrize("strategy", ["random", "bayesian"])
def test_resume_does_not_repeat_finished_trials(tmp_path, strategy, monkeypatch):
    space = _space(10)
    first = _run(tmp_path, space, strategy, max_trials=7, name="resume", interrupt_at=5)
    finished = [t for t, _ in first.ran]
    assert finished == ["0", "1", "2", "3", "4"]

    def no_recompute(*args, **kwargs):
        raise AssertionError("the seeds were recomputed on resume")

    monkeypatch.setattr(tuner_oracles, "seed_parameters", no_recompute)
    second = _run(tmp_path, space, strategy, max_trials=7, name="resume")
    resumed = [t for t, _ in second.ran]
    assert resumed == ["5", "6"]  # the interrupted trial 5 is retried, then 6; nothing finished reruns
    oracle = second.oracle
    assert sorted(oracle.trials) == [str(i) for i in range(7)]
    assert all(oracle.trials[t].status == "COMPLETED" for t in oracle.trials)
    assert len(oracle._tried_so_far) == 7
    assert oracle.seeds == first.oracle.seeds
    if strategy == "random":  # same draws as a search that was never interrupted
        monkeypatch.undo()
        whole = _run(tmp_path, space, strategy, max_trials=7, name="whole").oracle
        for t in whole.trials:
            assert whole.trials[t].hyperparameters.values == oracle.trials[t].hyperparameters.values


def test_reload_refuses_another_k(tmp_path):
    _run(tmp_path, _space(10), "random", max_trials=5, name="k")
    with pytest.raises(ValueError, match="K=10"):
        _run(tmp_path, _space(20), "random", max_trials=5, name="k")


# -- bad input ---------------------------------------------------------------------------------


def test_bad_input_raises_clear_errors():
    for k in (1, 0, 2.5, True, "10"):
        with pytest.raises(ValueError, match="num_classes"):
            LossSpace(k)
        with pytest.raises(ValueError, match="num_classes"):
            seed_parameters("gce", k)
    with pytest.raises(ValueError, match="'nope'"):
        LossSpace(10, losses=["gce", "nope"])
    with pytest.raises(ValueError, match="'nope'"):
        seed_parameters("nope", 10)
    with pytest.raises(TypeError, match="string"):
        LossSpace(10, losses=[3])
    with pytest.raises(ValueError, match="empty"):
        LossSpace(10, losses=[])
    with pytest.raises(ValueError, match="more than once"):
        LossSpace(10, losses=["gce", "GCE"])
    with pytest.raises(ValueError, match="not in `losses`"):
        LossSpace(10, losses=["gce"], ranges={"mae*": {"epsilon": (0, 1)}})
    with pytest.raises(ValueError, match="unknown parameter 'gamma'"):
        LossSpace(10, losses=["gce"], ranges={"gce": {"gamma": (0, 1)}})
    with pytest.raises(ValueError, match="min < max"):
        LossSpace(10, losses=["gce"], ranges={"gce": {"q": (0.9, 0.1)}})
    with pytest.raises(ValueError, match="min > 0"):
        LossSpace(10, losses=["gce"], ranges={"gce": {"q": (0.0, 1.0, "log")}})
    with pytest.raises(ValueError, match="sampling"):
        LossSpace(10, losses=["gce"], ranges={"gce": {"q": (0.1, 1.0, "cubic")}})
    with pytest.raises(TypeError, match="HyperParameters"):
        LossSpace(10).build({"loss": "gce"})
    with pytest.raises(ValueError, match="'nope'"):
        LossSpace(10, losses=["gce"]).make_loss("nope")
    space = LossSpace(10, losses=["gce"])
    with pytest.raises(TypeError, match="loss_space"):
        CalibratedOracle("gce")
    with pytest.raises(ValueError, match="strategy"):
        CalibratedOracle(space, strategy="hyperband")
    with pytest.raises(TypeError, match="strategy"):
        CalibratedOracle(space, strategy=kt.oracles.HyperbandOracle(objective="val_loss", max_epochs=2))
    with pytest.raises(ValueError, match="strategy instance"):
        CalibratedOracle(space, strategy=kt.oracles.RandomSearchOracle(), max_trials=3)
    with pytest.raises(ValueError, match="local_fraction"):
        CalibratedOracle(space, local_fraction=1.5)
    with pytest.raises(ValueError, match="local_width"):
        CalibratedOracle(space, local_width=-0.1)
    with pytest.raises(ValueError, match="samples"):
        CalibratedOracle(space, samples=1)
    with pytest.raises(ValueError, match="seed_losses"):
        CalibratedOracle(space, seed_losses=["mae*"])
    with pytest.raises(ValueError, match="nope"):
        CalibratedOracle(space, seed_losses=["nope"])
    with pytest.raises(TypeError, match="seed_values"):
        CalibratedOracle(space, seed_values=[("lr", 1e-3)])
    with pytest.raises(TypeError, match="SeedParameters"):
        space.seed_values({"q": 0.5})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match="clipped"):
            LossSpace(10, losses=["gce"], ranges={"gce": {"q": (0.1, 0.5)}}).seed_values(
                SeedParameters("gce", {"q": 0.7}, "literature"))


# -- distributed search (chief + two workers over gRPC) -------------------------------------

_PROCESS = textwrap.dedent(
    """
    import json, os, sys, time, types
    import keras, numpy as np, keras_tuner as kt
    from keras_robust.tuner import CalibratedOracle, LossSpace

    directory, role = sys.argv[1], os.environ["KERASTUNER_TUNER_ID"]
    space = LossSpace(20, losses=["mae*", "gce", "ce"])
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 8)).astype("float32"), rng.integers(0, 20, 32)

    def build_model(hp):
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(20)])
        lr = hp.Float("lr", 1e-3, 1e-1, sampling="log", default=1e-2)
        model.compile(optimizer=keras.optimizers.SGD(lr), loss=space.build(hp))
        return model

    class Tuner(kt.Tuner):
        ran = []

        def on_search_begin(self):  # a barrier, so that both workers ask for trials
            open(os.path.join(directory, "ready_" + role), "w").close()
            deadline = time.time() + 120
            while time.time() < deadline and not all(
                os.path.exists(os.path.join(directory, "ready_tuner" + i)) for i in "01"
            ):
                time.sleep(0.05)

        def run_trial(self, trial, *args, **kwargs):
            self.ran.append((trial.trial_id, dict(trial.hyperparameters.values)))
            time.sleep(0.3)  # keep the trial open long enough for the other worker to ask
            return super().run_trial(trial, *args, **kwargs)

    if role == "chief":  # keras-tuner's chief polls every 20 s for finished workers
        import keras_tuner.src.distribute.oracle_chief as chief
        chief.time = types.SimpleNamespace(sleep=lambda s: time.sleep(min(s, 0.1)))
    oracle = CalibratedOracle(space, strategy="random", objective="loss", max_trials=4, seed=1, samples=256)
    tuner = Tuner(oracle=oracle, hypermodel=build_model, directory=directory, project_name="dist")
    tuner.search(x, y, epochs=1, batch_size=32, verbose=0)
    local = tuner.oracle if role == "chief" else tuner.oracle._oracle
    result = {"role": role, "ran": tuner.ran, "local_seeds": local.seeds}
    if role == "chief":
        result["trials"] = {t: o.hyperparameters.values for t, o in oracle.trials.items()}
        result["status"] = {t: o.status for t, o in oracle.trials.items()}
    print("RESULT " + json.dumps(result), flush=True)
    """
)


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_distributed_chief_and_two_workers(tmp_path):
    script = tmp_path / "tune_process.py"
    script.write_text(_PROCESS)
    directory = tmp_path / "search"
    directory.mkdir()
    port = _free_port()
    base = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(port)}
    base["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
    procs = {}
    try:
        for role in ("chief", "tuner0", "tuner1"):
            procs[role] = subprocess.Popen(
                [sys.executable, str(script), str(directory)],
                env={**base, "KERASTUNER_TUNER_ID": role},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        outputs, texts, deadline = {}, {}, time.time() + 300
        try:
            for role, proc in procs.items():
                texts[role], _ = proc.communicate(timeout=max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            for role, proc in procs.items():
                proc.kill()
                texts[role] = texts.get(role) or proc.communicate(timeout=30)[0]
            pytest.fail("distributed search timed out:\n" + "\n".join(f"== {r}\n{t[-2000:]}" for r, t in texts.items()))
        for role, proc in procs.items():
            out = texts[role]
            assert proc.returncode == 0, f"{role} failed:\n{out[-3000:]}"
            lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
            assert lines, f"{role} printed no result:\n{out[-3000:]}"
            outputs[role] = json.loads(lines[-1][len("RESULT "):])
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
    chief, workers = outputs["chief"], [outputs["tuner0"], outputs["tuner1"]]
    # The seeds were computed by the chief only; the workers never populate trials.
    assert chief["local_seeds"] is not None and len(chief["local_seeds"]) == 3
    assert all(w["local_seeds"] is None for w in workers)
    assert chief["ran"] == []
    # Trials are shared: each worker ran some, none ran twice, together they ran all four.
    ran = [tid for w in workers for tid, _ in w["ran"]]
    assert all(len(w["ran"]) >= 1 for w in workers), ran
    assert sorted(ran) == [str(i) for i in range(4)]
    assert set(chief["status"].values()) == {"COMPLETED"}
    # Each seeded trial ran exactly once, with the chief's seed values.
    by_id = {tid: v for w in workers for tid, v in w["ran"]}
    for i, seed in enumerate(chief["local_seeds"]):
        got = by_id[str(i)]
        for key, value in seed.items():
            assert got[key] == (pytest.approx(value) if isinstance(value, float) else value), (i, key)
    assert chief["local_seeds"][0]["mae*.epsilon"] == pytest.approx(float(epsilon_for_classes(20)))
    assert chief["trials"] == by_id


# -- issue 11 ------------------------------------------------------------------------------
def test_seed_zero_is_refused_not_silently_random():
    with pytest.raises(ValueError, match="seed=0.*keras-tuner treats 0 as 'no seed'"):
        CalibratedOracle(LossSpace(10, losses=["gce"]), max_trials=2, seed=0)
    assert CalibratedOracle(LossSpace(10, losses=["gce"]), max_trials=2, seed=1).seed == 1


@pytest.mark.parametrize(
    "loss,param,spec",
    [("gce", "q", (0.5, 1.5)), ("aul", "a", (0.5, 2.0)), ("mae*", "epsilon", (0.0, 100.0)), ("sce", "alpha", -1.0)],
)
def test_ranges_outside_a_loss_valid_values_are_refused_when_built(loss, param, spec):
    with pytest.raises(ValueError, match=rf"`ranges\['{re.escape(loss)}'\]\['{param}'\].*refuses"):
        LossSpace(10, losses=[loss], ranges={loss: {param: spec}})


# -- issue 12: keras-tuner's own classes ---------------------------------------------------------


def test_oracles_are_keras_tuner_oracles():
    space = LossSpace(10, losses=["gce", "mae*"])
    random = CalibratedRandomSearchOracle(space, objective="loss", max_trials=3, seed=2)
    bayes = CalibratedBayesianOptimizationOracle(space, objective="loss", max_trials=3, seed=2, num_initial_points=5)
    assert isinstance(random, kt.oracles.RandomSearchOracle) and isinstance(random, CalibratedOracle)
    assert isinstance(bayes, kt.oracles.BayesianOptimizationOracle) and isinstance(bayes, CalibratedOracle)
    assert bayes.num_initial_points == 5 and random.max_trials == 3 and random.seed == 2
    # No wrapped strategy: the oracle is the strategy (nothing copied between two oracles).
    assert not hasattr(random, "strategy")
    # The former interface builds the same classes.
    assert type(CalibratedOracle(space, max_trials=3)) is CalibratedRandomSearchOracle
    assert type(CalibratedOracle(space, strategy="bayesian", max_trials=3)) is CalibratedBayesianOptimizationOracle
    # A strategy instance gives its settings, once.
    plain = kt.oracles.BayesianOptimizationOracle(objective="val_loss", max_trials=7, seed=4, num_initial_points=2)
    built = CalibratedOracle(space, strategy=plain)
    assert type(built) is CalibratedBayesianOptimizationOracle
    assert (built.max_trials, built.seed, built.num_initial_points, built.objective.name) == (7, 4, 2, "val_loss")


def test_tuners_are_keras_tuner_tuners(tmp_path):
    space = LossSpace(10, losses=["gce", "mae*"])

    def build_model(hp):  # keras-tuner builds it once to see the search space
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(10)])
        model.compile(optimizer="sgd", loss=space.build(hp))
        return model

    random = CalibratedRandomSearch(build_model, loss_space=space, objective="loss", max_trials=3, seed=2,
                                    directory=str(tmp_path), project_name="r")
    assert isinstance(random, kt.RandomSearch) and type(random.oracle) is CalibratedRandomSearchOracle
    assert random.seed == 2 and random.oracle.loss_space is space
    bayes = CalibratedBayesianOptimization(build_model, loss_space=space, objective="loss", max_trials=3, seed=2, num_initial_points=2,
                                           beta=3.0, seed_values={"lr": 1e-3}, directory=str(tmp_path), project_name="b")
    assert isinstance(bayes, kt.BayesianOptimization) and type(bayes.oracle) is CalibratedBayesianOptimizationOracle
    assert (bayes.oracle.num_initial_points, bayes.oracle.beta, bayes.oracle.seed_values) == (2, 3.0, {"lr": 1e-3})
    with pytest.raises(TypeError, match="loss_space"):
        CalibratedRandomSearch(build_model, objective="loss", directory=str(tmp_path), project_name="x")


def test_calibrated_bayesian_optimization_searches(tmp_path):
    space = LossSpace(10, losses=["mae*", "gce"])
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 8)).astype("float32"), rng.integers(0, 10, 32)

    def build_model(hp):
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(10)])
        lr = hp.Float("lr", 1e-3, 1e-1, sampling="log", default=1e-2)
        model.compile(optimizer=keras.optimizers.SGD(lr), loss=space.build(hp))
        return model

    tuner = CalibratedBayesianOptimization(build_model, loss_space=space, objective="loss", max_trials=3, seed=5,
                                           num_initial_points=2, local_fraction=0.0, directory=str(tmp_path),
                                           project_name="b")
    tuner.search(x, y, epochs=1, batch_size=32, verbose=0)
    oracle = tuner.oracle
    values = [oracle.trials[t].hyperparameters.values for t in oracle.start_order]
    assert values[0] == {"lr": 1e-2, "loss": "mae*", "mae*.epsilon": pytest.approx(float(epsilon_for_classes(10)))}
    assert values[1] == {"lr": 1e-2, "loss": "gce", "gce.q": 0.7}
    assert len(values) == 3 and values[2] not in values[:2]  # the Gaussian process's proposal
    assert all(oracle.trials[t].status == "COMPLETED" for t in oracle.trials)


def _readme_example():
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    start = text.index("<!-- tuner-example -->")
    block = text[start:].split("```python\n", 1)[1].split("```", 1)[0]
    return block


def test_readme_tuner_example_runs_as_written(tmp_path, monkeypatch, capsys):
    code = _readme_example()
    assert "CalibratedRandomSearch(" in code and "tuner.search(" in code
    monkeypatch.chdir(tmp_path)
    scope = {"__name__": "readme_example"}
    exec(compile(code, "README.md <tuner-example>", "exec"), scope)  # exactly the README's text
    tuner, space = scope["tuner"], scope["space"]
    assert isinstance(tuner, kt.RandomSearch) and (tmp_path / "tuning" / "calibrated").is_dir()
    oracle = tuner.oracle
    assert len(oracle.trials) == 4 and all(t.status == "COMPLETED" for t in oracle.trials.values())
    values = [oracle.trials[t].hyperparameters.values for t in oracle.start_order]
    # What the README's comment says: the first three trials are the seeds.
    assert values[0]["loss"] == "mae*" and values[0]["mae*.epsilon"] == pytest.approx(0.5246, abs=1e-4)
    assert values[1]["loss"] == "gce" and values[1]["gce.q"] == 0.7
    assert values[2]["loss"] == "ce"
    assert [m.split(":")[0] for m in oracle.seed_methods] == ["eq4", "literature", "default"]
    assert space.num_classes == 10 and "lr" in capsys.readouterr().out


@pytest.mark.parametrize("k", [20, 50, 200, 1000])
def test_one_nce_agce_rule_for_the_cli_and_the_tuner(k):
    # `keras-robust calibrate` and the tuner's seed give the same NCE-AGCE at every K.
    from_cli = cli.calibrate(k, samples=256)["nce+agce"]
    from_tuner = seed_parameters("nce+agce", k, samples=256)
    rule = transfer_nce_agce(k, samples=256)
    assert from_cli["feasible"] and from_tuner.method == "matched" and rule.method == "matched"
    for p in ("alpha", "beta", "a", "q"):
        assert from_cli[p] == from_tuner.params[p] == rule.params[p], p
    assert rule.param == "alpha" and from_cli["alpha_se"] == rule.value_se
