"""First-spike times for ANY tau_mem / tau_syn ratio (numerical, exact to tolerance).

The closed forms (ratio 1: Lambert W, ratio 2: quadratic) cover the software neuron. An
emulated chip has per-neuron time constants whose ratio is 1.03, 0.97, ... and per-trial
threshold noise, so it needs a solver for the general case. It works like the closed-form
engine: sort each sample's inputs once, then look at one inter-spike interval at a time.

Between two sorted inputs t_k <= t < t_{k+1} the free potential (v = g_L (u - E_L), a
current) is, with s = t - t_k, x = s / tau_syn, r = tau_mem / tau_syn, delta = r - 1,

    v(s) = v_k exp(-x / r) + I_k k(s),     k(s) = exp(-x) g(x),  g(x) = expm1(x delta / r) / delta

(g(x) = x for r = 1), where v_k and I_k are the potential and the synaptic current at t_k.
This is a combination of two exponentials: it has at most one extremum, at

    g* = (I_k - v_k) / (I_k + v_k delta),   x* = (r / delta) log1p(delta g*)   (x* = g* for r = 1)

so the maximum over the interval is at an end or at x*, which tells whether the threshold
is crossed in the interval and gives a bracket on which v is monotonic. The first crossing
is then found by safeguarded Newton (bisection when a Newton step leaves the bracket) to
``time_tolerance`` (default 1e-10 in the layer's time unit). Everything is computed in
float64, batched over (sample, neuron).

v_k and I_k come from running sums over the sorted inputs taken relative to the sample's
first input (as in the closed-form engine), which limits one sample's inputs to span less
than ~600 tau_syn (tensor path only). For 0 < |r - 1| < RATIO_ONE_SNAP the ratio-1 formulas are used (a model
error below 1e-7 relative, far below the chip's 8 ns time stamps).

On the CPU (numba installed, ``PYNN_TTFS_NUMBA`` not 0) the same algorithm runs as one fused
loop nest (``cpu_kernels.general_first_spike_times``) that carries each neuron's state from
input to input instead of summing from the first input: no (batch, n_pre, n_post) tensors,
no span limit, ~50x faster on an MNIST-sized chip layer. The tensor path runs on GPUs.
"""
from __future__ import annotations

import math
from typing import Optional

import torch

from . import cpu_kernels
from .first_spike import check_layer_inputs, first_spike_times
from .neuron import Scalar, layer_parameters

#: |tau_mem / tau_syn - 1| below which the neuron is treated as ratio 1
RATIO_ONE_SNAP = 1e-7
#: largest span of one sample's finite input times, in tau_syn, that exponentials allow
MAX_SPAN_TAU_SYN = 600.0
#: elements of one (chunk, n_pre, n_post) working tensor
CHUNK_ELEMENTS = 1 << 21


def _g(x: torch.Tensor, delta: torch.Tensor, r: torch.Tensor, ratio_one: torch.Tensor) -> torch.Tensor:
    safe_delta = torch.where(ratio_one, torch.ones_like(delta), delta)
    return torch.where(ratio_one, x, torch.expm1(x * delta / r) / safe_delta)


#: above this exponent expm1 overflows: e^{-x} g is then taken as (e^{-x/r} - e^{-x}) / delta
_EXP_LIMIT = 700.0


def _decay_times_g(x, delta, r, ratio_one):
    """e^{-x} g(x) without overflow: for r > 1 over long spans g alone overflows (and
    0 * inf is NaN); there the difference form, which no longer cancels, is exact."""
    a = x * delta / r
    safe_delta = torch.where(ratio_one, torch.ones_like(delta), delta)
    near = torch.exp(-x) * _g(x, delta, r, ratio_one).where(a < _EXP_LIMIT, torch.zeros_like(a))
    far = (torch.exp(-x / r) - torch.exp(-x)) / safe_delta
    return torch.where(ratio_one | (a < _EXP_LIMIT), near, far)


def _potential(s, v0, i0, tau_syn, r, delta, ratio_one):
    """v(s) and dv/ds inside one interval (all tensors broadcast together)."""
    x = s / tau_syn
    decay = torch.exp(-x)
    decay_g = _decay_times_g(x, delta, r, ratio_one)
    v = v0 * torch.exp(-x / r) + i0 * decay_g
    # dv/ds = e^{-x} [ -v0 (1 + delta g) + i0 (1 - g) ] / (r tau_syn)
    slope = (-v0 * (decay + delta * decay_g) + i0 * (decay - decay_g)) / (r * tau_syn)
    return v, slope


