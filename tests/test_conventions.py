"""The reference implementations' conventions, offered as options (issue 10).

Each option is checked against an independent NumPy formula (value and
gradient) and against our own transcription of the reference repositories'
definitions (HanxunH/Active-Passive-Losses and hitcszx/ALFs `loss.py`:
``MeanAbsoluteError`` = ``1 - p_y``; ``NormalizedFocalLoss`` with the focal
weights taken from ``logpt.data``; ``SCELoss``/``ReverseCrossEntropy`` with the
one-hot label clamped at ``1e-4``), written here in NumPy from their
definitions, float64.
"""

import math

import numpy as np
import pytest
from scipy.special import log_softmax, softmax

from keras_robust import _backend
from keras_robust import losses as L


def _data(rng, n=6, k=10, scale=2.0):
    return rng.integers(0, k, n).astype("int32"), (scale * rng.standard_normal((n, k))).astype("float32")


def _grad(loss, labels, z):
    value, g = _backend.value_and_grad(lambda t: loss(labels, t), z)
    return float(np.asarray(value)), np.asarray(g, dtype="float64")


# -- reference transcriptions (per-example values, then the batch mean their modules return) ----------


def apl_mae(z, y, scale):
    """Active-Passive-Losses / ALFs ``MeanAbsoluteError(scale)``: ``scale * mean(1 - p_y)``."""
    p = softmax(z.astype("float64"), -1)
    return scale * np.mean(1.0 - p[np.arange(len(y)), y])


def apl_nce(z, y, scale):
    lp = log_softmax(z.astype("float64"), -1)
    return scale * np.mean(-lp[np.arange(len(y)), y] / -lp.sum(-1))


def apl_sce(z, y, alpha, beta, k):
    """``SCELoss``: ``alpha * CE + beta * mean(-sum p log clamp(onehot, 1e-4, 1))``, p clamped at 1e-7."""
    lp = log_softmax(z.astype("float64"), -1)
    ce = np.mean(-lp[np.arange(len(y)), y])
    p = np.clip(np.exp(lp), 1e-7, 1.0)
    onehot = np.clip(np.eye(k)[y], 1e-4, 1.0)
    return alpha * ce + beta * np.mean(-(p * np.log(onehot)).sum(-1))


def nfl_detached_grad(z, y, gamma):
    """d/dz of mean_n [w_k L_k / sum_i w_i L_i] with ``L_i = -log p_i`` and the weights
    ``w_i = (1 - p_i)^gamma`` held constant (the reference code's ``.data``)."""
    z = z.astype("float64")
    n, k = z.shape
    p = softmax(z, -1)
    big_l = -log_softmax(z, -1)
    w = (1.0 - p) ** gamma
    out = np.zeros_like(z)
    for r in range(n):
        kk = y[r]
        num = w[r, kk] * big_l[r, kk]
        den = (w[r] * big_l[r]).sum()
        dnum = w[r, kk] * (p[r] - np.eye(k)[kk])  # dL_k/dz = p - e_k
        dden = p[r] * w[r].sum() - w[r]  # sum_i w_i (p - e_i)
        out[r] = (dnum * den - num * dden) / den**2
    return out / n


# -- MAE forms ------------------------------------------------------------------------------------


@pytest.mark.parametrize("form, scale", [("l1", lambda k: 2.0), ("reduced", lambda k: 1.0),
                                         ("l1_mean", lambda k: 2.0 / k)])
@pytest.mark.parametrize("k", [2, 10, 100])
def test_mae_forms_value_and_gradient(form, scale, k, rng):
    y, z = _data(rng, k=k)
    p = softmax(z.astype("float64"), -1)
    pk = p[np.arange(len(y)), y]
    value, g = _grad(L.MAE(mae_form=form), y, z)
    # value: the L1 distance between one-hot and softmax, rescaled by the form
    l1 = np.abs(np.eye(k)[y] - p).sum(-1)
    assert value == pytest.approx(np.mean(l1) * scale(k) / 2.0, rel=1e-5)
    # gradient: paper Table 1's output error of MAE, 2 a_k (a_n - delta_nk), rescaled
    expected = scale(k) * pk[:, None] * (p - np.eye(k)[y]) / len(y)
    np.testing.assert_allclose(g, expected, rtol=1e-4, atol=1e-7)


