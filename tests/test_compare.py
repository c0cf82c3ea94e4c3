"""The side-by-side report against the paper's tables: which runs count, the statistics, the flag rule."""

import json
import math
from pathlib import Path

import pytest

from keras_robust import experiments as ex
from recipes import compare


def _run(path, loss, rate, seed, acc, **overrides):
    noise = "symmetric" if rate else "none"
    c = ex.paper_config("fashion_mnist", "mlp1024", loss, noise=noise, noise_rate=rate, seed=seed, epochs=2,
                        backend="jax", **overrides)
    d = Path(path) / c.run_id
    d.mkdir(parents=True)
    rows = [{"epoch": e, "test_accuracy": a} for e, a in ((1, 0.1), (2, acc))]
    (d / "history.json").write_text(json.dumps({"config": c.to_dict(), "epochs": rows, "finished": True}))


def test_paper_values_file_is_complete():
    paper = compare.paper_values()
    a3 = [k for k in paper if k[0] == "A3"]
    assert len(a3) == 2 * 8 * 5  # two data sets, eight losses, five noise rates
    assert paper[("A3", "fashion_mnist", "mlp1024", "ce", 0.4, None)] == (63.04, 0.34)
    assert paper[("A2", "fashion_mnist", "mlp1024", "nce+mae", 0.0, 0.005)] == (43.06, 8.93)


def test_cells_statistics_and_flags(tmp_path):
    # CE at 40 %: 63.0, 64.0, 65.0 -> mean 64.0, s.e.m. 1/sqrt(3) = 0.577; paper 63.04 +- 0.34:
    # |delta| = 0.96 < max(1.5, 3 * sqrt(0.34^2 + 0.577^2) = 2.01): agrees
    for seed, acc in enumerate((0.63, 0.64, 0.65)):
        _run(tmp_path, "ce", 0.4, seed, acc)
    # MAE* clean: 85.0 and 85.2 (s.e.m. 0.1) vs 89.55 +- 0.03: delta -4.45, tolerance 1.5: flagged
    _run(tmp_path, "mae*", 0.0, 0, 0.850)
    _run(tmp_path, "mae*", 0.0, 1, 0.852)
    # not the paper configuration (another learning rate): left out
    _run(tmp_path, "mae*", 0.0, 2, 0.10, lr=0.03)
    rows = {(r["loss"], r["rate"]): r for r in compare.compare(compare.paper_values(),
                                                                compare.our_values(tmp_path, epochs=2))}
    ce, star = rows[("ce", 0.4)], rows[("mae*", 0.0)]
    assert (ce["n"], ce["ours"], ce["ours_se"]) == (3, pytest.approx(64.0), pytest.approx(1 / math.sqrt(3)))
    assert ce["tolerance"] == pytest.approx(3 * math.sqrt(0.34**2 + 1 / 3)) and ce["agrees"]
    assert (star["n"], star["delta"], star["tolerance"]) == (2, pytest.approx(-4.45), 1.5) and not star["agrees"]
    md = compare.markdown(list(rows.values()), "t", 2)
    assert "2 cells compared; **1 (50 %) agree**" in md and "| fashion_mnist | CE | 40 % | 63.04 ± 0.34 |" in md


def test_learning_rate_cells_take_their_own_explanation():
    # A flagged Table 2 cell (clean, lr 0.005) is explained under its learning rate; the same data set,
    # loss and noise rate in Table 3 (no learning rate) does not borrow that explanation.
    row = {"dataset": "fashion_mnist", "loss": "nce+mae", "rate": 0.0, "lr": 0.005, "paper": 43.06,
           "paper_se": 8.93, "ours": 11.54, "ours_se": float("nan"), "n": 1, "delta": -31.52, "agrees": False}
    by_lr = compare.markdown([row], "t", 50, by_lr=True)
    assert "| 0.005 |" in by_lr and "mixes runs that collapse" in by_lr
    table3 = compare.markdown([dict(row, lr=None)], "t", 50)
    assert "| 0 % |" in table3 and "**✗** open |" in table3 and "collapse" not in table3
