"""Fast exact first-spike times and gradients: probe windows, matrix products, one closed form.

Same mathematics and result as the reference solver in ``first_spike.py`` (the same closed
forms, agreeing to rounding), but the per-(sample, input, neuron) work is replaced by matrix
products over the inputs plus a little gathered work per (sample, neuron).

Times in one group of neurons are measured in that group's tau_syn (x = t / tau_syn).

Windows. Per sample, G boundaries p_0 < ... < p_{G-1} are chosen among the input times
(first and last finite input included, the rest balanced over the *distinct* times so a
tied group, e.g. all dark MNIST pixels, costs no more than one input). Window g spans
[p_g, p_{g+1}) (the last one [p_{G-1}, inf) holds no inputs). Inputs exactly at p_g are
part of the state at p_g; inputs strictly inside a window are "inside" inputs.

State. The membrane is a 2-dimensional linear system, so its state at a boundary is exact
and a matrix product over the inputs before it:
    ratio 1: v(p) = sum w k(p - x),   I(p) = sum w e^{-(p - x)}, and without new inputs
             v(p + u) = e^{-u} (v + u I)
    ratio 2: S2 = sum w e^{-(p - x)/2},  S1 = sum w e^{-(p - x)},
             v(p + u) = e^{-u/2} S2 - e^{-u} S1
The maximum of that free evolution over a window is closed form (one stationary point).

Bound. Inside inputs can only raise v by their positive weights, at most by
w * max_{[0, p_{g+1} - x]} k: one more product with the positive weights. A window whose
bound stays below the threshold provably holds no crossing (a crossing that rises and
falls back between two probes included).

Local solve. For each (sample, neuron) the first window whose bound reaches threshold is
searched exactly: its inside inputs are gathered (only those few), running sums give the
membrane on each sub-interval between inputs, on which v is unimodal, so the first
sub-interval whose maximum reaches c holds the first crossing; the closed form is solved
there once. If the bound was loose (no crossing), the pair moves on to its next candidate
window (a masked loop, usually one or two rounds).

Gradients at given output times T: with g* the last boundary before T, the inputs up to
p_{g*} are all causal and their kernel terms are separable in (T, x) relative to p_{g*},
so dL/dW and dL/dx are matrix products over (sample, boundary); only the inputs inside
window g* before T are gathered per (sample, neuron).
"""
from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch

from .lambertw import lambertw
from .neuron import LayerParameters

_INV_E = math.exp(-1.0)
_LOG2 = math.log(2.0)
#: aim for about this many distinct input times per window (local gathered work)
DISTINCT_PER_WINDOW = 12
#: most boundaries per sample (each costs a few matrix products)
MAX_BOUNDARIES = 10
#: bound on elements of one (batch chunk, boundaries, n_pre) feature tensor
CHUNK_ELEMENTS = 1 << 23
#: more distinct (tau_syn, ratio) groups than this: per-group products stop paying off
MAX_GROUPS = 4