def test_mae_form_reduced_matches_reference_code(rng):
    y, z = _data(rng)
    for beta in (1.0, 20.0):
        ours = float(np.asarray(L.NCEMAE(alpha=1.0, beta=beta, mae_form="reduced")(y, z)))
        ref = apl_nce(z, y, 1.0) + apl_mae(z, y, beta)
        assert ours == pytest.approx(ref, rel=1e-5)
    # the paper's beta = 20 on the mean over K outputs is beta = 2 on 2 (1 - a_k) at K = 10
    a = float(np.asarray(L.NCEMAE(beta=20.0, mae_form="l1_mean")(y, z)))
    b = float(np.asarray(L.NCEMAE(beta=2.0)(y, z)))
    assert a == pytest.approx(b, rel=1e-6)


def test_mae_form_reaches_mae_star_and_sums_and_serialises():
    loss = L.get("nfl+mae", beta=20.0, mae_form="l1_mean")
    assert loss.passive.mae_form == "l1_mean" and loss.params["mae_form"] == "l1_mean"
    again = type(loss).from_config(loss.get_config())
    assert again.passive.mae_form == "l1_mean"
    star = L.MAEStar(epsilon=0.5, mae_form="reduced")
    assert star.mae_form == "reduced" and L.MAEStar.from_config(star.get_config()).mae_form == "reduced"


def test_bad_mae_form_is_named():
    with pytest.raises(ValueError, match="mae_form.*'l1'.*got 'sum'"):
        L.MAE(mae_form="sum")
    with pytest.raises(ValueError, match="mae_form"):
        L.get("nce+mae", mae_form="L1")


# -- NFL with detached focal weights -------------------------------------------------------------


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_nfl_detached_weight_value_and_gradient(gamma, rng):
    y, z = _data(rng)
    formula, g_formula = _grad(L.NFL(gamma=gamma), y, z)
    detached, g_detached = _grad(L.NFL(gamma=gamma, detach_weight=True), y, z)
    assert detached == pytest.approx(formula, rel=1e-6)  # same value
    np.testing.assert_allclose(g_detached, nfl_detached_grad(z, y, gamma), rtol=2e-4, atol=1e-7)
    assert np.abs(g_detached - g_formula).max() > 1e-4  # and a different gradient: the option matters


def test_detach_weight_must_be_bool():
    with pytest.raises(ValueError, match="detach_weight"):
        L.NFL(detach_weight="yes")


# -- symmetric / reverse CE with A = ln 1e-4 ---------------------------------------------------------


@pytest.mark.parametrize("alpha, beta", [(0.1, 1.0), (6.0, 0.1)])
def test_sce_log_zero_of_reference_code(alpha, beta, rng):
    y, z = _data(rng, scale=1.0)  # moderate logits: the reference clamps p at 1e-7
    ours = float(np.asarray(L.SCE(alpha=alpha, beta=beta, log_zero=math.log(1e-4))(y, z)))
    assert ours == pytest.approx(apl_sce(z, y, alpha, beta, 10), rel=1e-5)
    default = float(np.asarray(L.SCE(alpha=alpha, beta=beta)(y, z)))
    assert abs(default - ours) > 1e-3  # A = -4 (Wang et al.'s text) is a different loss


def test_rce_gradient_scales_with_log_zero(rng):
    y, z = _data(rng)
    _, g4 = _grad(L.RCE(), y, z)
    _, g9 = _grad(L.RCE(log_zero=math.log(1e-4)), y, z)
    np.testing.assert_allclose(g9, g4 * math.log(1e-4) / -4.0, rtol=1e-4, atol=1e-8)


def test_sce_with_both_weights_zero_is_refused():
    with pytest.raises(ValueError, match="`alpha` and `beta` are both 0"):
        L.SCE(alpha=0.0, beta=0.0)
