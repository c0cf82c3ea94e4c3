"""Runs that must not lose work or fail silently: every noise kind, an epoch's
checkpoint as one atomic commit, one process per run, damaged checkpoints named,
grids that go on, and the not-learning monitor (issues 10 and 11)."""

import json
import math
import os
import warnings
from pathlib import Path

import keras

import numpy as np
import pytest

from keras_robust import experiments as ex
from keras_robust.experiments import checkpoint, runs
from keras_robust import losses as L
from keras_robust.monitor import LearningMonitor, NotLearningWarning, uniform_loss


def _small(loss="ce", **kw):
    base = dict(noise="symmetric", noise_rate=0.4, epochs=1, limit=320, test_limit=200)
    base.update(kw)
    return ex.paper_config("fashion_mnist", "mlp1024", loss, **base)


def _strip(history):
    return [{k: v for k, v in e.items() if k != "seconds"} for e in history["epochs"]]


# -- noise kinds ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, exclude, expected", [
    ("asymmetric", False, None), ("symmetric", True, 80), ("symmetric", False, None), ("none", False, 0)])
def test_every_noise_kind_runs(kind, exclude, expected, tmp_path):
    rate = 0.0 if kind == "none" else 0.4
    h = ex.run(_small(noise=kind, noise_rate=rate, noise_exclude_true=exclude, limit=200, test_limit=50),
               tmp_path, verbose=0)
    assert h["finished"]
    if expected is None:
        assert 0 < h["num_noisy"] < 80
    else:
        assert h["num_noisy"] == expected  # other-class noise: every relabelled example is wrong


def test_clipnorm_reaches_the_optimizer(tmp_path):
    h = ex.run(_small(clipnorm=5.0, limit=64, test_limit=20), tmp_path, verbose=0)
    assert h["config"]["clipnorm"] == 5.0
    model, _ = runs.build(_small(clipnorm=5.0), 10, (784,))
    assert model.optimizer.global_clipnorm == 5.0
    with pytest.raises(ValueError, match="clipnorm"):
        _small(clipnorm=-1.0)


# -- atomic checkpoints ----------------------------------------------------------------------------
class _KillAtCommit:
    """Raise (like a SIGKILL) inside `os.replace` when epoch ``epoch``'s commit names LATEST."""

    def __init__(self, epoch):
        self.epoch, self.real = epoch, os.replace

    def __call__(self, src, dst):
        if str(dst).endswith("LATEST") and f"epoch-{self.epoch:04d}" in open(src).read():
            raise KeyboardInterrupt("killed before the commit")
        return self.real(src, dst)


def test_a_kill_before_the_commit_retrains_that_epoch_once(tmp_path, monkeypatch):
    c = _small("ce", epochs=2, limit=256)
    full = ex.run(c, tmp_path / "a", verbose=0)
    monkeypatch.setattr(os, "replace", _KillAtCommit(2))
    with pytest.raises(KeyboardInterrupt):
        ex.run(c, tmp_path / "b", verbose=0)
    monkeypatch.undo()
    out = tmp_path / "b" / full["run_id"]
    # weights, optimizer and history of epoch 2 were written, but not committed
    assert (out / "checkpoint" / "LATEST").read_text().strip() == "epoch-0001"
    resumed = ex.run(c, tmp_path / "b", verbose=0)
    a, b = _strip(full), _strip(resumed)
    assert [e["epoch"] for e in b] == [1, 2]
    for ea, eb in zip(a, b):
        for k in ea:
            assert (eb[k] is None) if ea[k] is None else eb[k] == pytest.approx(ea[k], rel=1e-5, abs=1e-6), k


def test_a_run_is_trained_by_one_process_at_a_time(tmp_path, capsys):
    c = _small("ce", limit=64, test_limit=20)
    out = ex.run_dir(c, tmp_path)
    out.mkdir(parents=True)
    with checkpoint.RunLock(out, c.replace(backend=keras.backend.backend())):
        with pytest.raises(ex.RunError, match="being trained by pid"):
            ex.run(c, tmp_path, verbose=0)
        # a grid skips it, runs the others, and lists it at the end
        other = _small("mae", limit=64, test_limit=20)
        hs = ex.grid([c, other], tmp_path, verbose=0)
    assert sorted("error" in h for h in hs) == [False, True]
    # the history copy inside the checkpoint is not a second run
    assert [h["run_id"] for h in ex.load_histories(tmp_path)] == [other.replace(backend=c.backend or
                                                                                keras.backend.backend()).run_id]
    assert "1 of 2 runs could not run" in capsys.readouterr().err
    assert ex.run(c, tmp_path, verbose=0)["finished"]  # the lock went with its holder


