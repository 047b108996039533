"""``cross_entropy(..., sample_weight=)`` (issue 12): an integer weight equals repeating the
sample, checked against torch on the repeated data, for every reduction, both target kinds and
the namespaces; the loss equals ``cross_entropy_with_grad``'s."""

import numpy as np
import pytest

from softmax_core import cross_entropy, cross_entropy_with_grad

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _case(kind, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((7, 4)) * 2
    if kind == "index":
        t = rng.integers(0, 4, 7)
        t[2] = -100
    else:
        t = rng.dirichlet(np.ones(4), 7)
    s = rng.integers(0, 4, 7)
    s[0] = 0
    return x, t, s


@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.2}, {"weight": True}])
def test_integer_sample_weight_equals_repeated_samples(kind, reduction, options):
    x, t, s = _case(kind)
    kwargs = dict(options, reduction=reduction)
    if kwargs.pop("weight", False):
        kwargs["weight"] = np.array([0.5, 1.0, 2.0, 0.25])
    rep = np.repeat(np.arange(7), s)
    torch_kwargs = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v
                    for k, v in kwargs.items()}
    ref = F.cross_entropy(torch.tensor(x[rep]), torch.tensor(t[rep]), **torch_kwargs)
    got = cross_entropy(x, t, sample_weight=s.astype(float), **kwargs)
    np.testing.assert_allclose(got, ref.item(), rtol=1e-13)
    loss, _ = cross_entropy_with_grad(x, t, sample_weight=s.astype(float), **kwargs)
    np.testing.assert_allclose(got, loss, rtol=1e-15)


def test_sample_weight_multiplies_each_loss_for_reduction_none():
    x, t, s = _case("index")
    got = cross_entropy(x, t, sample_weight=s * 0.5, reduction="none")
    np.testing.assert_allclose(got, 0.5 * s * cross_entropy(x, t, reduction="none"), rtol=1e-15)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_sample_weight_on_torch_tensors_with_autograd(reduction):
    x, t, s = _case("index", seed=1)
    rep = np.repeat(np.arange(7), s)
    a = torch.tensor(x, requires_grad=True)
    b = torch.tensor(x, requires_grad=True)
    out = cross_entropy(a, torch.tensor(t), sample_weight=torch.tensor(s, dtype=torch.float64),
                        reduction=reduction)
    ref = F.cross_entropy(b[rep], torch.tensor(t[rep]), reduction=reduction)
    if reduction == "none":
        torch.testing.assert_close(out[s > 0] / torch.tensor(s[s > 0], dtype=torch.float64),
                                   F.cross_entropy(b, torch.tensor(t), reduction="none")[s > 0])
        out, ref = out.sum(), ref.sum()
    torch.testing.assert_close(out, ref)
    out.backward()
    ref.backward()
    torch.testing.assert_close(a.grad, b.grad)


def test_sample_weight_on_array_api_strict():
    xps = pytest.importorskip("array_api_strict")
    x, t, s = _case("index", seed=2)
    got = cross_entropy(xps.asarray(x), xps.asarray(t), sample_weight=xps.asarray(s * 1.0))
    np.testing.assert_allclose(float(got), cross_entropy(x, t, sample_weight=s * 1.0),
                               rtol=1e-15)


def test_bad_sample_weight_is_rejected():
    x, t, _ = _case("index")
    with pytest.raises(ValueError, match="non-negative"):
        cross_entropy(x, t, sample_weight=-np.ones(7))
    with pytest.raises(ValueError, match="shape"):
        cross_entropy(x, t, sample_weight=np.ones(3))