def _solve_chunk(sorted_times, sorted_weights, tau_syn, tau_mem, threshold, time_tolerance, max_iter):
    # sorted_times (b, n) ascending, +inf last; sorted_weights (b, n, m); tau_* (m,);
    # threshold (b, m)
    b, n, m = sorted_weights.shape
    finite = torch.isfinite(sorted_times)  # (b, n)
    first = torch.where(finite[:, :1], sorted_times[:, :1], torch.zeros_like(sorted_times[:, :1]))
    rel = torch.where(finite, sorted_times - first, torch.zeros_like(sorted_times))  # (b, n)
    # the sums below hold e^{t / tau} for tau_syn and tau_mem: the shorter one bounds the span
    shortest = torch.minimum(tau_syn, tau_mem).min()
    span = (rel.max() / shortest).item() if rel.numel() else 0.0
    if span > MAX_SPAN_TAU_SYN:
        raise ValueError(
            f"the finite input times of one sample span {span:.1f} times the shorter of "
            f"tau_syn and tau_mem, more than the {MAX_SPAN_TAU_SYN:.0f} the tensor path of the "
            "general solver supports; shorten the trial (the CPU loops have no such limit)"
        )
    r = tau_mem / tau_syn
    delta = r - 1.0
    ratio_one = delta.abs() < RATIO_ONE_SNAP
    safe_delta = torch.where(ratio_one, torch.ones_like(delta), delta)
    w = torch.where(finite.unsqueeze(-1), sorted_weights, torch.zeros_like(sorted_weights))
    xs = rel.unsqueeze(-1) / tau_syn  # (b, n, m)
    xm = rel.unsqueeze(-1) / tau_mem
    es = torch.exp(xs)
    q = torch.cumsum(w * es, dim=1)
    current = q * torch.exp(-xs)  # I_k at t_k
    # potential at t_k: ratio 1 from (A, B) sums, others from the two-exponential sums
    b_sum = torch.cumsum(w * xs * es, dim=1)
    v_one = torch.exp(-xs) * (xs * q - b_sum)
    p = torch.cumsum(w * torch.exp(xm), dim=1)
    v_gen = (p * torch.exp(-xm) - current) / safe_delta
    v_start = torch.where(ratio_one, v_one, v_gen)
    del b_sum, v_one, p, v_gen, es, q

    c = threshold.unsqueeze(1)  # (b, 1, m)
    lower = torch.where(finite, rel, torch.full_like(rel, math.inf))
    upper = torch.cat([lower[:, 1:], torch.full_like(lower[:, :1], math.inf)], dim=1)
    width = (upper - lower).unsqueeze(-1).expand(b, n, m)  # inf for the last interval
    valid_interval = finite.unsqueeze(-1)
    f_start = v_start - c
    # far end of the interval (an infinite interval ends at v = 0 < c)
    finite_width = torch.isfinite(width)
    safe_width = torch.where(finite_width, width, torch.zeros_like(width))
    v_end, _ = _potential(safe_width, v_start, current, tau_syn, r, delta, ratio_one)
    f_end = torch.where(finite_width, v_end - c, -c.expand(b, n, m))
    # the one extremum
    denominator = current + v_start * delta
    g_star = (current - v_start) / torch.where(denominator == 0, torch.ones_like(denominator), denominator)
    arg = 1.0 + delta * g_star
    x_star = torch.where(
        ratio_one, g_star,
        r / safe_delta * torch.log1p(torch.where(arg > 0, delta * g_star, torch.zeros_like(g_star))),
    )
    s_star = x_star * tau_syn
    interior = (denominator != 0) & (arg > 0) & (s_star > 0) & (s_star < width)
    safe_s_star = torch.where(interior, s_star, torch.zeros_like(s_star))
    v_star, _ = _potential(safe_s_star, v_start, current, tau_syn, r, delta, ratio_one)
    f_star = torch.where(interior, v_star - c, torch.full_like(v_star, -math.inf))
    crosses = valid_interval & ((f_start >= 0) | (f_end >= 0) | (f_star >= 0))
    any_cross = crosses.any(dim=1)  # (b, m)
    k = torch.argmax(crosses.to(torch.uint8), dim=1, keepdim=True)  # first crossing interval

    def pick(t):
        return torch.gather(t, 1, k).squeeze(1)

    v0, i0, f0 = pick(v_start), pick(current), pick(f_start)
    fs, s_st, inside = pick(f_star), pick(safe_s_star), pick(interior)
    wd = pick(safe_width)
    t0 = torch.gather(lower.unsqueeze(-1).expand(b, n, m), 1, k).squeeze(1)
    # bracket [a, z] with f(a) < 0 <= f(z) and f monotonic on it
    rising_to_max = inside & (fs >= 0)
    lo = torch.where(inside & ~rising_to_max, s_st, torch.zeros_like(s_st))
    hi = torch.where(rising_to_max, s_st, wd)
    already = f0 >= 0  # crossing exactly at the interval start
    s = 0.5 * (lo + hi)
    cc = c.squeeze(1)
    tau_s_b = tau_syn.expand_as(s)
    r_b, d_b, one_b = r.expand_as(s), delta.expand_as(s), ratio_one.expand_as(s)
    active = any_cross & ~already
    for _ in range(max_iter):
        v, slope = _potential(s, v0, i0, tau_s_b, r_b, d_b, one_b)
        f = v - cc
        above = f >= 0
        hi = torch.where(above, s, hi)
        lo = torch.where(above, lo, s)
        newton = s - f / torch.where(slope > 0, slope, torch.ones_like(slope))
        ok = (slope > 0) & (newton > lo) & (newton < hi)
        s_next = torch.where(ok, newton, 0.5 * (lo + hi))
        step = (s_next - s).abs()
        s = s_next
        if not bool(((step > time_tolerance) & active).any()):
            break
    s = torch.where(already, torch.zeros_like(s), s)
    times = first + t0 + s
    return torch.where(any_cross, times, torch.full_like(times, math.inf))