# -- damaged checkpoints ---------------------------------------------------------------------------
def _interrupted(tmp_path, c):
    class Kill(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ex.run(c, tmp_path, callbacks=[Kill()], verbose=0)
    ckpt = ex.run_dir(c, tmp_path) / "checkpoint"
    return ckpt / (ckpt / "LATEST").read_text().strip()


@pytest.mark.parametrize("victim", ["optimizer.npz", "model.weights.h5", "state.json", "history.json"])
def test_a_truncated_file_is_named_and_force_restarts(victim, tmp_path):
    c = _small("ce", epochs=2, limit=64, test_limit=20)
    folder = _interrupted(tmp_path, c)
    data = (folder / victim).read_bytes()
    (folder / victim).write_bytes(data[: len(data) // 3])
    run_id = ex.run_dir(c, tmp_path).name
    with pytest.raises(ex.RunError, match=rf"{run_id}.*{victim} is damaged.*--force"):
        ex.run(c, tmp_path, verbose=0)
    h = ex.run(c, tmp_path, verbose=0, force=True)
    assert h["finished"] and [e["epoch"] for e in h["epochs"]] == [1, 2]


def test_a_missing_checkpoint_is_not_a_silent_restart(tmp_path):
    c = _small("ce", epochs=2, limit=64, test_limit=20)
    folder = _interrupted(tmp_path, c)
    (folder.parent / "LATEST").unlink()
    with pytest.raises(ex.RunError, match="LATEST.*missing"):
        ex.run(c, tmp_path, verbose=0)


def test_a_history_without_its_checkpoint_folder_restarts_and_says_so(tmp_path, capsys):
    """A fresh clone has an interrupted run's history.json but no checkpoint (not committed): the run
    trains again from epoch 0, warns, and records why, instead of being skipped as damaged forever."""
    import shutil

    c = _small("ce", epochs=2, limit=64, test_limit=20)
    folder = _interrupted(tmp_path, c)
    shutil.rmtree(folder.parent)
    assert (folder.parent.parent / "history.json").is_file()
    h = ex.run(c, tmp_path, verbose=1)
    assert h["finished"] and [e["epoch"] for e in h["epochs"]] == [1, 2]
    assert any("restarted from epoch 0" in w and "checkpoint" in w for w in h["warnings"])
    assert "WARNING restarted from epoch 0" in capsys.readouterr().out
    assert ex.run(c, tmp_path, verbose=0)["warnings"] == h["warnings"]  # finished: not restarted again


# -- the not-learning monitor ----------------------------------------------------------------------
def _probe_model(k, scale):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(k)])
    w = np.random.default_rng(0).standard_normal((4, k)).astype("float32")
    model.layers[0].set_weights([scale * w, np.zeros(k, "float32")])
    model.compile(loss=L.CrossEntropy())
    return model


def test_monitor_warns_once_records_and_stops():
    k = 10
    loss = L.NCEMAE(alpha=1.0, beta=20.0)
    uniform = uniform_loss(loss, k)
    assert uniform == pytest.approx(0.1 + 20 * 2 * 0.9, rel=1e-6)  # NCE + beta MAE at a uniform prediction
    cb = LearningMonitor(k, probe=np.ones((8, 4), "float32"), loss=loss, stop=True)
    cb.set_model(_probe_model(k, 1e4))  # saturated: logits of size 1e4
    logs = {"accuracy": 0.1, "loss": uniform}
    with pytest.warns(NotLearningWarning, match=r"not learning after epoch 3.*uniform prediction.*exploded.*clipnorm"):
        cb.on_epoch_end(2, logs)
    assert logs["not_learning"] == 1.0 and logs["logit_spread"] > 1000 and cb.model.stop_training
    assert len(cb.findings) == 1 and cb.findings[0]["epoch"] == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotLearningWarning)
        cb.on_epoch_end(3, dict(logs))  # still stuck: no second warning


