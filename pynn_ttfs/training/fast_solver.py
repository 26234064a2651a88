"""First-spike times with one closed-form solve per (sample, neuron): the training fast path.

Same result as the engine's reference solver (``engine.solve_first_spike_times``; a test
checks it), but instead of solving the closed form (a Lambert W) for every prefix of the
sorted inputs, it first locates the interval [t_k, t_{k+1}) in which the membrane first
reaches threshold, then solves once. Locating is exact, not a probe heuristic: with the
causal set of the k earliest inputs the free membrane is unimodal in time,

    ratio 1:  v_k(t) = e^{-t} (a t - b),               peak at t* = 1 + b/a   (a > 0)
    ratio 2:  v_k(t) = a2 e^{-t/2} - a1 e^{-t},         peak at t* = 2 ln(2 a1 / a2)

(times in tau_s units relative to the sample's first input; a, b, a1, a2 are the running
sums of the engine's docstring), so its maximum over the interval is v_k at t* clamped
into the interval, and the first interval whose maximum reaches c holds the first
crossing. Before it the membrane stays below c, so the crossing is the rising one: the
principal Lambert W branch (ratio 1) or the larger root in e^{-t/2} (ratio 2).
"""
from __future__ import annotations

import math

import torch

from ..engine import lambertw

_INV_E = math.exp(-1.0)


def _solve_ratio(sorted_x: torch.Tensor, sorted_w: torch.Tensor, threshold: torch.Tensor,
                 ratio: float) -> torch.Tensor:
    """sorted_x (b, n, 1 or m) ascending in tau_s units (inf last); sorted_w (b, n, m)."""
    finite = torch.isfinite(sorted_x)
    reference = torch.where(finite[:, :1], sorted_x[:, :1], torch.zeros_like(sorted_x[:, :1]))
    dx = torch.where(finite, sorted_x - reference, torch.zeros_like(sorted_x))  # (b, n, k)
    weighted = sorted_w * finite.to(sorted_w.dtype)
    lower = torch.where(finite, dx, torch.full_like(dx, math.inf))
    upper = torch.cat([lower[:, 1:], torch.full_like(lower[:, :1], math.inf)], dim=1)
    c = threshold
    e1 = torch.exp(dx)
    if ratio == 1.0:
        a = torch.cumsum(weighted * e1, dim=1)
        b = torch.cumsum(weighted * (dx * e1), dim=1)
        positive = a > 0
        safe_a = torch.where(positive, a, torch.ones_like(a))
        peak = torch.minimum(torch.maximum(1.0 + b / safe_a, lower), upper)
        finite_peak = torch.isfinite(peak)
        peak = torch.where(finite_peak, peak, torch.zeros_like(peak))
        v_max = torch.exp(-peak) * (a * peak - b)
        tol = 16.0 * torch.finfo(a.dtype).eps * c
        reach = positive & finite_peak & (v_max >= c - tol)
    else:
        a1 = torch.cumsum(weighted * e1, dim=1)
        a2 = torch.cumsum(weighted * torch.exp(0.5 * dx), dim=1)
        positive = (a1 > 0) & (a2 > 0)
        ratio_arg = torch.where(positive, 2.0 * a1 / torch.where(positive, a2, torch.ones_like(a2)),
                                torch.ones_like(a1))
        peak = torch.minimum(torch.maximum(2.0 * torch.log(ratio_arg), lower), upper)
        finite_peak = torch.isfinite(peak)
        peak = torch.where(finite_peak, peak, torch.zeros_like(peak))
        y = torch.exp(-0.5 * peak)
        v_max = a2 * y - a1 * y * y
        tol = 16.0 * torch.finfo(a1.dtype).eps * c
        reach = positive & finite_peak & (v_max >= c - tol)
    reach = reach & finite
    any_reach = reach.any(dim=1)  # (b, m)
    first = torch.argmax(reach.to(torch.uint8), dim=1, keepdim=True)  # (b, 1, m)
    lo = torch.gather(lower.expand(reach.shape), 1, first).squeeze(1)
    hi = torch.gather(upper.expand(reach.shape), 1, first).squeeze(1)
    if ratio == 1.0:
        a_k = torch.gather(a, 1, first).squeeze(1)
        b_k = torch.gather(b, 1, first).squeeze(1)
        safe_a = torch.where(any_reach, a_k, torch.ones_like(a_k))
        mean_time = b_k / safe_a
        z = torch.clamp(-(c / safe_a) * torch.exp(torch.clamp(mean_time, max=600.0)), min=-_INV_E)
        z = torch.where(any_reach, z, torch.full_like(z, -0.1))
        t_rel = mean_time - lambertw(z)
    else:
        a1_k = torch.gather(a1, 1, first).squeeze(1)
        a2_k = torch.gather(a2, 1, first).squeeze(1)
        disc = torch.clamp(a2_k * a2_k - 4.0 * a1_k * c, min=0.0)
        safe_a1 = torch.where(any_reach, a1_k, torch.ones_like(a1_k))
        root = (a2_k + torch.sqrt(disc)) / (2.0 * safe_a1)
        root = torch.where(any_reach & (root > 0), root, torch.ones_like(root))
        t_rel = -2.0 * torch.log(root)
    # rounding can put the solution a hair outside its interval: keep it inside
    t_rel = torch.minimum(torch.maximum(t_rel, torch.where(any_reach, lo, t_rel)),
                          torch.where(any_reach, hi, t_rel))
    times = t_rel + reference.squeeze(1)
    return torch.where(any_reach, times, torch.full_like(times, math.inf))


@torch.no_grad()
def fast_first_spike_times(input_times: torch.Tensor, weights: torch.Tensor,
                           tau_syn: torch.Tensor, tau_mem: torch.Tensor,
                           threshold: torch.Tensor) -> torch.Tensor:
    """(batch, n_post) first-spike times, inf = silent. Per-neuron tau_syn, tau_mem
    (ratio 1 or 2), threshold as 1-D tensors; no autograd (the trainer's backward is
    ``gradients.layer_backward``)."""
    batch = input_times.shape[0]
    n_post = weights.shape[1]
    out = torch.full((batch, n_post), math.inf, dtype=weights.dtype, device=weights.device)
    if batch == 0 or n_post == 0 or input_times.shape[1] == 0:
        return out
    ratio = tau_mem / tau_syn
    sorted_times, order = torch.sort(input_times, dim=1)
    uniform_tau = bool((tau_syn == tau_syn[0]).all())
    for ratio_value in (1.0, 2.0):
        columns_mask = (ratio - ratio_value).abs() < 1e-6
        if not bool(columns_mask.any()):
            continue
        everything = bool(columns_mask.all())
        w = weights if everything else weights[:, columns_mask]
        tau = tau_syn if everything else tau_syn[columns_mask]
        c = threshold if everything else threshold[columns_mask]
        # times in each neuron's tau_syn: one shared column if all neurons agree
        scale = tau[:1] if uniform_tau else tau
        x = sorted_times.unsqueeze(-1) / scale
        solved = _solve_ratio(x, w[order], c, ratio_value) * scale
        if everything:
            out = solved
        else:
            out[:, columns_mask] = solved
    unsupported = ~(((ratio - 1.0).abs() < 1e-6) | ((ratio - 2.0).abs() < 1e-6))
    if bool(unsupported.any()):
        raise ValueError("tau_mem / tau_syn must be 1 or 2 for every neuron")
    return out
