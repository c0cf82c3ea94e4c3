"""Each figure writes a readable PNG and plots the library's own numbers."""

import subprocess
import sys

import numpy as np
import pytest

from keras_robust import losses, plots
from keras_robust.calibration import (
    epsilon_for_classes,
    error_curve,
    match_hyperparameter,
    solution_map,
)

Z = np.linspace(-2.0, 6.0, 9)
N = 64


def _png(path):
    import matplotlib.image

    assert path.exists() and path.stat().st_size > 1000
    image = matplotlib.image.imread(str(path))
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image[..., :3].std() > 0.01  # not blank
    return image


def test_import_does_not_need_matplotlib():
    # Keras imports matplotlib when it is there, so block it: the imports must still work.
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "import keras_robust, keras_robust.plots, keras_robust.cli\n"
            "try:\n    keras_robust.plots.epsilon_figure(num_classes=[2, 3])\n"
            "except ImportError:\n    print('needs matplotlib only to draw')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "needs matplotlib only to draw"


def test_error_curves_figure(tmp_path):
    path = tmp_path / "sub" / "curves.png"
    fig = plots.error_curves_figure(["ce", "mae"], 10, z=Z, samples=N, path=path)
    _png(path)
    data = fig.plot_data
    assert data["epsilon"] == pytest.approx(epsilon_for_classes(10), abs=1e-12)
    ce = error_curve(losses.CrossEntropy(), 10, Z, samples=N, seed=0)
    np.testing.assert_allclose(data["curves"]["ce"].true, ce.true, rtol=1e-5, atol=1e-7)
    # CE's error is a_k - 1: in (-1, 0), rising with z_k.
    assert np.all(ce.true < 0) and np.all(ce.true > -1) and np.all(np.diff(ce.true) > 0)
    # The drawn lines are the data.
    lines = fig.axes[0].get_lines()
    np.testing.assert_allclose(lines[0].get_ydata(), data["curves"]["ce"].true)
    np.testing.assert_allclose(lines[1].get_ydata(), data["curves"]["mae"].true)
    np.testing.assert_allclose(lines[1].get_xdata(), Z)


def test_figure1_mae_moves_right_with_k(tmp_path):
    z = np.linspace(-2.0, 8.0, 11)
    fig = plots.figure1(num_classes=(10, 100), z=z, samples=N, path=tmp_path / "f1.png")
    _png(tmp_path / "f1.png")
    curves = fig.plot_data["curves"]
    direct = error_curve(losses.MAE(), 100, z, samples=N, seed=0)
    np.testing.assert_allclose(curves[100].true, direct.true, rtol=1e-5, atol=1e-8)
    # Independent check: MAE's true-class error is -2 a_k (1 - a_k) <= 0, at most 1/2 in size.
    assert np.all(curves[10].true <= 0) and np.all(curves[10].true >= -0.5)
    # Paper Fig. 1: the error's range moves to larger z_k, its overlap with N(0, 1) shrinks.
    assert z[np.argmin(curves[100].true)] > z[np.argmin(curves[10].true)]
    assert abs(curves[100].true[z == 0][0]) < abs(curves[10].true[z == 0][0]) / 3


def test_figure2_panels_epsilon_and_scales(tmp_path):
    chosen = (("ce", "CE"), ("mae", "MAE"), ("nce+agce", "NCE-AGCE"))
    fig = plots.figure2(num_classes=(10, 50), losses=chosen, z=Z, samples=N, path=tmp_path / "f2.png")
    _png(tmp_path / "f2.png")
    panels = fig.plot_data["panels"]
    assert set(panels) == {10, 50}
    assert panels[50]["epsilon"] == pytest.approx(epsilon_for_classes(50), abs=1e-12)
    loss = losses.get("nce+agce", num_classes=50, dataset="cifar10")
    direct = error_curve(loss, 50, Z, samples=N, seed=0)
    np.testing.assert_allclose(panels[50]["curves"]["NCE-AGCE"].true, direct.true, rtol=1e-5, atol=1e-7)
    # The drawn NCE-AGCE line is scaled by 0.5 (legend says so), the data is not.
    top_b = fig.axes[2]  # axes order: top a, bottom a, top b, bottom b
    line = [ln for ln in top_b.get_lines() if ln.get_label().startswith("NCE-AGCE")][0]
    assert "x0.5" in line.get_label()
    np.testing.assert_allclose(line.get_ydata(), 0.5 * direct.true, rtol=1e-5, atol=1e-7)
    # The green (MAE*) histogram is the blue one shifted by eps: compare their means.
    bottom_b = fig.axes[3]
    centres = []
    for container in bottom_b.containers:
        xs = np.array([p.get_x() + p.get_width() / 2 for p in container.patches])
        hs = np.array([p.get_height() for p in container.patches])
        centres.append(np.sum(xs * hs) / np.sum(hs))
    assert centres[1] - centres[0] == pytest.approx(panels[50]["epsilon"], abs=0.05)


