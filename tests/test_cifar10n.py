"""CIFAR-10N: the alignment of the human labels with the images (verified on the images), bad label
files, and runs with real human noise and with synthetic noise from its transition matrix."""

import math

import numpy as np
import pytest

from keras_robust import datasets
from keras_robust import experiments as ex
from keras_robust.datasets import cifar10n
from recipes.cifar10n_check import mapping_check


def test_alignment_is_verified_on_the_images():
    # A model trained on clean labels is less confident, within each class, on images whose human label is
    # wrong; with the labels shuffled within each class (a wrong alignment) the gap vanishes.
    r = mapping_check(n_train=8000, n_eval=10000, epochs=2, verbose=0)
    (gap, se), (shuffled, se_s) = r["gap"], r["shuffled_gap"]
    assert gap > 0.015 and gap - shuffled > 2.5 * math.hypot(se, se_s), r


def test_label_sets_and_noise_rates():
    x, noisy, clean, mask = datasets.load_cifar10n("worse")
    assert x.shape == (50000, 32, 32, 3) and np.array_equal(mask, noisy != clean)
    assert mask.mean() == pytest.approx(0.4021, abs=1e-4)  # the published 40.21 % for worse
    _, aggre, _, m = datasets.load_cifar10n("aggre")
    assert m.mean() == pytest.approx(0.0901, abs=1e-4)  # this file; the CIFAR-N paper rounds to 9.03 %
    _, same, _, none = datasets.load_cifar10n("clean")
    assert not none.any() and np.array_equal(same, clean)


def test_align_official_and_class_major_orders():
    official = np.array([3, 1, 3, 0, 1, 0, 2, 3, 2, 1] * 3)
    np.testing.assert_array_equal(cifar10n.align(official, official), np.arange(30))
    by_class = np.sort(official, kind="stable")
    idx = cifar10n.align(official, by_class)
    assert np.array_equal(official[idx], by_class) and list(idx[:6]) == list(np.flatnonzero(official == 0))
    with pytest.raises(ValueError, match="cannot be aligned"):
        cifar10n.align(official, np.roll(by_class, 1))
    with pytest.raises(ValueError, match="no `limit`"):
        cifar10n.align(official, official[:10])


def _write(path, **overrides):
    arrays = {key: np.zeros(50000, np.uint8) for key in cifar10n.LABEL_SETS.values()}
    arrays.update(overrides)
    np.savez(path, **arrays)
    return path


def test_bad_label_input_is_named(tmp_path):
    with pytest.raises(ValueError, match="Unknown CIFAR-10N label set 'worst'"):
        datasets.load_cifar10n("worst")
    short = _write(tmp_path / "short.npz", worse_label=np.zeros(49999, np.uint8))
    with pytest.raises(ValueError, match=r"`worse_label` must hold 50000 labels, got shape \(49999,\)"):
        cifar10n.read_label_file(short)
    big = _write(tmp_path / "big.npz", aggre_label=np.full(50000, 10, np.uint8))
    with pytest.raises(ValueError, match=r"`aggre_label` must hold class ids 0-9, got values in \[10, 10\]"):
        datasets.load_cifar10n("aggre", label_file=big)
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="not a readable CIFAR-10N label file"):
        cifar10n.read_label_file(tmp_path / "junk.npz")
    with pytest.raises(ValueError, match="needs dataset='cifar10'"):
        ex.paper_config("fashion_mnist", "mlp1024", "ce", noise="human", labels="worse")
    with pytest.raises(ValueError, match="needs `labels`"):
        ex.paper_config("cifar10", "mlp1024", "ce", noise="human", labels="clean")


@pytest.mark.parametrize("kind", ["human", "human_matrix"])
def test_runs_with_human_noise_and_its_matrix(kind, tmp_path):
    c = ex.paper_config("cifar10", "mlp1024", "mae*", noise=kind, labels="worse", epochs=1, limit=500, test_limit=100)
    h = ex.run(c, tmp_path, verbose=0)
    assert h["finished"] and ("hum-worse" if kind == "human" else "hmx-worse") in h["run_id"]
    assert 150 <= h["num_noisy"] <= 250  # about 40 % of 500 wrong, by the human labels or by their matrix
    assert h["epochs"][0]["false_label_accuracy"] is not None