def _use_loops(weights: torch.Tensor) -> bool:
    return cpu_kernels.AVAILABLE and weights.device.type == "cpu"


def solve_first_spike_times_general(
    input_times: torch.Tensor,
    weights: torch.Tensor,
    tau_syn: Scalar = 1.0,
    tau_mem: Scalar = 1.0,
    threshold: Scalar = 1.0,
    time_tolerance: float = 1e-10,
    max_iter: int = 100,
) -> torch.Tensor:
    """First-spike times (batch, n_post), +inf = silent, for any tau_mem / tau_syn > 0.

    tau_syn, tau_mem: scalar or one value per neuron (n_post,). threshold: scalar, (n_post,)
    or (batch, n_post) (a per-trial threshold, e.g. a noisy chip). No autograd (see
    :func:`first_spike_times_any_ratio`). Returns the dtype of ``weights``.
    """
    check_layer_inputs(input_times, weights)
    batch, n_pre = input_times.shape
    n_post = weights.shape[1]
    f64 = torch.zeros((), dtype=torch.float64, device=weights.device)
    threshold_t = torch.as_tensor(threshold, dtype=torch.float64, device=weights.device)
    per_trial = threshold_t.dim() == 2
    if per_trial:
        if tuple(threshold_t.shape) != (batch, n_post):
            raise ValueError(
                f"a 2-D threshold must have shape (batch, n_post) = {(batch, n_post)}, got "
                f"{tuple(threshold_t.shape)}"
            )
        if not torch.isfinite(threshold_t).all() or (threshold_t <= 0).any():
            raise ValueError("threshold must be finite and > 0 (threshold above rest)")
        params = layer_parameters(tau_syn, tau_mem, 1.0, n_post, f64, allow_any_ratio=True)
    else:
        params = layer_parameters(tau_syn, tau_mem, threshold_t, n_post, f64, allow_any_ratio=True)
        threshold_t = params.threshold.unsqueeze(0).expand(batch, n_post)
    out = torch.full((batch, n_post), math.inf, dtype=torch.float64, device=weights.device)
    if batch == 0 or n_post == 0 or n_pre == 0:
        return out.to(weights.dtype)
    if _use_loops(weights):  # the fused CPU loop nest (cpu_kernels): same algorithm, ~50x faster
        from .fast import _torch_threads_kept
        with _torch_threads_kept():
            times = cpu_kernels.general_first_spike_times(
                input_times.detach().double().cpu().numpy(), weights.detach().double().cpu().numpy(),
                params.tau_syn.cpu().numpy(), params.tau_mem.cpu().numpy(),
                threshold_t.detach().cpu().numpy(), RATIO_ONE_SNAP, time_tolerance, max_iter)
        return torch.from_numpy(times).to(weights.dtype)
    with torch.no_grad():
        times64 = input_times.detach().double()
        sorted_times, order = torch.sort(times64, dim=1)
        w64 = weights.detach().double()
        step = max(1, CHUNK_ELEMENTS // max(1, n_pre * n_post))
        for start in range(0, batch, step):
            rows = slice(start, min(batch, start + step))
            out[rows] = _solve_chunk(
                sorted_times[rows], w64[order[rows]], params.tau_syn, params.tau_mem,
                threshold_t[rows], time_tolerance, max_iter,
            )
    return out.to(weights.dtype)


def first_spike_times_any_ratio(
    input_times: torch.Tensor,
    weights: torch.Tensor,
    tau_syn: Scalar = 1.0,
    tau_mem: Scalar = 1.0,
    threshold: Scalar = 1.0,
    output_times: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Differentiable first-spike times for any ratio: the general solver forward, the
    engine's exact implicit-differentiation backward (valid for any kernel)."""
    if output_times is None:
        output_times = solve_first_spike_times_general(input_times, weights, tau_syn, tau_mem, threshold)
    return first_spike_times(input_times, weights, tau_syn, tau_mem, threshold, output_times=output_times)