class _Windows:
    """Per-sample probe boundaries and the inputs inside each window (tau_syn units)."""

    def __init__(self, x: torch.Tensor, boundaries: Optional[int] = None):
        batch, n = x.shape
        device = x.device
        self.x = x
        xs, order = torch.sort(x, dim=1)
        self.sorted_x, self.order = xs, order
        finite = torch.isfinite(xs)
        new = torch.ones_like(finite)
        new[:, 1:] = xs[:, 1:] != xs[:, :-1]
        new &= finite
        rank = torch.cumsum(new.to(torch.int64), dim=1) - 1
        distinct = new.sum(dim=1)  # (B,)
        if boundaries is None:
            most = int(distinct.max()) if batch else 0
            boundaries = min(MAX_BOUNDARIES, max(2, 1 + -(-most // DISTINCT_PER_WINDOW)))
        g = boundaries
        self.n_boundaries = g
        # boundary g at distinct rank round(g (d - 1) / (G - 1)): first and last finite input
        steps = torch.arange(g, device=device, dtype=torch.float64) / max(1, g - 1)
        target = torch.round(steps.unsqueeze(0) * (distinct - 1).clamp(min=0).unsqueeze(1).double())
        rank = torch.where(finite, rank, torch.full_like(rank, n + 1)).contiguous()
        position = torch.searchsorted(rank, target.to(torch.int64).contiguous())
        position = position.clamp(max=n - 1)
        p = torch.gather(xs, 1, position)
        has_input = distinct > 0
        p = torch.where(has_input.unsqueeze(1), p, torch.zeros_like(p))
        self.p = p.contiguous()  # (B, G)
        # inside inputs of window g: sorted positions [start_g, stop_g)
        start = torch.searchsorted(xs.contiguous(), self.p, right=True)
        stop = torch.empty_like(start)
        stop[:, :-1] = torch.searchsorted(xs.contiguous(), self.p[:, 1:].contiguous(), right=False)
        stop[:, -1] = start[:, -1]
        self.start = start
        self.count = (stop - start).clamp(min=0)
        width = torch.empty_like(self.p)
        width[:, :-1] = self.p[:, 1:] - self.p[:, :-1]
        width[:, -1] = math.inf
        self.width = width  # (B, G), last window unbounded


def _check_span(windows: _Windows) -> None:
    """Same limit and message as the reference solver (whose exponentials need it)."""
    if windows.p.numel() == 0:
        return
    spread = float((windows.p[:, -1] - windows.p[:, 0]).max())
    limit = math.log(torch.finfo(windows.p.dtype).max) - 20.0
    if spread > limit:
        raise ValueError(
            f"the finite input times of one sample span {spread:.1f} tau_syn, more than the "
            f"{limit:.0f} tau_syn that {windows.p.dtype} exponentials can represent; use float64 "
            "or shorten the trial"
        )


def _state_features(windows: _Windows, ratio: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """Features (B, G, n) whose products with W give the state at each boundary.

    ratio 1: (k(p - x), e^{-(p - x)}) -> (v, I);  ratio 2: (e^{-(p-x)/2}, e^{-(p-x)}) -> (S2, S1)
    """
    lag = windows.p.unsqueeze(2) - windows.x.unsqueeze(1)  # (B, G, n), -inf for silent inputs
    before = lag >= 0
    lag = torch.where(before, lag, torch.zeros_like(lag))
    e1 = torch.where(before, torch.exp(-lag), torch.zeros_like(lag))
    if ratio == 1.0:
        return lag * e1, e1
    return torch.where(before, torch.exp(-0.5 * lag), torch.zeros_like(lag)), e1


def _inside_bound_features(windows: _Windows, ratio: float) -> torch.Tensor:
    """(B, G, n): for inputs strictly inside window g, max of k over [0, p_{g+1} - x]."""
    p = windows.p
    x = windows.x.unsqueeze(1)
    end = torch.cat([p[:, 1:], p[:, -1:]], dim=1).unsqueeze(2)  # last window: empty
    inside = (x > p.unsqueeze(2)) & (x < end)
    peak = 1.0 if ratio == 1.0 else 2.0 * _LOG2
    lag = torch.where(inside, torch.clamp(end - x, max=peak), torch.zeros_like(end - x))
    if ratio == 1.0:
        k = lag * torch.exp(-lag)
    else:
        k = torch.exp(-0.5 * lag) - torch.exp(-lag)
    return torch.where(inside, k, torch.zeros_like(k))


def _free_value(s0, s1, u, ratio):
    """v(p + u) from the boundary state without new inputs (u finite, >= 0)."""
    if ratio == 1.0:
        return torch.exp(-u) * (s0 + u * s1)
    return torch.exp(-0.5 * u) * s0 - torch.exp(-u) * s1


def _free_maximum(s0, s1, width, ratio):
    """Maximum over u in [0, width] of the free evolution from state (s0, s1)."""
    finite_width = torch.where(torch.isfinite(width), width, torch.zeros_like(width))
    if ratio == 1.0:  # s0 = v, s1 = I
        start = s0
        positive = s1 > 0
        stationary = 1.0 - s0 / torch.where(positive, s1, torch.ones_like(s1))
    else:  # s0 = S2, s1 = S1
        start = s0 - s1
        positive = (s1 > 0) & (s0 > 0)
        quotient = 2.0 * s1 / torch.where(positive, s0, torch.ones_like(s0))
        stationary = 2.0 * torch.log(torch.where(positive, quotient, torch.ones_like(quotient)))
    stationary = torch.where(positive, stationary, torch.zeros_like(stationary))
    stationary = torch.minimum(torch.clamp(stationary, min=0.0), width)
    stationary = torch.where(torch.isfinite(stationary), stationary, torch.zeros_like(stationary))
    best = torch.maximum(start, _free_value(s0, s1, finite_width, ratio))
    return torch.maximum(best, _free_value(s0, s1, stationary, ratio))


def _bound_slack(dtype: torch.dtype) -> float:
    # relative allowance for rounding in the products (sums of ~1e3 terms); extra slack
    # only costs extra local checks, never correctness
    return 1e-3 if dtype in (torch.float32, torch.float16, torch.bfloat16) else 1e-9


class _Local:
    """Inside inputs of one window per (sample, neuron) pair, gathered: (N, s)."""

    def __init__(self, windows: _Windows, weights: torch.Tensor, pair_b, pair_j, pair_g):
        n = windows.x.shape[1]
        m = weights.shape[1]
        G = windows.n_boundaries
        flat_bg = pair_b * G + pair_g
        self.p = windows.p.reshape(-1)[flat_bg]
        self.width = windows.width.reshape(-1)[flat_bg]
        start = windows.start.reshape(-1)[flat_bg]
        count = windows.count.reshape(-1)[flat_bg]
        s = int(count.max()) if count.numel() else 0
        k = torch.arange(s, device=weights.device)
        self.valid = k.unsqueeze(0) < count.unsqueeze(1)  # (N, s)
        position = torch.clamp(start.unsqueeze(1) + k, max=n - 1) + (pair_b * n).unsqueeze(1)
        self.index = windows.order.reshape(-1)[position]  # input index (N, s)
        x = windows.sorted_x.reshape(-1)[position]
        zero = torch.zeros((), dtype=weights.dtype, device=weights.device)
        self.u = torch.where(self.valid, x - self.p.unsqueeze(1), zero)  # in [0, width)
        self.w = torch.where(self.valid, weights.reshape(-1)[self.index * m + pair_j.unsqueeze(1)], zero)
        self.s = s


def _solve_pairs(local: _Local, s0, s1, c, ratio):
    """First crossing inside the pair's window: (found (N,), u (N,) from the window start)."""
    dtype = s0.dtype
    eps = torch.finfo(dtype).eps
    u, w, width = local.u, local.w, local.width.unsqueeze(1)
    e1 = torch.exp(u)
    if ratio == 1.0:  # running A (current weight) and B: v(p + t) = e^{-t} (t A - B)
        first = torch.cumsum(w * e1, dim=1) + s1.unsqueeze(1)
        second = torch.cumsum(w * (u * e1), dim=1) - s0.unsqueeze(1)
        first = torch.cat([s1.unsqueeze(1), first], dim=1)
        second = torch.cat([-s0.unsqueeze(1), second], dim=1)
    else:  # running S2, S1: v(p + t) = e^{-t/2} S2 - e^{-t} S1
        first = torch.cumsum(w * torch.exp(0.5 * u), dim=1) + s0.unsqueeze(1)
        second = torch.cumsum(w * e1, dim=1) + s1.unsqueeze(1)
        first = torch.cat([s0.unsqueeze(1), first], dim=1)
        second = torch.cat([s1.unsqueeze(1), second], dim=1)
    # sub-interval k = [lo_k, hi_k] between consecutive inside inputs (padding: empty at width)
    padded = torch.where(local.valid, u, width.expand_as(u))
    zero_col = torch.zeros_like(width)
    lo = torch.cat([zero_col, padded], dim=1)
    hi = torch.cat([padded, width], dim=1)
    cc = c.unsqueeze(1)
    if ratio == 1.0:
        positive = first > 0
        peak = 1.0 + second / torch.where(positive, first, torch.ones_like(first))
    else:
        positive = (first > 0) & (second > 0)
        peak = 2.0 * torch.log(2.0 * torch.where(positive, second, torch.ones_like(second))
                               / torch.where(positive, first, torch.ones_like(first)))
    peak = torch.minimum(torch.maximum(peak, lo), hi)
    finite_peak = torch.isfinite(peak)
    peak = torch.where(finite_peak, peak, torch.zeros_like(peak))
    if ratio == 1.0:
        v_max = torch.exp(-peak) * (first * peak - second)
    else:
        v_max = torch.exp(-0.5 * peak) * first - torch.exp(-peak) * second
    reach = positive & finite_peak & (v_max >= cc * (1.0 - 16.0 * eps))
    found = reach.any(dim=1)
    k = torch.argmax(reach.to(torch.uint8), dim=1, keepdim=True)
    a = torch.gather(first, 1, k).squeeze(1)
    b = torch.gather(second, 1, k).squeeze(1)
    lo_k = torch.gather(lo, 1, k).squeeze(1)
    hi_k = torch.gather(hi, 1, k).squeeze(1)
    one = torch.ones_like(a)
    if ratio == 1.0:
        safe_a = torch.where(found, a, one)
        mean_time = torch.where(found, b / safe_a, torch.zeros_like(a))
        z = -(c / safe_a) * torch.exp(mean_time)
        z = torch.where(found, torch.clamp(z, min=-_INV_E, max=0.0), torch.full_like(z, -0.1))
        t = mean_time - lambertw(z)
    else:  # a = S2, b = S1: e^{-t/2} = (S2 + sqrt(S2^2 - 4 S1 c)) / (2 S1)
        discriminant = torch.clamp(a * a - 4.0 * b * c, min=0.0)
        root = (a + torch.sqrt(discriminant)) / torch.where(found, 2.0 * b, one)
        t = -2.0 * torch.log(torch.where(found, root, one))
    t = torch.minimum(torch.maximum(t, lo_k), hi_k)
    return found, t


def _boundary_states(windows: _Windows, weights: torch.Tensor, ratio: float):
    f0, f1 = _state_features(windows, ratio)
    B, G, n = f0.shape
    both = torch.cat([f0.reshape(B * G, n), f1.reshape(B * G, n)], dim=0) @ weights
    s0, s1 = both.reshape(2, B, G, -1).unbind(0)
    return (f0, f1), s0, s1


def _solve_group(x: torch.Tensor, weights: torch.Tensor, c: torch.Tensor, ratio: float,
                 boundaries: Optional[int] = None) -> torch.Tensor:
    """First-spike times in tau_syn units (B, m) for one group of neurons with one tau."""
    B, n = x.shape
    m = weights.shape[1]
    out = torch.full((B, m), math.inf, dtype=weights.dtype, device=weights.device)
    windows = _Windows(x, boundaries)
    _check_span(windows)
    G = windows.n_boundaries
    _, s0, s1 = _boundary_states(windows, weights, ratio)  # (B, G, m)
    bound_features = _inside_bound_features(windows, ratio)
    inside = (bound_features.reshape(B * G, n) @ torch.clamp(weights, min=0.0)).reshape(B, G, m)
    bound = _free_maximum(s0, s1, windows.width.unsqueeze(2), ratio) + inside
    candidate = bound >= c * (1.0 - _bound_slack(weights.dtype))  # (B, G, m)
    candidate = candidate.permute(0, 2, 1).contiguous()  # (B, m, G)
    window_index = torch.arange(G, device=x.device)
    any_candidate = candidate.any(dim=2)
    pairs = torch.nonzero(any_candidate.reshape(-1)).squeeze(1)
    pair_g = torch.argmax(candidate.reshape(B * m, G)[pairs].to(torch.uint8), dim=1)
    while pairs.numel():
        pair_b = torch.div(pairs, m, rounding_mode="floor")
        pair_j = pairs - pair_b * m
        local = _Local(windows, weights, pair_b, pair_j, pair_g)
        flat = (pair_b * G + pair_g) * m + pair_j
        found, t = _solve_pairs(local, s0.reshape(-1)[flat], s1.reshape(-1)[flat], c[pair_j], ratio)
        out.view(-1)[pairs[found]] = (local.p + t)[found]
        # loose bound: move on to the next candidate window
        rest = ~found
        later = candidate.reshape(B * m, G)[pairs[rest]] & (window_index > pair_g[rest].unsqueeze(1))
        more = later.any(dim=1)
        pairs = pairs[rest][more]
        pair_g = torch.argmax(later[more].to(torch.uint8), dim=1)
    return out


def _groups(params: LayerParameters) -> Optional[List[Tuple[torch.Tensor, float, float]]]:
    """Columns sharing (tau_syn, ratio): [(columns, tau_syn, ratio)], None if too many."""
    pairs = torch.stack([params.tau_syn, params.ratio], dim=1)
    unique = torch.unique(pairs, dim=0)
    if unique.shape[0] > MAX_GROUPS:
        return None
    groups = []
    for tau, ratio in unique.tolist():
        columns = torch.nonzero((params.tau_syn == tau) & (params.ratio == ratio)).flatten()
        groups.append((columns, tau, ratio))
    return groups


def _batch_chunks(batch: int, per_sample: int):
    step = max(1, CHUNK_ELEMENTS // max(1, per_sample))
    for start in range(0, batch, step):
        yield slice(start, min(batch, start + step))


def solve_fast(input_times: torch.Tensor, weights: torch.Tensor,
               params: LayerParameters) -> Optional[torch.Tensor]:
    """First-spike times (B, m); None when the layer does not suit this solver (the caller
    then uses the reference solver): more than MAX_GROUPS (tau_syn, ratio) groups, or
    ratios other than 1 and 2."""
    groups = _groups(params)
    if groups is None or any(r not in (1.0, 2.0) for _, _, r in groups):
        return None
    batch, n = input_times.shape
    out = torch.full((batch, weights.shape[1]), math.inf, dtype=weights.dtype, device=weights.device)
    if batch == 0 or n == 0 or weights.shape[1] == 0:
        return out
    with torch.no_grad():
        x_all = input_times.detach()
        w_all = weights.detach()
        for columns, tau, ratio in groups:
            w = w_all[:, columns]
            c = params.threshold[columns]
            for rows in _batch_chunks(batch, n * MAX_BOUNDARIES):
                t = _solve_group(x_all[rows] / tau, w, c, ratio)
                out[rows, columns] = t * tau
    return out


# ----------------------------------------------------------------------------- gradients

def _gradients_group(x, weights, T, grad_T, c, ratio, need_input, need_weight, boundaries=None):
    """Gradients in tau_syn units for one group: (dL/dx (B, n) [tau units cancel],
    dL/dW / tau_syn (n, m)). x, T in tau_syn units; T may be any time (+inf: silent)."""
    B, n = x.shape
    m = weights.shape[1]
    dtype, device = weights.dtype, weights.device
    windows = _Windows(x, boundaries)
    G = windows.n_boundaries
    (f0, f1), s0, s1 = _boundary_states(windows, weights, ratio)
    p = windows.p.unsqueeze(2)  # (B, G, 1)
    spiking = torch.isfinite(T) & (grad_T != 0)
    # g* = last boundary strictly before T (-1: nothing causal)
    last = (p < T.unsqueeze(1)).sum(dim=1) - 1  # (B, m)
    active = spiking & (last >= 0)
    g_star = last.clamp(min=0)
    flat_bg = (torch.arange(B, device=device).unsqueeze(1) * G + g_star)
    p_star = windows.p.reshape(-1)[flat_bg]  # (B, m)
    uT = torch.where(active, T - p_star, torch.zeros_like(T))  # T - p_{g*} >= 0
    sel = flat_bg * m + torch.arange(m, device=device)
    a0, a1 = s0.reshape(-1)[sel], s1.reshape(-1)[sel]
    # slope of the free evolution from the boundary state at u = T - p_{g*}
    if ratio == 1.0:
        slope = torch.exp(-uT) * (a1 - a0 - uT * a1)
    else:
        slope = -0.5 * torch.exp(-0.5 * uT) * a0 + torch.exp(-uT) * a1
    # inside inputs of window g* before T, gathered per active pair
    pairs = torch.nonzero(active.reshape(-1)).squeeze(1)
    pair_b = torch.div(pairs, m, rounding_mode="floor")
    pair_j = pairs - pair_b * m
    local = _Local(windows, weights, pair_b, pair_j, g_star.reshape(-1)[pairs])
    lag = uT.reshape(-1)[pairs].unsqueeze(1) - local.u  # T - x in tau units
    causal = local.valid & (lag > 0)
    lag = torch.where(causal, lag, torch.zeros_like(lag))
    if ratio == 1.0:
        e = torch.exp(-lag)
        kernel = lag * e
        kernel_slope = (1.0 - lag) * e
    else:
        e, h = torch.exp(-lag), torch.exp(-0.5 * lag)
        kernel = h - e
        kernel_slope = e - 0.5 * h
    zero = torch.zeros((), dtype=dtype, device=device)
    kernel = torch.where(causal, kernel, zero)
    kernel_slope = torch.where(causal, kernel_slope, zero)
    slope.view(-1).index_add_(0, pairs, (local.w * kernel_slope).sum(dim=1))
    floor = math.sqrt(torch.finfo(dtype).eps) * c  # as the reference: keeps touches finite
    q = torch.where(active, grad_T, torch.zeros_like(grad_T)) / torch.maximum(slope, floor)
    # matrix-product part: all inputs up to p_{g*}, separable relative to p_{g*}
    onehot = (torch.arange(G, device=device).view(1, G, 1) == g_star.unsqueeze(1)) & active.unsqueeze(1)
    uG = uT.unsqueeze(1)
    qG = torch.where(onehot, q.unsqueeze(1), torch.zeros((), dtype=dtype, device=device))  # (B, G, m)
    if ratio == 1.0:
        # k(T - x) = e^{-U} (U E - (-K)) with E = e^{x - p}, K = (p - x) e^{x - p}
        eU = torch.exp(-uG)
        h_e = qG * eU * uG  # multiplies E
        h_k = qG * eU  # multiplies K
        # k'(T - x) = e^{-U} ((1 - U) E - K)
        d_e = qG * eU * (1.0 - uG)
        d_k = -qG * eU
    else:
        # k(T - x) = e^{-U/2} E2 - e^{-U} E1 ;  k' = -1/2 e^{-U/2} E2 + e^{-U} E1
        h_e = qG * torch.exp(-0.5 * uG)  # multiplies E2 (= f0)
        h_k = -qG * torch.exp(-uG)  # multiplies E1 (= f1)
        d_e = -0.5 * h_e
        d_k = -h_k
    grad_x = grad_w = None
    if need_weight:
        if ratio == 1.0:
            features = torch.cat([f1.reshape(B * G, n), f0.reshape(B * G, n)], dim=0)
        else:
            features = torch.cat([f0.reshape(B * G, n), f1.reshape(B * G, n)], dim=0)
        coefficients = torch.cat([h_e.reshape(B * G, m), h_k.reshape(B * G, m)], dim=0)
        grad_w = -(features.t() @ coefficients)
        local_w = -(kernel * q.reshape(-1)[pairs].unsqueeze(1))
        grad_w.view(-1).index_add_(0, (local.index * m + pair_j.unsqueeze(1)).reshape(-1),
                                   torch.where(causal, local_w, zero).reshape(-1))
    if need_input:
        back = torch.cat([d_e.reshape(B * G, m), d_k.reshape(B * G, m)], dim=0) @ weights.t()
        back_e, back_k = back.reshape(2, B, G, n).unbind(0)
        if ratio == 1.0:
            grad_x = (f1 * back_e + f0 * back_k).sum(dim=1)
        else:
            grad_x = (f0 * back_e + f1 * back_k).sum(dim=1)
        local_x = local.w * kernel_slope * q.reshape(-1)[pairs].unsqueeze(1)
        grad_x.view(-1).index_add_(0, (local.index + (pair_b * n).unsqueeze(1)).reshape(-1),
                                   torch.where(causal, local_x, zero).reshape(-1))
    return grad_x, grad_w


def gradients_fast(input_times, weights, output_times, params: LayerParameters, grad_output,
                   need_input_grad=True, need_weight_grad=True):
    """Same contract as ``first_spike_gradients``; None when the layer does not suit."""
    groups = _groups(params)
    if groups is None:
        return None
    batch, n = input_times.shape
    grad_input = torch.zeros_like(input_times) if need_input_grad else None
    grad_weights = torch.zeros_like(weights) if need_weight_grad else None
    if batch == 0 or n == 0 or weights.shape[1] == 0:
        return grad_input, grad_weights
    ratios_ok = all(r in (1.0, 2.0) for _, _, r in groups)
    if not ratios_ok:
        return None
    with torch.no_grad():
        for columns, tau, ratio in groups:
            w = weights[:, columns]
            c = params.threshold[columns]
            for rows in _batch_chunks(batch, n * MAX_BOUNDARIES):
                gx, gw = _gradients_group(
                    input_times[rows] / tau, w, output_times[rows][:, columns] / tau,
                    grad_output[rows][:, columns], c, ratio, need_input_grad, need_weight_grad)
                if need_input_grad:
                    grad_input[rows] += gx
                if need_weight_grad:
                    grad_weights[:, columns] += gw * tau
    return grad_input, grad_weights
