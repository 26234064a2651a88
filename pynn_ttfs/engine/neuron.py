"""Neuron parameters, their validation, and the post-synaptic potential kernel.

The neuron: current-based LIF with exponential synaptic currents, no reset (only the first
spike of a trial matters). With v = g_L * (u - E_L) (a current) the membrane obeys

    tau_mem dv/dt = -v + I(t),      I(t) = sum_i w_i exp(-(t - t_i)/tau_syn) H(t - t_i)

and the neuron spikes when v reaches the threshold current c = g_L * (v_thresh - E_L).
One input spike of weight w at time 0 contributes v(s) = w * k(s) with the kernel

    ratio r = tau_mem / tau_syn = 1:   k(s) = (s / tau_syn) exp(-s / tau_syn)
    any other r:                       k(s) = (exp(-s / tau_mem) - exp(-s / tau_syn)) / (r - 1)

All times share one unit (ms in the PyNN layer, tau_syn in the maths), weights and
threshold share one current unit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

import torch

Scalar = Union[float, int, torch.Tensor]

#: tau_mem / tau_syn ratios with a closed-form first-spike time
SUPPORTED_RATIOS = (1.0, 2.0)
_RATIO_RTOL = 1e-9


def _as_neuron_tensor(value: Scalar, name: str, n_post: int, like: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if t.dim() == 0:
        t = t.expand(n_post)
    if t.dim() != 1 or t.shape[0] != n_post:
        raise ValueError(
            f"{name} must be a scalar or a 1-D tensor with one value per neuron "
            f"(length {n_post}), got shape {tuple(t.shape)}"
        )
    if torch.isnan(t).any() or torch.isinf(t).any():
        raise ValueError(f"{name} must be finite, got NaN or inf")
    return t


@dataclass
class LayerParameters:
    """Per-neuron parameters of one layer, each a 1-D tensor of length n_post."""

    tau_syn: torch.Tensor
    tau_mem: torch.Tensor
    threshold: torch.Tensor
    #: tau_mem / tau_syn, snapped to 1.0 or 2.0 where it matched within 1e-9; the plain
    #: ratio elsewhere (only when general ratios were allowed)
    ratio: torch.Tensor

    @property
    def n_post(self) -> int:
        return self.tau_syn.shape[0]


def layer_parameters(
    tau_syn: Scalar,
    tau_mem: Scalar,
    threshold: Scalar,
    n_post: int,
    like: torch.Tensor,
    allow_any_ratio: bool = False,
) -> LayerParameters:
    """Validate and broadcast neuron parameters to per-neuron tensors.

    Raises ValueError naming the parameter: non-positive time constants, non-positive
    threshold current (threshold not above rest), or a tau_mem/tau_syn ratio other than
    1 or 2 (unless ``allow_any_ratio``, used by numerical solvers and gradient evaluation).
    """
    if all(isinstance(v, (int, float)) and not isinstance(v, bool)
           for v in (tau_syn, tau_mem, threshold)):
        # plain numbers (the common case): checked in Python, no tensor round trips
        return _scalar_layer_parameters(float(tau_syn), float(tau_mem), float(threshold),
                                        n_post, like, allow_any_ratio)
    tau_syn_t = _as_neuron_tensor(tau_syn, "tau_syn", n_post, like)
    tau_mem_t = _as_neuron_tensor(tau_mem, "tau_mem", n_post, like)
    threshold_t = _as_neuron_tensor(threshold, "threshold", n_post, like)
    for name, t in (("tau_syn", tau_syn_t), ("tau_mem", tau_mem_t), ("threshold", threshold_t)):
        if (t <= 0).any():
            _not_positive(name, t.min().item())
    ratio = (tau_mem_t.double() / tau_syn_t.double())
    snapped = torch.full_like(ratio, float("nan"))
    for supported in SUPPORTED_RATIOS:
        snapped = torch.where((ratio - supported).abs() <= _RATIO_RTOL * supported,
                              torch.full_like(ratio, supported), snapped)
    if not allow_any_ratio and torch.isnan(snapped).any():
        _unsupported_ratio(ratio[torch.isnan(snapped)][0].item())
    if allow_any_ratio:
        snapped = torch.where(torch.isnan(snapped), ratio, snapped)
    return LayerParameters(tau_syn_t, tau_mem_t, threshold_t, snapped.to(like.dtype))


def _not_positive(name: str, smallest: float) -> None:
    if name == "threshold":
        raise ValueError(
            "threshold (c = g_L * (v_thresh - v_rest)) must be > 0, i.e. the threshold must lie "
            f"above the resting potential; got min {smallest}"
        )
    raise ValueError(f"{name} must be > 0, got min {smallest}")


def _unsupported_ratio(ratio: float) -> None:
    raise ValueError(
        f"tau_mem / tau_syn = {ratio:.6g} is not supported: the closed-form first-spike time "
        f"exists for tau_mem == tau_syn (ratio 1, Lambert W) and tau_mem == 2 * tau_syn "
        f"(ratio 2)"
    )


def _scalar_layer_parameters(tau_syn: float, tau_mem: float, threshold: float, n_post: int,
                             like: torch.Tensor, allow_any_ratio: bool) -> LayerParameters:
    """:func:`layer_parameters` for plain numbers: the same checks and messages."""
    values = (("tau_syn", tau_syn), ("tau_mem", tau_mem), ("threshold", threshold))
    for name, value in values:  # all finiteness checks first, as the tensor path does
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got NaN or inf")
    for name, value in values:
        if value <= 0:
            _not_positive(name, value)
    ratio = tau_mem / tau_syn
    snapped = next((r for r in SUPPORTED_RATIOS if abs(ratio - r) <= _RATIO_RTOL * r), None)
    if snapped is None:
        if not allow_any_ratio:
            _unsupported_ratio(ratio)
        snapped = ratio

    def full(value: float) -> torch.Tensor:
        return torch.full((n_post,), value, dtype=like.dtype, device=like.device)

    return LayerParameters(full(tau_syn), full(tau_mem), full(threshold), full(snapped))


def _kernel_terms(s, tau_syn, tau_mem):
    """x = s / tau_syn (clamped at 0), r = tau_mem / tau_syn, delta = r - 1 (1 where r is 1,
    with the flag ``equal``), and the two bounded exponentials of the stable forms."""
    x = torch.clamp(s, min=0.0) / tau_syn
    ratio = tau_mem / tau_syn
    delta = ratio - 1.0
    equal = delta.abs() < 1e-12
    delta = torch.where(equal, torch.ones_like(delta), delta)
    # exp(-x/r) - exp(-x) without cancellation near r = 1 and without overflow: factor out
    # the larger exponential, so that expm1 only ever sees an argument <= 0
    rising = delta > 0
    lead = torch.exp(-torch.where(rising, x / ratio, x))
    small = torch.expm1(-(x * delta / ratio).abs())  # in (-1, 0]
    return x, ratio, delta, equal, rising, lead, small


def psp_kernel(s: torch.Tensor, tau_syn: torch.Tensor, tau_mem: torch.Tensor) -> torch.Tensor:
    """k(s) = (exp(-s/tau_mem) - exp(-s/tau_syn)) / (tau_mem/tau_syn - 1) for s >= 0, and
    (s/tau_syn) exp(-s/tau_syn) at tau_mem = tau_syn; 0 for s < 0 and s = inf. tau_*
    broadcast against s (last dim = neurons). Written so that float32 keeps its precision
    for ratios just off 1."""
    x, ratio, delta, equal, rising, lead, small = _kernel_terms(s, tau_syn, tau_mem)
    # r > 1: exp(-x/r) (1 - exp(-x delta/r)); r < 1: exp(-x) (exp(x delta/r) - 1)
    general = torch.where(rising, -lead * small, lead * small) / delta
    k = torch.where(equal, x * torch.exp(-x), general)
    return torch.where((s > 0) & torch.isfinite(s), k, torch.zeros_like(k))


def psp_kernel_derivative(s: torch.Tensor, tau_syn: torch.Tensor, tau_mem: torch.Tensor) -> torch.Tensor:
    """dk/ds (unit 1/time), 0 for s < 0 and s = inf; stable near ratio 1 as psp_kernel.

    At s = 0 it is the right derivative, 1/tau_mem: a membrane that reaches threshold at
    an input's own time rises with the slope that input starts there."""
    x, ratio, delta, equal, rising, lead, small = _kernel_terms(s, tau_syn, tau_mem)
    # (exp(-x) - exp(-x/r)/r) / delta, with the larger exponential factored out
    general = torch.where(rising, lead * (small / delta + 1.0 / ratio),
                          lead / ratio * (1.0 - small / delta))
    dk = torch.where(equal, (1.0 - x) * torch.exp(-x), general) / tau_syn
    return torch.where((s >= 0) & torch.isfinite(s), dk, torch.zeros_like(dk))
