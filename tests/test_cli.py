"""The keras-robust command line: calibrate, curves, figures, train/report delegation, bad input."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from keras_robust import cli, experiments
from keras_robust.calibration import LogitModel, epsilon_for_classes

ROOT = Path(__file__).resolve().parents[1]


def test_calibrate_1000(capsys):
    assert cli.main(["calibrate", "--classes", "1000", "--samples", "256"]) == 0
    out = capsys.readouterr().out
    eps = re.search(r"epsilon\(K\) = ([0-9.]+)", out).group(1)
    assert eps == f"{epsilon_for_classes(1000):.6f}"
    q = float(re.search(r"genCE: q = ([0-9.]+)", out).group(1))
    assert q == pytest.approx(0.48, abs=0.01)  # paper Sec. 3.3
    # One rule with the tuner (keras_robust.calibration.transfer_nce_agce): the paper's K = 1000
    # shape beta = 0.7, a = q = 0.05 kept, alpha solved; the paper's appendix 4 chose alpha = 100.
    m = re.search(r"NCE-AGCE: alpha = ([0-9.]+) \+- [0-9.]+, beta = 0.7, a = 0.05, q = 0.05", out)
    assert m and 90 < float(m.group(1)) < 115
    assert "q = 0.7 at K = 100" in out and "CIFAR-100" in out  # says which reference


def test_calibrate_json_options(capsys):
    args = ["calibrate", "-K", "100", "--target", "0.3", "--logit-std", "2", "--samples", "64", "--json"]
    assert cli.main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["mae*"]["epsilon"] == pytest.approx(
        epsilon_for_classes(100, target=0.3, logits=LogitModel(std=2.0)), abs=1e-12)
    assert result["gce"]["feasible"] is True
    assert result["logits"] == {"mean": 0.0, "std": 2.0}


def test_calibrate_infeasible_transfer_is_reported(capsys):
    # K = 10 < 100: keeping genCE's <delta_k>(0) would need q > 1.
    assert cli.main(["calibrate", "--classes", "10", "--samples", "64", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["gce"]["feasible"] is False and "No q in bracket" in result["gce"]["reason"]
    assert result["mae*"]["epsilon"] == pytest.approx(epsilon_for_classes(10), abs=1e-12)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["calibrate", "--classes", "1"], "--classes must be an integer >= 2, got 1"),
        (["calibrate", "--classes", "ten"], "must be an integer, got 'ten'"),
        (["calibrate", "--classes", "10", "--target", "1.5"], "--target must lie in (0, 1), got 1.5"),
        (["calibrate", "--classes", "10", "--target", "0"], "--target must lie in (0, 1), got 0"),
        (["calibrate", "--classes", "10", "--logit-std", "-1"], "`std` must be > 0"),
        (["calibrate"], "--classes"),
        (["curves", "--classes", "10", "--losses", "ce,nope", "--out", "x.png"], "unknown loss 'nope'"),
        (["curves", "--classes", "10", "--losses", ",", "--out", "x.png"], "--losses must list"),
        (["train", "--set", "nonsense"], "--set expects FIELD=VALUE"),
        (["train", "--set", "colour=1"], "unknown RunConfig field(s) ['colour']"),
        (["fly"], "invalid choice: 'fly'"),
    ],
)
def test_bad_input_exits_2(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("keras-robust: error: ") and message in err
    assert "Traceback" not in err


def test_curves_writes_png(tmp_path, capsys):
    import matplotlib.image

    out = tmp_path / "c.png"
    assert cli.main(["curves", "--classes", "20", "--losses", "ce,mae*,gce", "--out", str(out), "--samples", "16"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert out.stat().st_size > 1000 and matplotlib.image.imread(str(out)).shape[0] > 100


def test_figures_writes_into_folder(tmp_path, monkeypatch, capsys):
    from keras_robust import plots

    monkeypatch.setattr(plots, "FIGURES", {"eps.png": lambda path: plots.epsilon_figure(num_classes=[2, 5], path=path)})
    assert cli.main(["figures", "--out", str(tmp_path / "f")]) == 0
    assert (tmp_path / "f" / "eps.png").stat().st_size > 1000
    assert "eps.png" in capsys.readouterr().out


def test_train_and_report_delegate(tmp_path, monkeypatch, capsys):
    seen = {}

    def fake_run(config, results_dir, **kwargs):
        seen["config"], seen["dir"], seen["kwargs"] = config, results_dir, kwargs
        return {"run_id": config.run_id, "epochs": [{"epoch": 1, "test_accuracy": 0.5}]}

    monkeypatch.setattr(experiments, "run", fake_run)
    monkeypatch.setattr(experiments, "report", lambda results_dir, out_dir=None: {"markdown": f"TABLE {results_dir}"})
    argv = ["train", "--dataset", "fashion_mnist", "--loss", "mae*", "--loss-params", '{"epsilon": 1.5}',
            "--noise-rate", "0.2", "--epochs", "3", "--set", "limit=100", "--results", str(tmp_path)]
    assert cli.main(argv) == 0
    config = seen["config"]
    assert isinstance(config, experiments.RunConfig) and seen["dir"] == str(tmp_path)
    assert (config.loss, config.noise_rate, config.epochs, config.limit) == ("mae*", 0.2, 3, 100)
    assert config.loss_params == {"epsilon": 1.5}
    assert seen["kwargs"] == {"distribute": "auto", "force": False, "stop_on_stall": False}
    assert json.loads(capsys.readouterr().out)["run_id"] == config.run_id
    assert cli.main([*argv, "--force", "--stop-on-stall", "--no-distribute"]) == 0
    assert seen["kwargs"] == {"distribute": False, "force": True, "stop_on_stall": True}
    capsys.readouterr()

    def busy(config, results_dir, **kwargs):
        raise experiments.RunError(f"{config.run_id} is being trained by another process")

    monkeypatch.setattr(experiments, "run", busy)
    assert cli.main(argv) == 2
    assert "is being trained by another process" in capsys.readouterr().err
    assert cli.main(["report", "--results", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == f"TABLE {tmp_path}"


def test_module_entry_point_subprocess():
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    ok = subprocess.run([sys.executable, "-m", "keras_robust.cli", "calibrate", "--classes", "50", "--samples", "32",
                         "--json"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr[-2000:]
    result = json.loads(ok.stdout[ok.stdout.index("{"):])
    assert result["num_classes"] == 50
    assert result["mae*"]["epsilon"] == pytest.approx(epsilon_for_classes(50), abs=1e-12)


def test_calibrate_huge_k_gives_epsilon_and_refuses_the_transfers_cleanly(capsys):
    import time

    t0 = time.perf_counter()
    assert cli.main(["calibrate", "--classes", "100000000", "--json"]) == 0
    assert time.perf_counter() - t0 < 30  # measured ~0.1 s: no Monte-Carlo array of samples * K floats
    result = json.loads(capsys.readouterr().out)
    assert result["mae*"]["epsilon"] == pytest.approx(epsilon_for_classes(100_000_000), abs=1e-12)
    for key in ("gce", "nce+agce"):
        assert result[key]["feasible"] is False and "samples * K" in result[key]["reason"]
    assert cli.main(["calibrate", "--classes", "100000000"]) == 0
    assert "no transfer" in capsys.readouterr().out


def test_os_errors_and_missing_results_exit_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert cli.main(["figures", "--out", str(blocker / "figs")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("keras-robust: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert cli.main(["report", "--results", str(tmp_path / "missing")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_preflight_saved_model(tmp_path, capsys):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((784,))
    model = keras.Model(inputs, keras.layers.Dense(1000)(inputs))
    path = str(tmp_path / "m.keras")
    model.save(path)
    base = ["preflight", "--model", path, "--data", "random", "--batch", "64"]
    assert cli.main(base + ["--loss", "mae", "--classes", "1000"]) == 1  # exit 1: will not learn
    out = capsys.readouterr().out
    assert "DOES NOT LEARN" in out and "fix: MAEStar(epsilon=" in out
    assert cli.main(base + ["--loss", "mae*", "--classes", "1000", "--optimizer", "adam", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["learns"] is True and report["adaptive_optimizer"] is True and report["num_classes"] == 1000
    assert cli.main(base + ["--loss", "mae", "--classes", "10"]) == 2  # the model outputs 1000
    err = capsys.readouterr().err
    assert err.startswith("keras-robust: error: ") and "outputs 1000 logits" in err and "num_classes=10" in err
    assert cli.main(base + ["--loss", "mae", "--data", "nowhere"]) == 2
    assert "--data must be" in capsys.readouterr().err


def test_version_matches_the_package_metadata(capsys):
    import tomllib
    from importlib import metadata

    import keras_robust

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert keras_robust.__version__ == declared
    try:
        assert metadata.version("keras-robust") == declared
    except metadata.PackageNotFoundError:  # a source tree that is not installed
        pass
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"keras-robust {declared}"


_MISSING = r"""
import contextlib, io, json, sys
blocked = sys.argv[1].split(",")
for name in blocked:
    sys.modules[name] = None  # `import name` raises ModuleNotFoundError, as when it is not installed
