import math

import mpmath
import numpy as np
import pytest
import torch

from pynn_ttfs.engine import lambertw

mpmath.mp.dps = 40


def _exact(z, branch):
    value = mpmath.lambertw(mpmath.mpf(float(z)), branch)
    return float(value.real)


def _points(branch):
    near_branch_point = -math.exp(-1) + np.logspace(-17, -0.45, 60)
    if branch == 0:
        return np.concatenate([near_branch_point, np.linspace(-0.36, 3, 60), np.logspace(0, 300, 40)])
    return np.concatenate([near_branch_point, -np.logspace(-300, np.log10(0.36), 60)])


@pytest.mark.parametrize("branch", [0, -1])
def test_float64_matches_mpmath_over_the_domain(branch):
    z = _points(branch)
    ours = lambertw(torch.tensor(z, dtype=torch.float64), branch).numpy()
    exact = np.array([_exact(v, branch) for v in z])
    assert np.isfinite(ours).all()
    np.testing.assert_allclose(ours, exact, rtol=2e-14, atol=1e-300)


@pytest.mark.parametrize("branch", [0, -1])
def test_float32_matches_mpmath_over_the_domain(branch):
    z32 = torch.tensor(_points(branch)[_points(branch) > -1e30], dtype=torch.float32)
    z32 = z32[torch.isfinite(z32) & (z32 < 3e38)]
    if branch == -1:
        z32 = z32[z32 < 0]
    ours = lambertw(z32, branch).double().numpy()
    exact = np.array([_exact(v, branch) for v in z32.double().numpy()])
    np.testing.assert_allclose(ours, exact, rtol=2e-6)


def test_special_values_and_domain():
    z = torch.tensor([-math.exp(-1), 0.0, math.inf, -0.5, math.nan], dtype=torch.float64)
    w0 = lambertw(z)
    assert w0[0].item() == -1.0 and w0[1].item() == 0.0 and w0[2].item() == math.inf
    assert math.isnan(w0[3].item()) and math.isnan(w0[4].item())
    wm1 = lambertw(torch.tensor([-0.1, 0.0, 0.1], dtype=torch.float64), branch=-1)
    assert wm1[0].item() < -1 and wm1[1].item() == -math.inf and math.isnan(wm1[2].item())


def test_defining_equation_holds():
    z = torch.linspace(-0.3678, 50, 1001, dtype=torch.float64)
    w = lambertw(z)
    torch.testing.assert_close(w * torch.exp(w), z, rtol=1e-14, atol=1e-15)


def test_bad_branch_is_rejected():
    with pytest.raises(ValueError, match="branch must be 0 or -1"):
        lambertw(torch.tensor([0.5]), branch=1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    z = torch.tensor(_points(0), dtype=torch.float64)
    torch.testing.assert_close(lambertw(z.cuda()).cpu(), lambertw(z), rtol=1e-13, atol=0)


def test_gradient_at_zero_is_one():
    for dtype in (torch.float32, torch.float64):
        z = torch.tensor([0.0, 0.5], dtype=dtype, requires_grad=True)
        lambertw(z).sum().backward()
        w = float(lambertw(torch.tensor(0.5, dtype=torch.float64)))
        np.testing.assert_allclose(z.grad.numpy(), [1.0, w / (0.5 * (1.0 + w))], rtol=1e-5)


def test_gradient_is_finite_at_large_and_infinite_z_and_matches_finite_differences():
    """The derivative comes from W itself: differentiating through the unselected
    branch-point series (p**7 overflows at large z) gave NaN."""
    z = torch.tensor([1e200, 1e80, math.inf, 3.0], dtype=torch.float64, requires_grad=True)
    lambertw(z).sum().backward()
    w = lambertw(z.detach())
    expected = (w / (z.detach() * (1.0 + w))).numpy()
    expected[2] = 0.0
    np.testing.assert_allclose(z.grad.numpy(), expected, rtol=1e-12)
    z32 = torch.tensor([1e30, 1e12], dtype=torch.float32, requires_grad=True)
    lambertw(z32).sum().backward()
    assert torch.isfinite(z32.grad).all() and (z32.grad > 0).all()
    for branch, points in ((0, [-0.3, -0.1, 0.0, 0.7, 50.0]), (-1, [-0.3, -0.1, -1e-3])):
        x = torch.tensor(points, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda t: lambertw(t, branch), (x,), eps=1e-9)
    assert torch.autograd.gradgradcheck(lambertw, (torch.tensor([-0.3, 0.7, 50.0], dtype=torch.float64,
                                                                requires_grad=True),))


def test_lower_branch_at_zero_is_minus_infinity_with_derivative_minus_infinity():
    z = torch.tensor([0.0, -1e-12], dtype=torch.float64, requires_grad=True)
    w = lambertw(z, branch=-1)
    assert w[0] == -math.inf
    w.sum().backward()
    assert z.grad[0] == -math.inf and z.grad[1] < -1e11  # ~ 1/z
    assert torch.isnan(lambertw(torch.tensor([1e-3], dtype=torch.float64), branch=-1)).all()