def test_monitor_warns_when_logits_explode_above_chance():
    # NCE+AGCE on CIFAR-10 (lr 0.001, 40 % noise) sat at 13-14 % training accuracy, above chance + margin, with
    # logit spreads of 1,000-6,000 and a loss away from its uniform value: a failed run the at-chance test missed.
    k = 10
    cb = LearningMonitor(k, probe=np.ones((8, 4), "float32"), loss=L.NCEAGCE(), stop=True)
    cb.set_model(_probe_model(k, 1e4))
    logs = {"accuracy": 0.137, "loss": 8.9}
    with pytest.warns(NotLearningWarning, match=r"failing after epoch 5: training accuracy 13\.7 %, "
                                                r"logits exploded \(mean per-example spread .*clipnorm"):
        cb.on_epoch_end(4, logs)
    assert "uniform prediction" not in cb.findings[0]["message"] and "chance" not in cb.findings[0]["message"]
    assert logs["not_learning"] == 1.0 and cb.model.stop_training
    assert cb.findings[0]["kind"] == "failing" and cb.findings[0]["logit_spread"] > 1000
    quiet = LearningMonitor(k, probe=np.ones((8, 4), "float32"), loss=L.NCEAGCE())
    quiet.set_model(_probe_model(k, 1.0))  # same accuracy and loss, ordinary logits: a slow run, not a failed one
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotLearningWarning)
        quiet.on_epoch_end(4, dict(logs))
    assert quiet.findings == []


@pytest.mark.parametrize("logs", [{"accuracy": 0.8, "loss": 36.1}, {"accuracy": 0.1, "loss": 12.0}])
def test_monitor_is_quiet_when_learning_or_merely_slow(logs):
    cb = LearningMonitor(10, probe=np.ones((8, 4), "float32"), loss=L.NCEMAE(beta=20.0))
    cb.set_model(_probe_model(10, 1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotLearningWarning)
        cb.on_epoch_end(0, logs)
    assert logs["not_learning"] == 0.0 and cb.findings == []


def test_monitor_subtracts_the_regularisation_penalty():
    # Zero inputs: logits = bias = 0, a uniform prediction; the L2 penalty on the (non-zero) kernel is
    # part of the logged loss. Frozen (lr 0) at chance: the monitor must see through the penalty.
    k = 10
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(k, kernel_regularizer=keras.regularizers.L2(0.5))])
    model.layers[0].set_weights([np.full((4, k), 0.3, "float32"), np.zeros(k, "float32")])
    model.compile(loss=L.CrossEntropy(), optimizer=keras.optimizers.SGD(0.0), metrics=["accuracy"])
    x, y = np.zeros((40, 4), "float32"), np.arange(40) % k
    cb = LearningMonitor(k, probe=x[:8])
    with pytest.warns(NotLearningWarning, match=r"less the regularisation penalty 1\.8 = its value at a uniform prediction \(2\.303\)"):
        history = model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[cb])
    penalty = 0.5 * 40 * 0.3**2
    assert cb.penalty() == pytest.approx(penalty, rel=1e-5)
    assert history.history["loss"][0] == pytest.approx(math.log(k) + penalty, rel=1e-4)  # what Keras logs
    assert cb.findings[0]["loss"] == pytest.approx(history.history["loss"][0], rel=1e-6)
    assert cb.findings[0]["penalty"] == pytest.approx(penalty, rel=1e-5)


def test_monitor_bad_arguments():
    for kw, name in (({"num_classes": 1}, "num_classes"), ({"num_classes": 10, "patience": 0}, "patience"),
                     ({"num_classes": 10, "rtol": -1.0}, "rtol"), ({"num_classes": 10, "stop": "yes"}, "stop")):
        with pytest.raises(ValueError, match=name):
            LearningMonitor(**kw)


def test_monitor_config_round_trip():
    cb = LearningMonitor(242, patience=3, chance_margin=0.05, rtol=0.01, max_logit_spread=50.0, stop=True,
                         accuracy_key="acc")
    back = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(cb))
    assert type(back) is LearningMonitor and back is not cb
    assert back.get_config() == cb.get_config() == {
        "num_classes": 242, "patience": 3, "chance_margin": 0.05, "rtol": 0.01, "max_logit_spread": 50.0,
        "stop": True, "accuracy_key": "acc"}


def test_a_run_that_cannot_learn_says_so_and_stops(tmp_path, capsys):
    # lr 1.0 with beta = 20 on 1 - a_k: the softmax saturates in the first epoch
    c = _small("nce+mae", epochs=4, lr=1.0, loss_params={"beta": 20.0, "mae_form": "reduced"}, limit=640)
    with pytest.warns(NotLearningWarning):
        h = ex.run(c, tmp_path, stop_on_stall=True)
    assert h["finished"] and h["stopped_early"].startswith("not learning") and len(h["epochs"]) < 4
    assert "WARNING keras_robust: not learning" in capsys.readouterr().out
    assert json.loads((ex.run_dir(c, tmp_path) / "history.json").read_text())["warnings"] == h["warnings"]