import keras
from keras_robust import cli
inputs = keras.Input((3072,))
keras.Model(inputs, keras.layers.Dense(10)(inputs)).save(sys.argv[2] + "/m.keras")
out = {}
for key, argv in [
    ("matplotlib", ["curves", "--classes", "10", "--out", sys.argv[2] + "/c.png", "--samples", "8"]),
    ("PIL", ["preflight", "--model", sys.argv[2] + "/m.keras", "--data", "cifar10", "--batch", "8"]),
    ("tensorflow_datasets", ["preflight", "--model", sys.argv[2] + "/m.keras", "--data", "cifar100"]),
]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        out[key] = [cli.main(argv), err.getvalue()]
print("RESULT " + json.dumps(out))
"""


def test_missing_optional_packages_give_one_line_and_exit_2(tmp_path):
    # A fresh cache (the images must be decoded: pillow) and no prepared TFDS data (CIFAR-100 has no
    # offline copy: TFDS would be next). The blocked imports fail before any download is attempted.
    env = dict(os.environ, PYTHONPATH=str(ROOT), KERAS_ROBUST_CACHE=str(tmp_path / "cache"),
               TFDS_DATA_DIR=str(tmp_path / "tfds"), KERAS_HOME=str(tmp_path / "kh"))
    env.pop("KERAS_ROBUST_NO_DOWNLOAD", None)
    proc = subprocess.run([sys.executable, "-c", _MISSING, "matplotlib,PIL,tensorflow_datasets", str(tmp_path)],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT ", 1)[1])
    hints = {"matplotlib": "keras-robust[plots]", "PIL": "pip install pillow",
             "tensorflow_datasets": "keras-robust[datasets]"}
    for name, (code, err) in result.items():
        assert code == 2, (name, err)
        assert err.count("\n") == 1 and err.startswith("keras-robust: error: ") and "Traceback" not in err, err
        assert f"optional package {name!r}" in err and hints[name] in err, err


def test_missing_package_message_names_the_extra():
    for name, extra in (("keras_tuner", "keras-robust[tuner]"), ("matplotlib.pyplot", "keras-robust[plots]"),
                        ("torch", "constraints-cpu.txt"), ("somethingelse", "pip install somethingelse")):
        message = cli.missing_package_message(ModuleNotFoundError(f"No module named {name!r}", name=name))
        assert f"optional package {name.split('.')[0]!r}" in message and extra in message
    assert "failed to import" in cli.missing_package_message(ImportError("cannot import name 'x'"))
