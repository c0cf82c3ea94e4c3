"""The paper's calibration figures, computed by the library itself.

Every figure is drawn from `keras_robust.calibration` (Eq. 3 error curves,
Eq. 4 logit bias, hyperparameter matching) on the loss objects users train
with; nothing is read off the paper. Each function returns a
`matplotlib.figure.Figure` (Agg, no pyplot state) carrying the plotted arrays
in ``fig.plot_data`` (a dict, documented per function), and saves a PNG when
``path`` is given. matplotlib is imported only inside these functions, so
``import keras_robust`` never needs it.

- `error_curves_figure`: ``<delta_k>(z_k)`` of any losses at one ``K`` (CLI ``curves``).
- `figure1`: MAE at K = 10 and 100 (paper Fig. 1).
- `figure2`: the paper's losses at K = 10 and 1000, with MAE*'s shifted histogram (Fig. 2).
- `figure3`: genCE's ``q`` transferred from K = 100 to K = 1000 (Fig. 3).
- `epsilon_figure`: ``eps(K)`` of Eq. 4 for K = 2 ... 10^6 (appendix Fig. 1).
- `solution_map_figure`: NCE-AGCE's ``<delta_k>(0)`` over (q, a) and (alpha, beta) (appendix Fig. 4).
- `all_figures`: all of the above into a folder (CLI ``figures``).
"""

import math
import os

import numpy as np

from keras_robust.calibration import (
    LogitModel,
    epsilon_for_classes,
    error_curve,
    match_hyperparameter,
    solution_map,
)

# Fig. 2's losses: (registry name, label). Parameters: the paper's appendix Table 1.
PAPER_LOSSES = (
    ("ce", "CE"),
    ("mae", "MAE"),
    ("gce", "genCE"),
    ("bitempered", "biTemp"),
    ("nce+mae", "NCE-MAE"),
    ("nfl+mae", "NF-MAE"),
    ("agce", "AGCE"),
    ("nce+agce", "NCE-AGCE"),
)

# Appendix 4: the K = 1000 NCE-AGCE setting the paper chose (its "b" is AGCE's `a`).
PAPER_NCE_AGCE_1000 = {"alpha": 100.0, "beta": 0.7, "q": 0.05, "a": 0.05}

_HIST_DRAWS = 50_000


