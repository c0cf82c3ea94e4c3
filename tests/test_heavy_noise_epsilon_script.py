"""benchmarks/heavy_noise_epsilon.py (issue 15 item 5) at tiny size, on the suite's backend.

A 20-class teacher task (256 examples, 4 epochs, 40 % noise), CE and MAE with
each epsilon schedule: the epsilon every schedule actually applied per epoch
(read back from the history) against its definition, the record's fields, the
table and plot, and that a second run trains nothing.
"""

import importlib.util
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_robust.calibration import epsilon_for_classes

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("heavy_noise_epsilon_script", ROOT / "benchmarks" / "heavy_noise_epsilon.py")
script = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(script)

K, EPOCHS = 20, 4
TINY = ["--tasks", f"teacher{K}", "--losses", "mae*", "--references", "ce", "--seeds", "0",
        "--n-train", "256", "--epochs", str(EPOCHS)]


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    out = tmp_path_factory.mktemp("heavy_noise_epsilon")
    assert script.main([*TINY, "--out", str(out)]) == 0
    return out


def _cells(out):
    return {c["schedule"] or c["loss"]: c for c in script.load_cells(out)}


def test_cells_and_fields(out):
    cells = _cells(out)
    assert sorted(cells) == sorted(["ce", *script.SCHEDULES])
    for c in cells.values():
        assert c["task"] == f"teacher{K}" and c["num_classes"] == K and c["epochs"] == EPOCHS
        assert c["backend"] == keras.backend.backend()
        assert c["wrong_label_fraction"] == pytest.approx(0.4, abs=1 / 256)
        assert len(c["history"]["val_accuracy"]) == EPOCHS
        assert c["test_accuracy"] == c["history"]["val_accuracy"][-1]
        assert c["best_test_accuracy"] == max(c["history"]["val_accuracy"])
        for m in ("clean_train_accuracy", "memorised"):
            assert 0.0 <= c[m] <= 1.0
    assert "epsilon" not in cells["ce"]["history"]


def test_each_schedule_applied_its_epsilon(out):
    cells = _cells(out)
    eps = float(epsilon_for_classes(K))
    applied = {s: np.array(cells[s]["history"]["epsilon"]) for s in script.SCHEDULES}
    np.testing.assert_allclose(applied["fixed"], eps, rtol=1e-6)
    np.testing.assert_allclose(applied["wean"], [round(eps * r, 4) for r in script.WEAN_RATIOS[:EPOCHS]], rtol=1e-6)
    np.testing.assert_allclose(applied["anneal"], eps * (1 - np.arange(EPOCHS) / (EPOCHS - 1)), rtol=1e-6, atol=1e-7)
    # The measured ones start at epsilon(K), never increase, and follow their rule from the logged probability.
    for name in ("adaptive", "pdecay"):
        a = applied[name]
        assert a[0] == pytest.approx(eps) and np.all(np.diff(a) <= 1e-9)
    p = np.array(cells["pdecay"]["history"]["true_class_probability"])
    want = [eps]
    for t in range(EPOCHS - 1):
        want.append(min(want[-1], eps * max(0.0, 1 - p[t] / script.PDECAY_STOP)))
    np.testing.assert_allclose(applied["pdecay"], want, rtol=1e-5)


def test_summary_plot_and_resume(out, capsys):
    text = script.summary(out)
    assert f"teacher{K} (K = {K}" in text and "| MAE + ε | paper's weaning |" in text and "| CE | – |" in text
    png = script.plot(out, out / "curves.png")
    assert png.stat().st_size > 1000
    before = {f: f.stat().st_mtime_ns for f in (out / "cells").glob("*.json")}
    capsys.readouterr()
    assert script.main([*TINY, "--out", str(out)]) == 0
    assert capsys.readouterr().out.count("finished earlier, skipped") == len(before)
    assert {f: f.stat().st_mtime_ns for f in (out / "cells").glob("*.json")} == before


def test_bad_arguments(tmp_path, capsys):
    for bad, match in ((["--schedules", "cosine"], "unknown schedule 'cosine'"),
                       (["--losses", "ce"], "unknown loss 'ce'"), (["--noise", "1.5"], "--noise must lie"),
                       (["--schedules", "pdecay-2"], "unknown schedule 'pdecay-2'")):
        with pytest.raises(SystemExit):
            script.main([*TINY, "--out", str(tmp_path), *bad])
        assert match in capsys.readouterr().err
    assert not (tmp_path / "cells").exists()
    with pytest.raises(ValueError, match="Unknown schedule"):
        script.build_schedule("cosine", 1.0, 10)


def test_pdecay_stop_variants():
    assert script.build_schedule("pdecay", 2.0, 10).stop == script.PDECAY_STOP
    assert script.build_schedule("pdecay-0.3", 2.0, 10).stop == 0.3
    assert script.schedule_label("pdecay-0.3") == "p-decay, stop 0.3"
    assert script.pdecay_stop("pdecay-x") is None and script.pdecay_stop("pdecay-0") is None
