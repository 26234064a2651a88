"""Lambert W for real tensors (torch has none): both real branches, float32/float64, any device.

W solves w * exp(w) = z. The principal branch W0 is real for z >= -1/e (values >= -1); the
lower branch W_{-1} is real for -1/e <= z < 0 (values <= -1). Outside its real domain a
branch returns NaN, like ``torch.log`` of a negative number; callers mask first.

Method: an initial guess per region (branch-point series, Winitzki's approximation,
asymptotic expansion) refined by a fixed number of Halley steps. A fixed count keeps the
function free of data-dependent control flow (GPU friendly); from these starting points
Halley's cubic convergence reaches float64 round-off in at most 5 steps.
"""
from __future__ import annotations

import math

import torch

_INV_E = math.exp(-1.0)  # == 0.36787944117144233 (float64 rounding of 1/e)
_INV_E_LO64 = -1.2428753672788363e-17
_HALLEY_STEPS = 6


# Taylor coefficients of W in p = +-sqrt(2 (e z + 1)) around the branch point z = -1/e
_SERIES = (-1.0, 1.0, -1.0 / 3.0, 11.0 / 72.0, -43.0 / 540.0, 769.0 / 17280.0,
           -221.0 / 8505.0, 680863.0 / 43545600.0)


def _branch_point_series(p: torch.Tensor) -> torch.Tensor:
    """W around z = -1/e as a series in p (the sign of p picks the branch)."""
    w = torch.full_like(p, _SERIES[-1])
    for coefficient in reversed(_SERIES[:-1]):
        w = w * p + coefficient
    return w


def _distance_from_branch_point(z: torch.Tensor) -> torch.Tensor:
    """e*z + 1 without cancellation: 1/e split in a high part (exactly representable in
    z's dtype, so z + hi is exact near -1/e) and a low part."""
    hi = torch.tensor(_INV_E, dtype=z.dtype).item()
    # 1/e - fl64(1/e), from 40-digit arithmetic; fl64(1/e) alone is off by this much
    lo = (_INV_E - hi) + _INV_E_LO64
    return math.e * ((z + hi) + lo)


def _halley(w: torch.Tensor, z: torch.Tensor, steps: int = _HALLEY_STEPS) -> torch.Tensor:
    for _ in range(steps):
        ew = torch.exp(w)
        f = w * ew - z
        wp1 = w + 1.0
        denom = ew * wp1 - (w + 2.0) * f / (2.0 * wp1)
        # At the branch point (w = -1) f and denom vanish together: the guess is exact there.
        safe = (denom != 0) & torch.isfinite(denom) & (wp1 != 0)
        step = torch.where(safe, f / torch.where(safe, denom, torch.ones_like(denom)), torch.zeros_like(f))
        w = w - step
    return w


def lambertw(z: torch.Tensor, branch: int = 0) -> torch.Tensor:
    """Real Lambert W of ``z`` on branch 0 (principal) or -1, elementwise.

    Values of z within a few ulps below -1/e are treated as -1/e (they arise from rounding
    when a threshold is touched exactly); further below, and z > 0 on branch -1, give NaN
    (W_{-1}(0) = -inf, its limit).
    Differentiable in z: dW/dz = W / (z (1 + W)); W0: 1 at z = 0, 0 at z = +inf.
    """
    if branch not in (0, -1):
        raise ValueError(f"branch must be 0 or -1, got {branch!r}")
    if not torch.is_floating_point(z):
        z = z.to(torch.get_default_dtype())
    return _LambertW.apply(z, branch)


class _LambertW(torch.autograd.Function):
    """The derivative from W itself: differentiating through the guesses and Halley steps
    would pass 0 * inf = NaN from the branches torch.where does not select (at large z)."""

    @staticmethod
    def forward(ctx, z, branch):
        w = _lambertw_values(z, branch)
        ctx.save_for_backward(z, w)
        ctx.branch = branch
        return w

    @staticmethod
    def backward(ctx, grad_w):
        z, w = ctx.saved_tensors
        one = torch.ones_like(w)
        nonzero = torch.where(z == 0, one, z)
        derivative = w / (nonzero * (1.0 + w))
        # z = 0: W0'(0) = 1; W_{-1} -> -inf there, with derivative ~ 1/z -> -inf
        at_zero = one if ctx.branch == 0 else torch.full_like(w, -math.inf)
        derivative = torch.where(z == 0, at_zero, derivative)
        derivative = torch.where(torch.isinf(z) & (z > 0), torch.zeros_like(w), derivative)
        return grad_w * derivative, None


def _lambertw_values(z: torch.Tensor, branch: int) -> torch.Tensor:
    eps = torch.finfo(z.dtype).eps
    # distance from the branch point, e*z + 1, clamped at 0 for rounding-level undershoot
    ez1 = _distance_from_branch_point(z)
    # Within this distance the series (error ~ p**8) beats Halley (error ~ eps / p).
    series_radius = 0.1 if z.dtype in (torch.float32, torch.float16, torch.bfloat16) else 0.01
    below_domain = ez1 < -8.0 * eps
    p = torch.sqrt(torch.clamp(2.0 * ez1, min=0.0))

    if branch == 0:
        near = _branch_point_series(p)
        lz = torch.log1p(torch.clamp(z, min=-0.25))
        winitzki = lz * (1.0 - torch.log1p(lz) / (2.0 + lz))
        big = torch.clamp(z, min=3.0)
        l1 = torch.log(big)
        l2 = torch.log(l1)
        asym = l1 - l2 + l2 / l1
        guess = torch.where(z < -0.25, near, torch.where(z < 3.0, winitzki, asym))
        w = _halley(guess, z)
        # the series is exact enough at the branch point itself; Halley is ill-conditioned there
        w = torch.where(p < series_radius, near, w)
        w = torch.where(z == 0, z, w)  # W(0) = 0 with W'(0) = 1 (zeros_like would cut it)
        w = torch.where(torch.isinf(z) & (z > 0), z, w)
        invalid = below_domain | torch.isnan(z)
    else:
        near = _branch_point_series(-p)
        mz = torch.clamp(-z, min=0.0, max=0.25)
        l1 = torch.log(mz)
        l2 = torch.log(-l1)
        asym = l1 - l2 + l2 / l1
        # Away from the branch point iterate on w + ln(-w) = ln(-z): the logarithmic form
        # stays accurate for tiny (even subnormal) |z| where w*exp(w) - z loses all digits.
        log_mz = torch.log(torch.clamp(-z, min=0.0))
        w_log = torch.clamp(asym, max=-1.0 - 1e-3)
        for _ in range(5):
            w_log = w_log - (w_log + torch.log(-w_log) - log_mz) / (1.0 + 1.0 / w_log)
        w = torch.where(z < -0.25, _halley(near, z), w_log)
        w = torch.where(p < series_radius, near, w)
        w = torch.where(z == 0, torch.full_like(w, -math.inf), w)
        invalid = below_domain | (z > 0) | torch.isnan(z)
    return torch.where(invalid, torch.full_like(w, math.nan), w)