def test_fields_added_later_leave_existing_run_ids_alone():
    import hashlib
    import json as _json

    c = _small("ce").replace(backend="jax")
    d = c.to_dict()
    del d["labels"], d["l2"]  # a run recorded before the fields existed
    digest = hashlib.sha1(_json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:8]
    assert c.run_id.endswith(digest)
    human = ex.paper_config("cifar10", "mlp1024", "ce", noise="human", labels="worse", backend="jax")
    assert human.run_id != human.replace(labels="aggre").run_id  # once set, it counts


# -- unlearned classes (a bounded loss's dead classes) ---------------------------------------------
def test_held_out_evaluation_counts_unlearned_classes():
    # Synthetic inputs: the property needed is a model that predicts class 0 for every image.
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(
        3, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant([2.0, 0.0, 0.0]))])
    x, y = np.ones((6, 4), "float32"), np.array([0, 0, 1, 1, 1, 2])
    cb = runs.HeldOutEvaluation(L.get("mae", num_classes=3), x, y)
    cb.set_model(model)
    logs = {}
    cb.on_epoch_end(0, logs)
    assert logs["test_class_accuracy"] == [1.0, 0.0, 0.0] and logs["unlearned_classes"] == 2
    assert logs["test_accuracy"] == pytest.approx(2 / 6)


def test_unlearned_warning_names_the_classes():
    assert runs._unlearned_warning([0.5, 0.9, None]) is None  # a class absent from the test set is not dead
    message = runs._unlearned_warning([0.5, 0.0, None, 0.0])
    assert message.startswith("2 of 4 classes are never predicted correctly") and "class ids 1, 3)" in message
    assert "logit bias" in message
    many = runs._unlearned_warning([0.0] * 25)
    assert "class ids 0, 1," in many and "19, ...)" in many


def test_a_run_records_per_class_accuracy_and_warns_about_dead_classes(tmp_path, capsys):
    # MAE after one short epoch (10 steps) still misses several classes on every backend (4-7 of 10)
    h = ex.run(_small("mae", epochs=1, limit=320, test_limit=200), tmp_path)
    per_class, last = h["test_class_accuracy"], h["epochs"][-1]
    assert len(per_class) == 10 and last["unlearned_classes"] == sum(a == 0 for a in per_class) > 0
    counts = np.bincount(ex.data.load_data(_small("mae", limit=320, test_limit=200))[5], minlength=10)
    assert sum(a * n for a, n in zip(per_class, counts) if a is not None) / counts.sum() == pytest.approx(
        last["test_accuracy"])
    dead = [w for w in h["warnings"] if "never predicted correctly" in w]
    assert len(dead) == 1 and dead[0].startswith(f"{last['unlearned_classes']} of 10 classes")
    out = capsys.readouterr().out
    assert "WARNING " + dead[0] in out and f"unlearned {last['unlearned_classes']}" in out


# -- provenance: which code trained a run ----------------------------------------------------------
def test_a_run_records_the_code_and_packages_that_trained_it(tmp_path, monkeypatch):
    import platform
    import subprocess

    from keras_robust.experiments import provenance

    c = _small("ce", epochs=1, limit=64, test_limit=20)
    h = ex.run(c, tmp_path, verbose=0)
    (env,) = h["environments"]
    backend = keras.backend.backend()
    assert env["backend"] == backend and env["keras"] == keras.__version__ and env[backend]
    assert env["numpy"] == np.__version__ and env["python"] == platform.python_version()
    root = Path(provenance.__file__).resolve().parents[2]  # a checkout (editable install) or site-packages
    git = [subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
           for args in (["rev-parse", "--show-toplevel"], ["rev-parse", "HEAD"])]
    ours = git[0].returncode == 0 and Path(git[0].stdout.strip()).resolve() == root
    assert env["commit"] == (git[1].stdout.strip() if ours else None)
    assert json.loads((ex.run_dir(c, tmp_path) / "history.json").read_text())["environments"] == [env]
    # a later process appends its entry only when something differs
    assert provenance.record({"environments": [env]})["environments"] == [env]
    monkeypatch.setattr(provenance, "environment", lambda: {**env, "keras": "0.0"})
    assert provenance.record({"environments": [env]})["environments"] == [env, {**env, "keras": "0.0"}]
    monkeypatch.undo()
    monkeypatch.setattr(provenance, "_git", lambda *args: None)  # e.g. installed from a wheel
    assert provenance.environment()["commit"] is None and provenance.environment()["modified"] is None
    # installed in site-packages inside some other repository: that repository's commit is not ours
    monkeypatch.setattr(provenance, "_git", lambda *args: "/elsewhere" if "--show-toplevel" in args else "f" * 40)
    assert provenance.environment()["commit"] is None