def default_samples(num_classes, budget=2**18, low=128, high=2048):
    """Monte-Carlo draws per ``z`` for a figure at ``K``: about ``budget / K``, in [low, high].

    Keeps one curve at ``K = 1000`` to a few seconds on a 2-core CPU; the
    statistical error is the curves' ``true_se`` (stored in ``plot_data``).
    """
    return int(min(high, max(low, budget // int(num_classes))))


def default_z(num_classes):
    """A ``z_k`` grid covering the initial logits and the region where ``<delta_k>`` is large."""
    top = max(6.0, math.log(num_classes) + 5.0)
    return np.linspace(-4.0, top, 81)


def _mpl():
    # matplotlib.figure.Figure draws with Agg by default and keeps no pyplot state.
    from matplotlib.figure import Figure

    return Figure


def _save(fig, path):
    if path is not None:
        path = os.fspath(path)
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        fig.savefig(path, format="png", dpi=fig.dpi, bbox_inches="tight")
    return fig


def _check_k(num_classes, argument="num_classes"):
    from keras_robust.calibration.epsilon import check_num_classes

    return check_num_classes(num_classes, argument)


def _histogram(ax, logits, epsilon=None, seed=0, label_eps="MAE*"):
    """The initial-logit density (blue) and, if given, the same shifted by ``epsilon`` (green)."""
    draws = np.asarray(logits.sample((_HIST_DRAWS,), seed=seed), dtype="float64")
    ax.hist(draws, bins=60, density=True, color="tab:blue", alpha=0.6, label=r"$p_z(z_k)$ at init")
    if epsilon is not None:
        ax.hist(draws + epsilon, bins=60, density=True, color="tab:green", alpha=0.6,
                label=rf"{label_eps}: $z_k+\epsilon$, $\epsilon$={epsilon:.2f}")
    ax.set_ylabel(r"$p_z$")
    ax.set_xlabel(r"$z_k$")
    ax.legend(fontsize=7, loc="upper right")
    return draws


def _two_rows(fig, ncols=1):
    grid = fig.add_gridspec(2, ncols, height_ratios=(3, 1), hspace=0.05)
    tops, bottoms = [], []
    for c in range(ncols):
        top = fig.add_subplot(grid[0, c])
        bottom = fig.add_subplot(grid[1, c], sharex=top)
        top.tick_params(labelbottom=False)
        tops.append(top)
        bottoms.append(bottom)
    return tops, bottoms


def _resolve(loss, num_classes, dataset):
    from keras_robust import losses

    if isinstance(loss, str):
        return losses.canonical_name(loss), losses.get(loss, num_classes=num_classes, dataset=dataset)
    return getattr(loss, "name", type(loss).__name__), loss


def error_curves_figure(
    losses,
    num_classes,
    z=None,
    dataset="cifar10",
    logits=None,
    samples=None,
    seed=0,
    epsilon="auto",
    path=None,
    title=None,
):
    """``<delta_k>(z_k)`` (Eq. 3) of several losses at one ``K``, over the initial-logit histogram.

    Args:
        losses: registry names (``"ce"``, ``"mae"``, ``"nce+agce"``, ...) or
            `keras.losses.Loss` objects, or ``(label, loss)`` pairs.
        num_classes: ``K``.
        z: the true-class logit grid (default `default_z`).
        dataset: paper parameters (appendix Table 1) for named losses; None
            for the losses' defaults.
        logits: the `LogitModel` of the initial logits (default N(0, 1)).
        samples: draws per ``z`` (default `default_samples`).
        seed: seed of the draws.
        epsilon: the shift of the green (MAE*) histogram: ``"auto"`` for
            ``eps(K)`` of Eq. 4, a number, or None for none.
        path: save a PNG there.
        title: the axes title (default ``"K = ..."``).

    Returns:
        The Figure; ``fig.plot_data = {"z", "num_classes", "epsilon",
        "curves": {label: ErrorCurve}}``.
    """
    Figure = _mpl()
    k = _check_k(num_classes)
    if isinstance(losses, str) or not hasattr(losses, "__iter__"):
        raise TypeError(f"`losses` must be a list of loss names or objects, got {losses!r}.")
    items = list(losses)
    if not items:
        raise ValueError("`losses` must name at least one loss, got an empty list.")
    model = LogitModel() if logits is None else logits
    z = default_z(k) if z is None else np.asarray(z, dtype="float64")
    samples = default_samples(k) if samples is None else samples
    if isinstance(epsilon, str):
        if epsilon != "auto":
            raise ValueError(f"`epsilon` must be 'auto', a number or None, got {epsilon!r}.")
        epsilon = epsilon_for_classes(k, logits=model)
    curves = {}
    fig = Figure(figsize=(6.0, 5.0), dpi=110)
    (top,), (bottom,) = _two_rows(fig)
    for item in items:
        if isinstance(item, tuple):
            label, loss = item[0], _resolve(item[1], k, dataset)[1]
        else:
            label, loss = _resolve(item, k, dataset)
        curve = error_curve(loss, k, z, logits=model, samples=samples, seed=seed)
        curves[label] = curve
        top.plot(curve.z, curve.true, label=label)
    top.axhline(0.0, color="0.6", lw=0.5)
    top.set_ylabel(r"$\langle\delta_k\rangle(z_k)$")
    top.set_title(title or f"K = {k}")
    top.legend(fontsize=7, ncol=2)
    _histogram(bottom, model, epsilon, seed=seed)
    fig.plot_data = {"z": z, "num_classes": k, "epsilon": epsilon, "curves": curves}
    return _save(fig, path)


def figure1(num_classes=(10, 100), z=None, logits=None, samples=None, seed=0, path=None):
    """Paper Fig. 1: ``<delta_k>`` of MAE at K = 10 and 100 over the initial N(0, 1) logits.

    The error's range moves to larger ``z_k`` with ``K`` while the initial
    logits stay put: learning stalls.

    Returns:
        The Figure; ``fig.plot_data = {"z", "curves": {K: ErrorCurve}}``.
    """
    from keras_robust import losses

    Figure = _mpl()
    ks = [_check_k(k) for k in num_classes]
    model = LogitModel() if logits is None else logits
    z = np.linspace(-4.0, 10.0, 71) if z is None else np.asarray(z, dtype="float64")
    fig = Figure(figsize=(6.0, 5.0), dpi=110)
    (top,), (bottom,) = _two_rows(fig)
    curves = {}
    for k in ks:
        curve = error_curve(losses.MAE(), k, z, logits=model,
                            samples=default_samples(k) if samples is None else samples, seed=seed)
        curves[k] = curve
        top.plot(curve.z, curve.true, label=f"MAE, K = {k}")
    top.axhline(0.0, color="0.6", lw=0.5)
    top.set_ylabel(r"$\langle\delta_k\rangle(z_k)$")
    top.set_title("Fig. 1: MAE error of the true-class logit")
    top.legend(fontsize=8)
    _histogram(bottom, model, seed=seed)
    fig.plot_data = {"z": z, "curves": curves}
    return _save(fig, path)


# Fig. 2 draws these curves scaled (as the paper does NCE-AGCE's in panel a), so the
# others stay visible: beta = 20 makes NCE-MAE / NF-MAE reach about -10.
FIGURE2_SCALES = {"NCE-MAE": 0.1, "NF-MAE": 0.1, "NCE-AGCE": 0.5}


def figure2(num_classes=(10, 1000), dataset="cifar10", losses=PAPER_LOSSES, z=None, logits=None,
            samples=None, seed=0, scales=FIGURE2_SCALES, path=None):
    """Paper Fig. 2: the paper's losses at K = 10 (a) and 1000 (b).

    Parameters from the paper's appendix Table 1 (``dataset``, CIFAR-10 by
    default). The bottom panels show the initial logits N(0, 1) (blue) and,
    for MAE*, the same shifted by ``eps(K)`` of Eq. 4 (green). Unlike the
    paper, which rescales NCE-AGCE by 0.5 in panel (a), ``scales`` (label ->
    factor, shown in the legend) applies to every panel.

    Args:
        num_classes: the panels' ``K``.
        losses: ``(registry name, label)`` pairs.
        scales: plotting factors per label (``plot_data`` keeps unscaled curves).
        z, logits, samples, seed: as in `error_curves_figure` (``z`` default per ``K``).

    Returns:
        The Figure; ``fig.plot_data = {"panels": {K: {"z", "epsilon",
        "curves": {label: ErrorCurve}}}, "scales"}`` (curves unscaled).
    """
    from keras_robust import losses as L

    Figure = _mpl()
    ks = [_check_k(k) for k in num_classes]
    model = LogitModel() if logits is None else logits
    fig = Figure(figsize=(5.5 * len(ks), 5.5), dpi=110)
    tops, bottoms = _two_rows(fig, len(ks))
    panels = {}
    for i, k in enumerate(ks):
        zk = default_z(k) if z is None else np.asarray(z, dtype="float64")
        n = default_samples(k) if samples is None else samples
        eps = epsilon_for_classes(k, logits=model)
        curves = {}
        for name, label in losses:
            loss = L.get(name, num_classes=k, dataset=dataset)
            curve = error_curve(loss, k, zk, logits=model, samples=n, seed=seed)
            curves[label] = curve
            style = "--" if name in ("bitempered", "nfl+mae") else "-"
            factor = (scales or {}).get(label, 1.0)
            shown = label if factor == 1.0 else f"{label} (x{factor:g})"
            tops[i].plot(curve.z, factor * curve.true, style, label=shown)
        tops[i].axhline(0.0, color="0.6", lw=0.5)
        tops[i].set_title(f"({'abcdefgh'[i]}) K = {k}")
        tops[i].set_ylabel(r"$\langle\delta_k\rangle(z_k)$")
        tops[i].legend(fontsize=7, ncol=2)
        _histogram(bottoms[i], model, eps, seed=seed)
        panels[k] = {"z": zk, "epsilon": eps, "curves": curves}
    fig.plot_data = {"panels": panels, "scales": dict(scales or {})}
    return _save(fig, path)


def figure3(reference=(100, 0.7), num_classes=1000, z=None, logits=None, samples=None, seed=0,
            match_samples=2048, path=None):
    """Paper Fig. 3: genCE's ``q`` from K = 100 (q = 0.7) to K = 1000 keeping ``<delta_k>(0)``.

    Three curves: the reference, the same ``q`` at the new ``K`` (overlap
    lost) and the matched ``q`` (Sec. 3.3; the paper finds 0.48).

    Returns:
        The Figure; ``fig.plot_data = {"z", "match": HyperparameterMatch,
        "curves": {label: ErrorCurve}, "settings": {label: (K, q)}}``.
    """
    from keras_robust import losses

    Figure = _mpl()
    k_ref, q_ref = reference
    k_ref, k = _check_k(k_ref, "reference[0]"), _check_k(num_classes)
    model = LogitModel() if logits is None else logits
    match = match_hyperparameter("gce", "q", reference=(k_ref, q_ref), num_classes=k, bracket=(1e-3, 1.0),
                                 logits=model, samples=match_samples, seed=seed)
    z = default_z(k) if z is None else np.asarray(z, dtype="float64")
    settings = {
        f"K = {k_ref}, q = {q_ref:g}": (k_ref, q_ref),
        f"K = {k}, q = {q_ref:g}": (k, q_ref),
        f"K = {k}, q = {match.value:.3f} (matched)": (k, match.value),
    }
    fig = Figure(figsize=(6.0, 5.0), dpi=110)
    (top,), (bottom,) = _two_rows(fig)
    curves = {}
    for (label, (kk, q)), style in zip(settings.items(), ("-", ":", "--")):
        curve = error_curve(losses.GCE(q=q), kk, z, logits=model,
                            samples=default_samples(kk) if samples is None else samples, seed=seed)
        curves[label] = curve
        top.plot(curve.z, curve.true, style, label=label)
    top.plot([0.0], [match.target], "kx", label=rf"$\langle\delta_k\rangle(0)$ = {match.target:.4f}")
    top.axhline(0.0, color="0.6", lw=0.5)
    top.axvline(0.0, color="0.6", lw=0.5)
    top.set_ylabel(r"$\langle\delta_k\rangle(z_k)$")
    top.set_title("Fig. 3: genCE, q transferred to a larger K")
    top.legend(fontsize=8)
    _histogram(bottom, model, seed=seed)
    fig.plot_data = {"z": z, "match": match, "curves": curves, "settings": settings}
    return _save(fig, path)


def epsilon_figure(num_classes=None, target=0.15, logits=None, path=None):
    """Appendix Fig. 1: the logit bias ``eps(K)`` of Eq. 4 against ``K`` (log axis).

    Args:
        num_classes: the ``K`` values (default: 60 log-spaced from 2 to 10^6).
        target: ``C`` of Eq. 4 (paper: 0.15).

    Returns:
        The Figure; ``fig.plot_data = {"num_classes", "epsilon", "target"}``.
    """
    Figure = _mpl()
    if num_classes is None:
        num_classes = np.unique(np.round(np.logspace(math.log10(2), 6, 60)).astype(int))
    ks = np.asarray([_check_k(int(k) if isinstance(k, np.integer) else k) for k in num_classes])
    eps = np.asarray([epsilon_for_classes(int(k), target=target, logits=logits) for k in ks])
    fig = Figure(figsize=(5.5, 4.0), dpi=110)
    ax = fig.add_subplot()
    ax.semilogx(ks, eps, "o-", ms=3)
    ax.set_xlabel("number of classes K")
    ax.set_ylabel(r"logit bias $\epsilon(K)$")
    ax.set_title(rf"Eq. 4: $\langle a_k\rangle(\epsilon)$ = {target:g}")
    ax.grid(True, which="both", lw=0.3)
    fig.plot_data = {"num_classes": ks, "epsilon": eps, "target": target}
    return _save(fig, path)


def solution_map_figure(
    num_classes=1000,
    reference=None,
    chosen=None,
    q_grid=None,
    a_grid=None,
    alpha_grid=None,
    beta_grid=None,
    logits=None,
    samples=None,
    seed=0,
    path=None,
):
    """Appendix Fig. 4: NCE-AGCE's ``<delta_k>(0)`` over (q, a) and over (alpha, beta).

    The target level is ``<delta_k>(0)`` of the reference setting (default:
    the CIFAR-100 parameters at K = 100, about -0.021); the dashed red line
    is its contour (`solution_map`), the red cross the ``chosen`` setting
    (default the paper's ``alpha=100, beta=0.7, q=0.05, a=0.05``). Left:
    (q, a) at the chosen (alpha, beta); right: (alpha, beta) at the chosen
    (q, a). The paper's "b" is AGCE's ``a`` here.

    Returns:
        The Figure; ``fig.plot_data = {"target", "maps": {"qa": SolutionMap,
        "alpha_beta": SolutionMap}, "chosen"}``.
    """
    from keras_robust import losses

    Figure = _mpl()
    k = _check_k(num_classes)
    if reference is None:
        reference = (100, dict(losses.PAPER_PARAMETERS["cifar100"]["nce+agce"]))
    chosen = dict(PAPER_NCE_AGCE_1000 if chosen is None else chosen)
    model = LogitModel() if logits is None else logits
    n = default_samples(k, budget=2**17) if samples is None else samples
    q_grid = np.linspace(0.01, 0.3, 12) if q_grid is None else q_grid
    a_grid = np.linspace(0.01, 0.3, 12) if a_grid is None else a_grid
    alpha_grid = np.logspace(0, 3, 12) if alpha_grid is None else alpha_grid
    beta_grid = np.logspace(-1.5, 0.5, 12) if beta_grid is None else beta_grid
    common = dict(reference=reference, logits=model, samples=n, seed=seed)
    qa = solution_map("nce+agce", {"q": q_grid, "a": a_grid}, k,
                      fixed={"alpha": chosen["alpha"], "beta": chosen["beta"]}, **common)
    ab = solution_map("nce+agce", {"alpha": alpha_grid, "beta": beta_grid}, k,
                      fixed={"q": chosen["q"], "a": chosen["a"]}, **common)
    fig = Figure(figsize=(11.0, 4.5), dpi=110, layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, m, logx in ((axes[0], qa, False), (axes[1], ab, True)):
        g1, g2 = m.grids
        mesh = ax.pcolormesh(g1, g2, m.values.T, shading="nearest", cmap="viridis")
        fig.colorbar(mesh, ax=ax, label=r"$\langle\delta_k\rangle(0)$")
        ax.contour(g1, g2, m.values.T, levels=[m.target], colors="red", linestyles="--")
        ax.plot([chosen[m.names[0]]], [chosen[m.names[1]]], "rx", ms=10, mew=2)
        ax.set_xlabel(m.names[0])
        ax.set_ylabel(m.names[1] + (" (paper: b)" if m.names[1] == "a" else ""))
        if logx:
            ax.set_xscale("log")
            ax.set_yscale("log")
    axes[0].set_title(f"K = {k}, alpha = {chosen['alpha']:g}, beta = {chosen['beta']:g}")
    axes[1].set_title(f"K = {k}, q = {chosen['q']:g}, a = {chosen['a']:g}")
    fig.suptitle(rf"NCE-AGCE: $\langle\delta_k\rangle(0)$ = {qa.target:.4f} (dashed), chosen setting (x)")
    fig.plot_data = {"target": qa.target, "maps": {"qa": qa, "alpha_beta": ab}, "chosen": chosen}
    return _save(fig, path)


FIGURES = {
    "fig1_mae_error.png": figure1,
    "fig2_losses_k10_k1000.png": figure2,
    "fig3_gce_q_transfer.png": figure3,
    "appendix_fig1_epsilon.png": epsilon_figure,
    "appendix_fig4_nce_agce_solutions.png": solution_map_figure,
}


def all_figures(out_dir, verbose=False):
    """Write every figure of `FIGURES` as PNG into ``out_dir``; returns the paths written."""
    paths = []
    for filename, make in FIGURES.items():
        path = os.path.join(os.fspath(out_dir), filename)
        make(path=path)
        if verbose:
            print(path, flush=True)
        paths.append(path)
    return paths


def learning_curves(cells, path, title, rate_name=lambda noise, rate: f"{100 * rate:g} %"):
    """Runs' learning curves like the paper's Fig. 4/5: test (top) and false-label (bottom)
    accuracy per epoch, one column per noise rate, one line per loss (mean over seeds).

    ``cells`` maps ``(loss label, noise, rate)`` to an aggregate with ``n`` and
    ``curves`` (`keras_robust.experiments.aggregate`); ``title`` is shown on top.
    """
    cols = sorted({(noise, rate) for _, noise, rate in cells}, key=lambda c: (c[1], c[0]))
    fig = _mpl()(figsize=(max(5.5, 4 * len(cols)), 6.5))
    axes = fig.subplots(2, len(cols), squeeze=False, sharex=True)
    for j, (noise, rate) in enumerate(cols):
        for label in sorted({label for label, _, _ in cells}):
            c = cells.get((label, noise, rate))
            if c is None:
                continue
            ep = np.arange(1, len(c["curves"]["test_accuracy"]) + 1)
            line, = axes[0, j].plot(ep, 100 * np.array(c["curves"]["test_accuracy"]), label=f"{label} (n={c['n']})")
            if c["curves"]["false_label_accuracy"] is not None:
                axes[1, j].plot(ep, 100 * np.array(c["curves"]["false_label_accuracy"]), color=line.get_color())
        axes[0, j].set_title(f"noise {rate_name(noise, rate)}")
        axes[1, j].set_xlabel("epoch")
        for ax in axes[:, j]:
            ax.grid(alpha=0.3)
        if rate == 0:
            axes[1, j].text(0.5, 0.5, "no corrupted labels", ha="center", va="center",
                            transform=axes[1, j].transAxes, color="gray")
    axes[0, 0].set_ylabel("test accuracy (%)")
    axes[1, 0].set_ylabel("false-label accuracy (%)")
    axes[0, -1].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.set_dpi(110)
    return _save(fig, path)