def test_figure3_matched_q(tmp_path):
    z = np.array([-2.0, 0.0, 2.0, 4.0])
    fig = plots.figure3(reference=(10, 0.7), num_classes=30, z=z, samples=64, match_samples=64,
                        path=tmp_path / "f3.png")
    _png(tmp_path / "f3.png")
    data = fig.plot_data
    direct = match_hyperparameter("gce", "q", reference=(10, 0.7), num_classes=30, bracket=(1e-3, 1.0),
                                  samples=64, seed=0)
    assert data["match"].value == pytest.approx(direct.value, abs=1e-6)
    assert data["match"].value < 0.7  # more classes: smaller q (paper: 0.7 -> 0.48 for 100 -> 1000)
    ref, same_q, matched = data["curves"].values()
    # The matched curve has the reference's error at z = 0; the unchanged q has less.
    assert matched.true[1] == pytest.approx(ref.true[1], rel=1e-3)
    assert abs(same_q.true[1]) < abs(ref.true[1])


def test_epsilon_figure(tmp_path):
    ks = [2, 10, 100, 1000, 10**6]
    fig = plots.epsilon_figure(num_classes=ks, path=tmp_path / "e.png")
    _png(tmp_path / "e.png")
    eps = fig.plot_data["epsilon"]
    np.testing.assert_allclose(eps, [epsilon_for_classes(k) for k in ks], atol=1e-12)
    assert fig.axes[0].get_xscale() == "log"
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_ydata(), eps)
    # K = 2: a_k = sigmoid(z_k - z_j + eps), z_k - z_j ~ N(0, 2); check <a_k> = 0.15 by quadrature.
    x = np.linspace(-12, 12, 20001)
    pdf = np.exp(-x**2 / 4) / np.sqrt(4 * np.pi)
    mean = np.sum(pdf / (1 + np.exp(-(x + eps[0])))) * (x[1] - x[0])
    assert mean == pytest.approx(0.15, abs=1e-6)
    assert np.all(np.diff(eps) > 0)
    # Default: K from 2 to 10^6.
    default = plots.epsilon_figure().plot_data["num_classes"]
    assert default[0] == 2 and default[-1] == 10**6


def test_solution_map_figure(tmp_path):
    grids = dict(q_grid=[0.02, 0.3], a_grid=[0.02, 0.1], alpha_grid=[10.0, 100.0], beta_grid=[0.1, 2.0])
    reference = (20, {"alpha": 10.0, "beta": 0.1, "a": 1.8, "q": 3.0})
    fig = plots.solution_map_figure(num_classes=50, reference=reference, samples=32, path=tmp_path / "m.png", **grids)
    _png(tmp_path / "m.png")
    data = fig.plot_data
    direct = solution_map("nce+agce", {"alpha": [10.0, 100.0], "beta": [0.1, 2.0]}, 50,
                          reference=reference, fixed={"q": 0.05, "a": 0.05}, samples=32, seed=0)
    np.testing.assert_allclose(data["maps"]["alpha_beta"].values, direct.values, rtol=1e-5, atol=1e-8)
    assert data["target"] == pytest.approx(direct.target)
    assert data["maps"]["qa"].values.shape == (2, 2)
    assert data["chosen"] == plots.PAPER_NCE_AGCE_1000


def test_all_figures_writes_each(tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "FIGURES", {
        "eps.png": lambda path: plots.epsilon_figure(num_classes=[2, 10], path=path),
        "curves.png": lambda path: plots.error_curves_figure(["mae"], 5, z=Z, samples=8, path=path),
    })
    paths = plots.all_figures(tmp_path / "figs")
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["eps.png", "curves.png"]
    for p in paths:
        _png(tmp_path / "figs" / p.rsplit("/", 1)[-1])


def test_bad_input():
    with pytest.raises(TypeError, match="losses"):
        plots.error_curves_figure("ce", 10, z=Z, samples=N)
    with pytest.raises(ValueError, match="losses"):
        plots.error_curves_figure([], 10, z=Z, samples=N)
    with pytest.raises(ValueError, match="epsilon"):
        plots.error_curves_figure(["ce"], 10, z=Z, samples=N, epsilon="big")
    with pytest.raises(ValueError, match="num_classes"):
        plots.figure1(num_classes=(1, 10), z=Z, samples=N)
    with pytest.raises(ValueError, match="num_classes"):
        plots.epsilon_figure(num_classes=[0, 10])
    with pytest.raises(ValueError, match="Unknown loss"):
        plots.error_curves_figure(["nope"], 10, z=Z, samples=N)