def test_loss_table_sets_real_noise_beside_synthetic_noise(tmp_path):
    """``recipes.cifar10n_table`` on hand-made histories: the cells, their means and standard errors,
    the differences that answer issue 14's questions, the runs with unlearned classes, and that
    ablations (another learning rate) and unfinished runs stay out."""
    import json
    from pathlib import Path

    from recipes import cifar10n_table

    def history(results, acc, finished=True, unlearned=None, first=0.1, false_label=None, **setting):
        c = ex.paper_config("cifar10", "mlp1024", setting.pop("loss"), epochs=2, backend="jax", **setting)
        d = Path(results) / c.run_id
        d.mkdir(parents=True)
        last = {"epoch": 2, "test_accuracy": acc, "false_label_accuracy": false_label}
        if unlearned is not None:
            last["unlearned_classes"] = unlearned
        epochs = [{"epoch": 1, "test_accuracy": first}, last]
        (d / "history.json").write_text(json.dumps({"config": c.to_dict(), "finished": finished,
                                                    "epochs": epochs}))

    real, sym = tmp_path / "cifar10n", tmp_path / "mlp1024"
    history(real, 0.50, loss="ce", noise="human", labels="worse", seed=0)
    history(real, 0.54, loss="ce", noise="human", labels="worse", seed=1, unlearned=0)
    history(real, 0.60, loss="mae*", noise="human", labels="worse", seed=0)
    history(real, 0.99, loss="mae*", noise="human", labels="worse", seed=1, finished=False)
    history(real, 0.45, loss="ce", noise="human_matrix", labels="worse", seed=0)
    history(real, 0.30, loss="mae", noise="human", labels="aggre", seed=3, unlearned=2, first=0.35, false_label=0.25)
    history(sym, 0.40, loss="ce", noise="symmetric", noise_rate=0.4, seed=0)
    history(sym, 0.42, loss="ce", noise="symmetric", noise_rate=0.4, seed=1)
    history(sym, 0.90, loss="ce", noise="symmetric", noise_rate=0.4, seed=2, lr=0.01)  # an ablation
    history(sym, 0.30, loss="ce", noise="symmetric", noise_rate=0.3, seed=0)  # not a CIFAR-10N rate
    out, page = tmp_path / "t.md", tmp_path / "page.md"
    page.write_text("# Hand-written\n<!-- cifar10n_table: start -->\nold table\n<!-- cifar10n_table: end -->\nprose\n")
    table = cifar10n_table.main(["--results", str(real), str(sym), "--out", str(out), "--epochs", "2",
                                  "--no-noise-summary", "--into", str(page)])
    assert table == {("CE", "worse", "human"): pytest.approx([50.0, 54.0]),
                     ("MAE* (ε 0.5)", "worse", "human"): pytest.approx([60.0]),
                     ("CE", "worse", "human_matrix"): pytest.approx([45.0]),
                     ("CE", "worse", "symmetric"): pytest.approx([40.0, 42.0]),
                     ("MAE", "aggre", "human"): pytest.approx([30.0])}
    text = out.read_text()
    assert "| CE |" in text and "52.00 ± 2.00 (2)" in text and "41.00 ± 1.00 (2)" in text and "45.00 (1)" in text
    assert "worse: MAE* (ε 0.5) (60.00 %; ahead of CE by +8.00)" in text
    # real − symmetric (both with two seeds: ± hypot(2, 1)), matrix − symmetric, real − matrix
    assert "| CE |  |  | +11.00 ± 2.24 | +4.00 | +7.00 |" in text
    lead = [line for line in text.splitlines() if line.startswith("| MAE* − ")]
    assert lead == ["| MAE* − CE |  |  |  |  | +8.00 |  |  |",
                    "| MAE* − best other loss |  |  |  |  | +8.00 (CE) |  |  |"]
    # real labels: peak (its epoch) and final − peak; false-label accuracy at the end (runs without it: no row)
    assert "| MAE | 35.00 (1) | -5.00 |  |  |  |  |" in text and "| CE |  |  |  |  | 52.00 (2) | +0.00 |" in text
    false_label = text[text.index("### False-label accuracy"):text.index("### Runs that ended")]
    assert "| MAE | 25.00 (1) |  |  |  |  |  |  |" in false_label and "| CE |" not in false_label
    assert "- MAE, aggre real, seed 3: 2 unlearned classes, 30.00 %" in text
    assert "(5 of 7 runs predate the per-class count" in text
    # --into: the accuracy table and the differences replace what stood between the page's markers
    embedded = page.read_text()
    assert embedded.startswith("# Hand-written\n<!-- cifar10n_table: start -->\nFinal test accuracy")
    assert embedded.endswith("<!-- cifar10n_table: end -->\nprose\n") and "old table" not in embedded
    assert "52.00 ± 2.00 (2)" in embedded and "| MAE* − CE |" in embedded and "unlearned" not in embedded
    page.write_text("no markers\n")
    with pytest.raises(ValueError, match="has no '<!-- cifar10n_table: start -->' followed by"):
        cifar10n_table.main(["--results", str(real), "--out", str(out), "--epochs", "2", "--no-noise-summary",
                             "--no-plot", "--into", str(page)])
    assert out.with_suffix(".png").stat().st_size > 10_000
