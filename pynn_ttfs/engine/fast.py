"""Fast exact first-spike times and gradients: probe windows, matrix products, one closed form.

Same mathematics and result as the reference solver in ``first_spike.py`` (the same closed
forms, agreeing to rounding), but the per-(sample, input, neuron) work is replaced by matrix
products over the inputs plus a little gathered work per (sample, neuron).

Times in one group of neurons are measured in that group's tau_syn (x = t / tau_syn).

Windows. Per sample, G boundaries p_0 < ... < p_{G-1} are chosen among the input times
(first and last finite input included, the rest balancing the number of inputs inside
each window; a large tied group, e.g. all dark MNIST pixels, counts little and becomes a
boundary, where it costs nothing). Window g spans
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
window g* before T are gathered per (sample, neuron). The forward pass keeps its boundary
states for this (``_StateCache``) when a backward pass can follow.

Small layers (n_pre * n_post <= DENSE_MAX_PRODUCT, e.g. Yin-Yang) skip the windows: all
(sample, input, neuron) running sums at once, one closed-form solve per (sample, neuron).

On the CPU, when numba is installed, every layer takes the dense path with its
O(batch x n_pre x n_post) part done by the fused loops of ``cpu_kernels`` (one pass over a
sample's sorted inputs per neuron, stopping at the crossing): without tensor temporaries
they beat both tensor paths there (about 5x for 256-246-10 on two cores). On GPUs the
tensor paths run: dense for small layers, windowed for the others.

CPU work is split into chunks of at most CPU_CHUNK_BYTES per temporary (see there).
Layers with more than MAX_GROUPS distinct (tau_syn, ratio) pairs, and gradients for tau
ratios other than 1 and 2, are left to the reference solver (the functions return None).
"""
from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch

from . import cpu_kernels
from .lambertw import _branch_point_series, _distance_from_branch_point, _halley
from .neuron import LayerParameters

_INV_E = math.exp(-1.0)
_LOG2 = math.log(2.0)
#: aim for about this many inside inputs per window (local gathered work)
INPUTS_PER_WINDOW = 24
#: most boundaries per sample (each costs a few matrix products)
MAX_BOUNDARIES = 8
#: bytes of the largest temporary on CPU: beyond ~32 MB glibc hands every allocation to mmap
#: and each fresh page faults, which costs more than the arithmetic, so work in chunks
CPU_CHUNK_BYTES = 16 << 20
#: on accelerators big launches are what pays
DEVICE_CHUNK_BYTES = 1 << 30
#: more distinct (tau_syn, ratio) groups than this: per-group products stop paying off
MAX_GROUPS = 4
#: forward boundary states kept for the backward pass (entries, least recently used out)
#: ... and only when they are this small (bytes), so large inference batches hold nothing
STATE_CACHE_MAX_BYTES = 256 << 20


def _chunk_elements(like: torch.Tensor) -> int:
    budget = CPU_CHUNK_BYTES if like.device.type == "cpu" else DEVICE_CHUNK_BYTES
    return max(1, budget // like.element_size())


class _Windows:
    """Per-sample probe boundaries and the inputs inside each window (tau_syn units).

    Attributes (B samples, G boundaries, s = most inside inputs of a window):
    p (B, G) boundary times; width (B, G) window lengths (last: inf); u (B, G, s) inside
    input times relative to p (padding: width); index_m (B, G, s) input index * n_post
    (padding: n_pre * n_post, which points at an appended zero row of the weights).
    """

    def __init__(self, x: torch.Tensor, n_post: int, boundaries: Optional[int] = None):
        batch, n = x.shape
        device = x.device
        self.x = x
        xs, order = torch.sort(x, dim=1)
        finite = xs < math.inf
        new = torch.ones_like(finite)
        new[:, 1:] = xs[:, 1:] != xs[:, :-1]
        new &= finite
        rank = torch.cumsum(new.to(torch.int64), dim=1) - 1
        rank = rank.clamp(min=0) * finite
        # multiplicity of each input's tied group
        multiplicity = torch.zeros_like(xs).scatter_add_(1, rank, finite.to(xs.dtype))
        multiplicity = torch.gather(multiplicity, 1, rank).clamp(min=1.0)
        n_finite = finite.sum(dim=1)
        # Balance the inside-input counts of the windows: every input counts once, but a
        # large tied group counts at most `cap` (it becomes a boundary, where it costs
        # nothing). Two passes settle the cap.
        total = n_finite.to(xs.dtype)
        for _ in range(2):
            g_est = boundaries if boundaries is not None else self._count(total)
            cap = (total / max(1, g_est - 1)).clamp(min=1.0).unsqueeze(1)
            weight = torch.clamp(cap / multiplicity, max=1.0) * finite
            total = weight.sum(dim=1)
        if boundaries is None:
            boundaries = self._count(total)
        G = boundaries
        self.n_boundaries = G
        cumulative = torch.cumsum(weight, dim=1) + (~finite) * 1e30
        # boundary g: where the capped cumulative count passes g / (G - 1) of the total;
        # g = 0 and g = G - 1 are the first and the last finite input
        steps = torch.arange(G, device=device, dtype=xs.dtype) / max(1, G - 1)
        target = steps.unsqueeze(0) * (total - 0.5).clamp(min=0.0).unsqueeze(1)
        target[:, 0] = 0.0
        position = torch.searchsorted(cumulative.contiguous(), target.contiguous())
        last = (n_finite - 1).clamp(min=0)
        position = torch.minimum(position, last.unsqueeze(1))
        position[:, -1] = last
        p = torch.gather(xs, 1, position)
        p = torch.where((n_finite > 0).unsqueeze(1), p, torch.zeros_like(p))  # all silent: 0
        p = p.contiguous()
        self.p = p
        start = torch.searchsorted(xs.contiguous(), p, right=True)
        stop = torch.empty_like(start)
        stop[:, :-1] = torch.searchsorted(xs.contiguous(), p[:, 1:].contiguous(), right=False)
        stop[:, -1] = start[:, -1]
        count = (stop - start).clamp(min=0)
        width = torch.empty_like(p)
        width[:, :-1] = p[:, 1:] - p[:, :-1]
        width[:, -1] = math.inf
        self.width = width
        s = int(count.max()) if count.numel() else 0
        self.s = s
        self.count = count
        # Per window, column 0 is a slot for the boundary state (zero weight), columns
        # 1..count the inside inputs, the rest padding (zero weight): (B, G, s + 1)
        k = torch.arange(s, device=device)
        valid = k.view(1, 1, s) < count.unsqueeze(2)  # (B, G, s)
        pos = torch.clamp(start.unsqueeze(2) + k, max=n - 1).view(batch, G * s)
        inside_x = torch.gather(xs, 1, pos).view(batch, G, s)
        inside_i = torch.gather(order, 1, pos).view(batch, G, s)
        # padding sits at the window end (an empty sub-interval); in the unbounded last
        # window (no inside inputs) at 0, so that no exponential sees infinity
        finite_width = torch.where(width < math.inf, width, torch.zeros_like(width)).unsqueeze(2)
        u = torch.minimum(inside_x - p.unsqueeze(2), finite_width).clamp(min=0.0)
        u = torch.where(valid, u, finite_width.expand_as(u))
        self.u = torch.cat([u.new_zeros((batch, G, 1)), u], dim=2)
        # sub-interval k of a window: [u_k, hi_k], hi_k = next input, or the window end
        # after the last inside input (k = count); padding intervals are empty
        hi = torch.cat([u, width.unsqueeze(2)], dim=2)
        after_last = torch.arange(s + 1, device=device).view(1, 1, s + 1) == count.unsqueeze(2)
        self.hi = torch.where(after_last, width.unsqueeze(2).expand_as(hi), hi)
        index = torch.where(valid, inside_i, torch.full_like(inside_i, n))  # padding: n
        self.index = torch.cat([index.new_full((batch, G, 1), n), index], dim=2)
        self.index_m = self.index * n_post
        self._terms = {}

    def terms(self, ratio: float) -> Tuple[torch.Tensor, torch.Tensor]:
        """Exponentials (B, G, s + 1) that, times the weights, build the running sums.

        ratio 1: (e^u, u e^u) for A and B;  ratio 2: (e^{u/2}, e^u) for S2 and S1.
        """
        if ratio not in self._terms:
            e1 = torch.exp(self.u)
            if ratio == 1.0:
                self._terms[ratio] = (e1, self.u * e1)
            else:
                self._terms[ratio] = (torch.exp(0.5 * self.u), e1)
        return self._terms[ratio]

    def plan(self, rows: torch.Tensor, budget: int):
        """Order pairs (by their window's inside count) and split them into chunks whose
        (pairs, count + 1) work fits ``budget``: (order, [(start, stop, count)])."""
        counts = self.count.reshape(-1).index_select(0, rows)
        counts, order = torch.sort(counts)
        histogram = torch.bincount(counts, minlength=1).tolist()
        chunks, begin, size, top = [], 0, 0, 0
        for value, number in enumerate(histogram):
            while number > 0:
                room = max(1, budget // (value + 1))
                if size >= room:
                    chunks.append((begin, begin + size, top))
                    begin, size = begin + size, 0
                take = min(number, room - size)
                size, number, top = size + take, number - take, value
        if size:
            chunks.append((begin, begin + size, top))
        return order, chunks

    @staticmethod
    def _count(total: torch.Tensor) -> int:
        most = float(total.max()) if total.numel() else 0.0
        return int(min(MAX_BOUNDARIES, max(2, 1 + math.ceil(most / INPUTS_PER_WINDOW))))

    def check_span(self) -> None:
        """Same limit and message as the reference solver (whose exponentials need it)."""
        if self.p.numel() == 0:
            return
        spread = float((self.p[:, -1] - self.p[:, 0]).max())
        limit = math.log(torch.finfo(self.p.dtype).max) - 20.0
        if spread > limit:
            raise ValueError(span_message(spread, limit, self.p.dtype))


def _state_features(windows: _Windows, ratio: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """Features (B, G, n) whose products with W give the state at each boundary.

    ratio 1: (k(p - x), e^{-(p - x)}) -> (v, I);  ratio 2: (e^{-(p-x)/2}, e^{-(p-x)}) -> (S2, S1)
    Both are exactly 0 for inputs after p and for silent ones.
    """
    lag = windows.p.unsqueeze(2) - windows.x.unsqueeze(1)  # (B, G, n); -inf if silent
    before = lag >= 0
    lag = lag.clamp(min=0.0)  # inputs after p: e^0 * 0 below
    e1 = torch.exp(-lag) * before
    if ratio == 1.0:
        return lag * e1, e1
    return torch.exp(-0.5 * lag) * before, e1


def _inside_bound_features(windows: _Windows, ratio: float) -> torch.Tensor:
    """(B, G, n): for inputs strictly inside window g, max of k over [0, p_{g+1} - x]."""
    p = windows.p
    x = windows.x.unsqueeze(1)
    end = torch.cat([p[:, 1:], p[:, -1:]], dim=1).unsqueeze(2)  # last window: empty
    inside = (x > p.unsqueeze(2)) & (x < end)
    peak = 1.0 if ratio == 1.0 else 2.0 * _LOG2
    lag = torch.clamp(end - x, min=0.0, max=peak)  # silent inputs: -inf -> 0
    if ratio == 1.0:
        k = lag * torch.exp(-lag)
    else:
        k = torch.exp(-0.5 * lag) - torch.exp(-lag)
    return k * inside


def _free_value(s0, s1, u, ratio):
    """v(p + u) from the boundary state without new inputs (u finite, >= 0)."""
    if ratio == 1.0:
        return torch.exp(-u) * (s0 + u * s1)
    return torch.exp(-0.5 * u) * s0 - torch.exp(-u) * s1


def _free_maximum(s0, s1, width, ratio):
    """Maximum over u in [0, width] of the free evolution from state (s0, s1)."""
    finite_width = torch.where(width < math.inf, width, torch.zeros_like(width))
    tiny = torch.finfo(s0.dtype).tiny
    if ratio == 1.0:  # s0 = v, s1 = I; stationary point 1 - v / I (a maximum if I > 0)
        start = s0
        stationary = 1.0 - s0 / s1.clamp(min=tiny)
    else:  # s0 = S2, s1 = S1; stationary point 2 ln(2 S1 / S2) (a maximum if both > 0)
        start = s0 - s1
        stationary = 2.0 * torch.log((2.0 * s1 / s0.clamp(min=tiny)).clamp(min=tiny))
    # any point of [0, width] gives a value <= the maximum, so a wrong stationary point
    # (state without a maximum) costs nothing; the maximum is at 0, width or the stationary
    stationary = torch.minimum(stationary.clamp(min=0.0), width)
    stationary = torch.nan_to_num(stationary, nan=0.0, posinf=0.0)
    best = torch.maximum(start, _free_value(s0, s1, finite_width, ratio))
    return torch.maximum(best, _free_value(s0, s1, stationary, ratio))


def _bound_slack(dtype: torch.dtype) -> float:
    # relative allowance for rounding in the products (sums of ~1e3 terms); extra slack
    # only costs extra local checks, never correctness
    return 1e-3 if dtype in (torch.float32, torch.float16, torch.bfloat16) else 1e-9


def _boundary_states(windows: _Windows, weights: torch.Tensor, ratio: float):
    f0, f1 = _state_features(windows, ratio)
    B, G, n = f0.shape
    s0 = (f0.reshape(B * G, n) @ weights).reshape(B, G, -1)
    s1 = (f1.reshape(B * G, n) @ weights).reshape(B, G, -1)
    return (f0, f1), s0, s1


def _inside_terms(windows: _Windows, weights_ext: torch.Tensor, rows, pair_j, width: int):
    """Gathered window columns [0, width) for the pairs: (u, w, index_m) each (N, width)."""
    cols = windows.s + 1
    u = windows.u.reshape(-1, cols)[:, :width].index_select(0, rows)
    index = windows.index_m.reshape(-1, cols)[:, :width].index_select(0, rows) + pair_j.unsqueeze(1)
    w = weights_ext.reshape(-1).take(index)
    return u, w, index


def _solve_pairs(windows: _Windows, weights_ext, rows, pair_j, s0, s1, c, ratio, width):
    """First crossing inside each pair's window: (found (N,), t (N,) from the window start).

    rows: flat (sample, boundary) index of each pair's window; s0, s1: its state (N,);
    width: columns to look at (1 + the most inside inputs among these pairs).
    """
    dtype = s0.dtype
    eps = torch.finfo(dtype).eps
    tiny = torch.finfo(dtype).tiny
    cols = windows.s + 1
    index = windows.index_m.reshape(-1, cols)[:, :width].index_select(0, rows) + pair_j.unsqueeze(1)
    w = weights_ext.reshape(-1).take(index)
    term_first, term_second = windows.terms(ratio)
    first = w * term_first.reshape(-1, cols)[:, :width].index_select(0, rows)
    second = w * term_second.reshape(-1, cols)[:, :width].index_select(0, rows)
    if ratio == 1.0:  # running A and B: v(p + t) = e^{-t} (t A - B) on each sub-interval
        first[:, 0] = s1
        second[:, 0] = -s0
    else:  # running S2 and S1: v(p + t) = e^{-t/2} S2 - e^{-t} S1
        first[:, 0] = s0
        second[:, 0] = s1
    first = first.cumsum_(dim=1)
    second = second.cumsum_(dim=1)
    lo = windows.u.reshape(-1, cols)[:, :width].index_select(0, rows)
    hi = windows.hi.reshape(-1, cols)[:, :width].index_select(0, rows)
    if ratio == 1.0:
        positive = first > 0
        peak = 1.0 + second / first.clamp(min=tiny)
    else:
        positive = (first > 0) & (second > 0)
        peak = 2.0 * torch.log((2.0 * second / first.clamp(min=tiny)).clamp(min=tiny))
    peak = torch.minimum(torch.maximum(peak, lo), hi)
    if ratio == 1.0:
        v_max = torch.exp(-peak) * (first * peak - second)
    else:
        v_max = torch.exp(-0.5 * peak) * first - torch.exp(-peak) * second
    # NaN (an empty interval at infinity) compares False
    reach = positive & (v_max >= (c * (1.0 - 16.0 * eps)).unsqueeze(1))
    found, k = torch.max(reach.to(dtype), dim=1, keepdim=True)  # first interval reached
    found = found.squeeze(1) > 0
    a = torch.gather(first, 1, k).squeeze(1)
    b = torch.gather(second, 1, k).squeeze(1)
    lo_k = torch.gather(lo, 1, k).squeeze(1)
    hi_k = torch.gather(hi, 1, k).squeeze(1)
    return found, torch.stack([a, b, lo_k, hi_k])


def _lambertw0_negative(z: torch.Tensor) -> torch.Tensor:
    """Principal Lambert W on [-1/e, 0] (all that the crossing needs), with the starting
    points of ``lambertw.lambertw`` but fewer Halley steps: from them 2 (float32) or 3
    (float64) steps reach round-off (checked against lambertw over the whole interval)."""
    steps = 2 if z.dtype in (torch.float32, torch.float16, torch.bfloat16) else 3
    p = torch.sqrt(torch.clamp(2.0 * _distance_from_branch_point(z), min=0.0))
    near = _branch_point_series(p)  # series around the branch point z = -1/e
    lz = torch.log1p(torch.clamp(z, min=-0.25))
    winitzki = lz * (1.0 - torch.log1p(lz) / (2.0 + lz))
    w = _halley(torch.where(z < -0.25, near, winitzki), z, steps)
    # at the branch point Halley is ill-conditioned and the series exact enough
    radius = 0.1 if steps == 2 else 0.01
    return torch.where(p < radius, near, w)


def _closed_form(a, b, lo, hi, c, ratio):
    """The first crossing time from the window start, given the running sums (a, b) of the
    sub-interval [lo, hi] that holds it (all (N,))."""
    if ratio == 1.0:  # a = A > 0, b = B: t = B/A - W0(-(c/A) e^{B/A})
        mean_time = b / a
        z = -(c / a) * torch.exp(mean_time)
        t = mean_time - _lambertw0_negative(torch.clamp(z, min=-_INV_E, max=0.0))
    else:  # a = S2, b = S1: e^{-t/2} = (S2 + sqrt(S2^2 - 4 S1 c)) / (2 S1)
        discriminant = torch.clamp(a * a - 4.0 * b * c, min=0.0)
        root = (a + torch.sqrt(discriminant)) / (2.0 * b)
        t = -2.0 * torch.log(root)
    t = torch.nan_to_num(t, nan=0.0)
    return torch.minimum(torch.maximum(t, lo), hi)


def _with_zero_row(weights: torch.Tensor) -> torch.Tensor:
    return torch.cat([weights, torch.zeros_like(weights[:1])], dim=0).contiguous()


def _solve_rows(x, weights, weights_ext, positive_weights, c, ratio):
    """One chunk of samples: (times in tau_syn units (B, m), windows, states)."""
    B, n = x.shape
    m = weights.shape[1]
    windows = _Windows(x, m)
    windows.check_span()
    G = windows.n_boundaries
    features, s0, s1 = _boundary_states(windows, weights, ratio)  # (B, G, m)
    bound_features = _inside_bound_features(windows, ratio)
    inside = (bound_features.reshape(B * G, n) @ positive_weights).reshape(B, G, m)
    bound = _free_maximum(s0, s1, windows.width.unsqueeze(2), ratio) + inside
    slack = _bound_slack(weights.dtype)
    candidate = (bound >= c * (1.0 - slack)).to(x.dtype)  # (B, G, m)
    candidate = candidate.permute(0, 2, 1).reshape(B * m, G)
    out = torch.full((B * m,), math.inf, dtype=x.dtype, device=x.device)
    any_candidate, pair_g = torch.max(candidate, dim=1)
    pairs = torch.nonzero(any_candidate > 0).squeeze(1)
    pair_g = pair_g[pairs]
    later_mask = torch.arange(G, device=x.device)
    budget = max(1, _chunk_elements(x) // 4)
    solved = []  # per round: (pairs, window start, (a, b, lo, hi), threshold)
    while pairs.numel():
        rows = torch.div(pairs, m, rounding_mode="floor") * G + pair_g
        order, chunks = windows.plan(rows, budget)
        pairs, pair_g, rows = pairs[order], pair_g[order], rows[order]
        pair_j = pairs % m
        flat = rows * m + pair_j
        found = torch.empty_like(pairs, dtype=torch.bool)
        sums = torch.empty((4,) + pairs.shape, dtype=x.dtype, device=x.device)
        for begin, stop, top in chunks:
            part = slice(begin, stop)
            found[part], sums[:, part] = _solve_pairs(
                windows, weights_ext, rows[part], pair_j[part], s0.reshape(-1)[flat[part]],
                s1.reshape(-1)[flat[part]], c[pair_j[part]], ratio, top + 1)
        solved.append((pairs[found], windows.p.reshape(-1)[rows[found]], sums[:, found],
                       c[pair_j[found]]))
        # loose bound: move on to the next candidate window
        rest = ~found
        pairs, pair_g = pairs[rest], pair_g[rest]
        later = candidate[pairs] * (later_mask > pair_g.unsqueeze(1))
        more, pair_g = torch.max(later, dim=1)
        keep = more > 0
        pairs, pair_g = pairs[keep], pair_g[keep]
    if solved:  # one closed-form solve for all rounds
        done, start, sums, threshold = (torch.cat(z, dim=-1) for z in zip(*solved))
        out[done] = start + _closed_form(sums[0], sums[1], sums[2], sums[3], threshold, ratio)
    return out.reshape(B, m), windows, (features, s0, s1)


def _groups(params: LayerParameters) -> Optional[List[Tuple[Optional[torch.Tensor], float, float]]]:
    """Columns sharing (tau_syn, ratio): [(columns, tau_syn, ratio)], columns None when the
    group is the whole layer; None when the layer does not suit the fast solver (more than
    MAX_GROUPS groups, or a ratio other than 1, 2)."""
    tau_syn, ratio = params.tau_syn, params.ratio
    if tau_syn.numel() == 0:
        return []
    # the common case, one (tau_syn, ratio) for the whole layer, without torch.unique
    if bool(((tau_syn == tau_syn[0]) & (ratio == ratio[0])).all()):
        r = float(ratio[0])
        return [(None, float(tau_syn[0]), r)] if r in (1.0, 2.0) else None
    unique = torch.unique(torch.stack([tau_syn, ratio], dim=1), dim=0)
    if unique.shape[0] > MAX_GROUPS or any(r not in (1.0, 2.0) for r in unique[:, 1].tolist()):
        return None
    groups = []
    for tau, r in unique.tolist():
        columns = torch.nonzero((tau_syn == tau) & (ratio == r)).flatten()
        groups.append((columns, tau, r))
    return groups


def _row_chunks(x: torch.Tensor, m: int):
    """Sample ranges whose (samples, boundaries, n_pre) and (samples, n_post, s) work fits
    the chunk budget."""
    batch, n = x.shape
    per_sample = MAX_BOUNDARIES * max(n, 2 * m)
    step = max(1, _chunk_elements(x) // (2 * per_sample))
    return [slice(i, min(batch, i + step)) for i in range(0, batch, step)]


def _state_key(tau, ratio, columns) -> tuple:
    """Identifies one (tau_syn, ratio) column group of a layer in a solver state."""
    if columns is None:
        return (float(tau), float(ratio), "all")
    return (float(tau), float(ratio), columns.numel(), int(columns[0]) if columns.numel() else -1)


def solve_fast(input_times: torch.Tensor, weights: torch.Tensor, params: LayerParameters,
               keep_state: bool = False) -> Optional[Tuple[torch.Tensor, Optional[dict]]]:
    """(first-spike times (B, m), solver state); None when the layer does not suit this
    solver (the caller then uses the reference solver): more than MAX_GROUPS (tau_syn,
    ratio) groups, or ratios other than 1 and 2.

    With ``keep_state`` the probe-window states of windowed layers are returned (if they fit
    STATE_CACHE_MAX_BYTES) for :func:`gradients_fast` on the same inputs and weights, so the
    backward pass does not recompute them; the autograd Function keeps them on its ctx."""
    groups = _groups(params)
    if groups is None:
        return None
    batch, n = input_times.shape
    out = torch.full((batch, weights.shape[1]), math.inf, dtype=weights.dtype, device=weights.device)
    kept: Optional[dict] = {} if keep_state else None
    if batch == 0 or n == 0 or weights.shape[1] == 0:
        return out, kept
    with torch.no_grad():
        x_all = input_times.detach()
        w_all = weights.detach()
        for columns, tau, ratio in groups:
            whole = columns is None
            w = (w_all if whole else w_all[:, columns]).contiguous()
            c = params.threshold if whole else params.threshold[columns]
            x = x_all / tau if tau != 1.0 else x_all
            if _use_cpu_kernels(x) or n * w.shape[1] <= DENSE_MAX_PRODUCT:
                t = _dense_times(x, w, c, ratio)
                t = t * tau if tau != 1.0 else t
                if whole:
                    return t, kept
                out[:, columns] = t
                continue
            w_ext = _with_zero_row(w)
            w_pos = torch.clamp(w, min=0.0)
            # keep the boundary states for a backward pass, if one can follow
            keep = keep_state
            states, kept_bytes = [], 0
            for rows in _row_chunks(x, w.shape[1]):
                t, windows, (features, s0, s1) = _solve_rows(x[rows], w, w_ext, w_pos, c, ratio)
                if whole:
                    out[rows] = t * tau
                else:
                    out[rows, columns] = t * tau
                kept_bytes += (2 * (s0.numel() + features[0].numel()) * s0.element_size()
                               + windows.u.numel() * 40)
                keep = keep and kept_bytes <= STATE_CACHE_MAX_BYTES
                states.append((windows, features, s0, s1) if keep else None)
            if keep:
                kept[_state_key(tau, ratio, columns)] = states
    return out, kept


# ----------------------------------------------------------------------------- small layers
#: layers with n_pre * n_post up to this use the dense path (every sub-interval of every
#: (sample, neuron) at once): for them the window machinery costs more than it saves
DENSE_MAX_PRODUCT = 2048


def _use_cpu_kernels(x: torch.Tensor) -> bool:
    return cpu_kernels.AVAILABLE and x.device.type == "cpu"


def _check_spread(spread: float, dtype: torch.dtype) -> None:
    limit = math.log(torch.finfo(dtype).max) - 20.0
    if spread > limit:
        raise ValueError(span_message(spread, limit, dtype))


def span_message(spread: float, limit: float, dtype: torch.dtype) -> str:
    """Why a sample's input times cannot be solved, and what helps."""
    remedy = "use float64 or shorten the span" if dtype != torch.float64 else "shorten the span"
    return (f"the finite input times of one sample span {spread:.1f} tau_syn, more than the "
            f"{limit:.0f} tau_syn that {dtype} exponentials can represent; {remedy} (in a "
            f"PyNN script: sim.setup(trial_duration=...) splits a run into trials, each "
            f"solved on its own; in a recipe: t_late, bias_times or input_noise)")


def _dense_times(x, weights, c, ratio):
    """One group, tau_syn units: first-spike times (B, m) by the dense algorithm, as fused
    CPU loops (any layer, on the CPU) or as tensor operations (small layers), in
    memory-bounded sample chunks."""
    if _use_cpu_kernels(x):
        solve, w, chunks = _solve_dense_cpu, weights, _loop_chunks(x, weights.shape[1])
    else:  # the tensor path takes the weights with a zero row for silent inputs
        solve, w, chunks = _solve_dense, _with_zero_row(weights), _row_chunks(x, weights.shape[1])
    if len(chunks) == 1:
        return solve(x, w, c, ratio)
    return torch.cat([solve(x[rows], w, c, ratio) for rows in chunks], dim=0)


#: bytes of the float64 copies and results the CPU loops hold per call
LOOP_CHUNK_BYTES = 64 << 20


def _loop_chunks(x: torch.Tensor, m: int):
    """Sample ranges whose float64 working set in the CPU loops (inputs, six (B, m)
    results) stays within LOOP_CHUNK_BYTES."""
    batch, n = x.shape
    step = max(1, LOOP_CHUNK_BYTES // (8 * (n + 6 * m)))
    return [slice(i, min(batch, i + step)) for i in range(0, batch, step)]


class _torch_threads_kept:
    """Runs the loops on torch's thread count and keeps that count: numba's OpenMP layer
    shares the OpenMP runtime with torch and, when it starts, sets the process's thread
    count to all cores, which torch then reports and uses (seen: a run with
    ``torch.set_num_threads(1)`` went on with 2 threads, 5x slower per epoch when two
    runs shared two cores)."""

    def __enter__(self):
        self.threads = torch.get_num_threads()
        cpu_kernels.use_threads(self.threads)

    def __exit__(self, *exc):
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)


def _weights_for_loops(weights):
    """float32 weights as they are (the loops sum in float64, exactly the same values,
    from half the memory), any other dtype as float64."""
    return (weights if weights.dtype == torch.float32 else weights.double()).numpy()


def _solve_dense_cpu(x, weights, c, ratio):
    """:func:`_solve_dense` with the interval search in ``cpu_kernels`` (float64 sums) and
    the closed form here."""
    dtype = x.dtype
    eps = torch.finfo(dtype).eps
    reach = (c * (1.0 - 16.0 * eps)).double().numpy()
    with _torch_threads_kept():
        found, a, b, lo, hi, reference, spread = cpu_kernels.crossing_intervals(
            x.double().numpy(), _weights_for_loops(weights), ratio, reach)
    if spread.size:
        _check_spread(float(spread.max()), dtype)
    a, b, lo, hi, reference = (torch.from_numpy(v).to(dtype) for v in (a, b, lo, hi, reference))
    t = _closed_form(a, b, lo, hi, c, ratio)
    return torch.where(torch.from_numpy(found), t + reference.unsqueeze(1),
                       torch.full_like(t, math.inf))


def _solve_dense(x, weights_ext, c, ratio):
    """Small layer, one group, tau_syn units: first-spike times (B, m).

    All (B, n, m) running sums over the sorted inputs, the unimodal maximum test on every
    sub-interval, one closed-form solve per (sample, neuron).
    """
    B, n = x.shape
    m = weights_ext.shape[1]
    dtype = x.dtype
    eps, tiny = torch.finfo(dtype).eps, torch.finfo(dtype).tiny
    xs, order = torch.sort(x, dim=1)
    finite = xs < math.inf
    n_finite = finite.sum(dim=1, keepdim=True)
    reference = torch.where(n_finite > 0, xs[:, :1], torch.zeros_like(xs[:, :1]))
    last = torch.gather(xs, 1, (n_finite - 1).clamp(min=0))
    _check_spread(float((torch.where(n_finite > 0, last, reference) - reference).max()), dtype)
    # silent inputs: the zero weight row, and a time equal to the last finite input so
    # that their (empty) sub-intervals sit at a finite place
    dx = torch.where(finite, xs, torch.where(n_finite > 0, last, reference)) - reference
    index = torch.where(finite, order, torch.full_like(order, n))
    w = weights_ext.index_select(0, index.reshape(-1)).reshape(B, n, m)
    dx3 = dx.unsqueeze(2)
    e1 = torch.exp(dx3)
    if ratio == 1.0:
        first = torch.cumsum(w * e1, dim=1)
        second = torch.cumsum(w * (dx3 * e1), dim=1)
        positive = first > 0
        peak = 1.0 + second / first.clamp(min=tiny)
    else:
        first = torch.cumsum(w * torch.exp(0.5 * dx3), dim=1)
        second = torch.cumsum(w * e1, dim=1)
        positive = (first > 0) & (second > 0)
        peak = 2.0 * torch.log((2.0 * second / first.clamp(min=tiny)).clamp(min=tiny))
    hi = torch.cat([dx[:, 1:], torch.full_like(dx[:, :1], math.inf)], dim=1)
    # the interval after the last finite input is unbounded; later ones are empty
    position = torch.arange(n, device=x.device).unsqueeze(0)
    hi = torch.where(position == n_finite - 1, torch.full_like(hi, math.inf), hi)
    peak = torch.minimum(torch.maximum(peak, dx3), hi.unsqueeze(2))
    if ratio == 1.0:
        v_max = torch.exp(-peak) * (first * peak - second)
    else:
        v_max = torch.exp(-0.5 * peak) * first - torch.exp(-peak) * second
    reach = positive & (v_max >= c * (1.0 - 16.0 * eps))
    found, k = torch.max(reach.to(dtype), dim=1, keepdim=True)  # (B, 1, m)
    found = found.squeeze(1) > 0
    a = torch.gather(first, 1, k).squeeze(1)
    b = torch.gather(second, 1, k).squeeze(1)
    lo_k = torch.gather(dx, 1, k.squeeze(1))
    hi_k = torch.gather(hi, 1, k.squeeze(1))
    t = _closed_form(torch.where(found, a, torch.ones_like(a)), torch.where(found, b, torch.ones_like(b)),
                     lo_k, hi_k, c, ratio)
    return torch.where(found, t + reference, torch.full_like(t, math.inf))


def _gradients_dense(x, weights, T, grad_T, c, ratio, need_input, need_weight, cutoff=None,
                     stats=None, min_slope=None):
    """Small layer, tau_syn units: (dL/dx (B, n), dL/dW / tau_syn (n, m)) from (B, n, m).
    ``cutoff``: see :func:`_weight_scale`; ``min_slope``: see :func:`_slope_scale`."""
    dtype = x.dtype
    active = (T < math.inf) & (grad_T != 0)
    T = torch.where(active, T, torch.full_like(T, -math.inf))
    lag = T.unsqueeze(1) - x.unsqueeze(2)  # (B, n, m); -inf where not causal
    # an input at exactly T is causal: its kernel is 0 there but its right slope is not
    causal = lag >= 0
    lag = lag.clamp(min=0.0)
    e = torch.exp(-lag)
    if ratio == 1.0:
        kernel = lag * e
        slope_kernel = (1.0 - lag) * e * causal
    else:
        h = torch.exp(-0.5 * lag)
        kernel = (h - e) * causal
        slope_kernel = (e - 0.5 * h) * causal
    weighted_slope = slope_kernel * weights
    slope = weighted_slope.sum(dim=1)
    q = _slope_scale(active, grad_T, slope, c, min_slope, stats)
    grad_x = (weighted_slope * q.unsqueeze(1)).sum(dim=2) if need_input else None
    grad_w = None
    if need_weight:
        q_w = _weight_scale(q, lambda: (kernel * causal).amax(dim=1), cutoff, stats)
        # a product and a sum over the batch: CPU bmm/einsum loops over small batches
        grad_w = -(kernel * q_w.unsqueeze(1)).sum(dim=0)
    return grad_x, grad_w


def _gradients_dense_cpu(x, weights, T, grad_T, c, ratio, need_input, need_weight, cutoff=None,
                         stats=None, min_slope=None):
    """:func:`_gradients_dense` by the fused loops of ``cpu_kernels`` (float64 inside)."""
    dtype = x.dtype
    floor = (math.sqrt(torch.finfo(dtype).eps) * c).double().numpy()
    drop_below = (c.double() * (-math.inf if min_slope is None else min_slope)).numpy()
    with _torch_threads_kept():
        gx, gw, dropped, low_slope = cpu_kernels.dense_gradients(
            x.double().numpy(), weights.double().numpy(), T.double().numpy(),
            grad_T.double().numpy(), floor, drop_below, ratio, cutoff, need_input, need_weight)
    if stats is not None and cutoff is not None:
        stats["n_cut"] = stats.get("n_cut", 0) + int(dropped.sum())
    if stats is not None and min_slope is not None:
        stats["n_low_slope"] = stats.get("n_low_slope", 0) + int(low_slope.sum())
    return (torch.from_numpy(gx).to(dtype) if gx is not None else None,
            torch.from_numpy(gw).to(dtype) if gw is not None else None)


def _weight_scale(q, largest_kernel, cutoff, stats):
    """The published per-(sample, neuron) cut-off: sample b's weight gradient of neuron j,
    dL/dw_ij = -k(T_bj - x_bi) q_bj (tau_syn units), is dropped when its largest entry
    max_i k(T_bj - x_bi) |q_bj| exceeds ``cutoff``; the input-time gradient keeps q.
    ``largest_kernel()`` gives max_i k over the causal inputs, (B, m)."""
    if cutoff is None:
        return q
    drop = (largest_kernel() * q.abs() > cutoff) & (q != 0)
    if stats is not None:
        stats["n_cut"] = stats.get("n_cut", 0) + int(drop.sum())
    return torch.where(drop, torch.zeros_like(q), q)


def _slope_scale(active, grad_T, slope, c, min_slope, stats):
    """q = dL/dT / v'(T) of the active (sample, neuron) pairs, 0 elsewhere (tau_syn units).

    v'(T) is floored at sqrt(eps) c, as in the reference: an exact touch stays finite.
    ``min_slope`` (None = off): a pair whose v'(T) < min_slope c passes no gradient at all
    (counted in ``stats["n_low_slope"]``). At times recorded on another substrate (a chip
    whose neurons differ from the model) the model's membrane may be flat or falling at
    T; dividing by that slope gives gradients of arbitrary size and sign."""
    floor = math.sqrt(torch.finfo(slope.dtype).eps) * c
    if min_slope is not None:
        low = active & (slope < min_slope * c)
        if stats is not None:
            stats["n_low_slope"] = stats.get("n_low_slope", 0) + int(low.sum())
        active = active & ~low
    return torch.where(active, grad_T, torch.zeros_like(grad_T)) / torch.maximum(slope, floor)


def _largest_causal_kernel(x, T, ratio):
    """max over inputs x_bi < T_bj of k(T_bj - x_bi), (B, m), tau_syn units, without a
    (B, n, m) tensor: k is unimodal in the lag (peak at s* = 1 for ratio 1, 2 ln 2 for
    ratio 2), so the maximum sits at one of the two inputs around T - s*."""
    peak = 1.0 if ratio == 1.0 else 2.0 * math.log(2.0)
    xs = torch.sort(x, dim=1).values
    n = xs.shape[1]
    target = (T - peak).contiguous()
    after = torch.searchsorted(xs.contiguous(), target, right=True)  # first x > T - s*
    best = torch.zeros_like(T)
    for index in (after - 1, after):
        valid = (index >= 0) & (index < n)
        xi = torch.gather(xs, 1, index.clamp(0, n - 1))
        lag = T - xi
        valid &= (lag > 0) & torch.isfinite(lag)
        lag = torch.where(valid, lag, torch.zeros_like(lag))
        if ratio == 1.0:
            k = lag * torch.exp(-lag)
        else:
            k = torch.exp(-0.5 * lag) - torch.exp(-lag)
        best = torch.maximum(best, torch.where(valid, k, torch.zeros_like(k)))
    return best


# ----------------------------------------------------------------------------- gradients

def _gradients_rows(x, weights, weights_ext, T, grad_T, c, ratio, need_input, need_weight,
                    cached=None, cutoff=None, stats=None, min_slope=None):
    """One chunk of samples, tau_syn units: (dL/dx (B, n), dL/dW / tau_syn (n, m)).

    T may be any time (+inf: silent); the causal set of (b, j) is {x_bi <= T_bj}.
    """
    B, n = x.shape
    m = weights.shape[1]
    dtype, device = weights.dtype, weights.device
    zero = torch.zeros((), dtype=dtype, device=device)
    if cached is None:
        windows = _Windows(x, m)
        (f0, f1), s0, s1 = _boundary_states(windows, weights, ratio)
    else:
        windows, (f0, f1), s0, s1 = cached
    G = windows.n_boundaries
    p = windows.p.unsqueeze(2)  # (B, G, 1)
    active = (T < math.inf) & (grad_T != 0)
    # g* = the last boundary at or before T (-1: nothing causal); a boundary's state holds
    # the inputs at it, so an input at exactly T adds its right slope
    last = (p <= T.unsqueeze(1)).sum(dim=1) - 1  # (B, m)
    active &= last >= 0
    g_star = last.clamp(min=0)
    row_of = torch.arange(B, device=device).unsqueeze(1) * G + g_star  # (B, m)
    p_star = windows.p.reshape(-1)[row_of]
    uT = torch.where(active, T - p_star, zero)  # T - p_{g*} >= 0
    select = row_of * m + torch.arange(m, device=device)
    a0, a1 = s0.reshape(-1)[select], s1.reshape(-1)[select]
    # slope (tau_syn units) of the free evolution from the boundary state at T
    if ratio == 1.0:
        slope = torch.exp(-uT) * (a1 - a0 - uT * a1)
    else:
        slope = -0.5 * torch.exp(-0.5 * uT) * a0 + torch.exp(-uT) * a1
    # inside inputs of window g* before T, gathered per active pair (in chunks)
    pairs = torch.nonzero(active.reshape(-1)).squeeze(1)
    order, chunks = windows.plan(row_of.reshape(-1)[pairs], max(1, _chunk_elements(x) // 4))
    pairs = pairs[order]
    local = []
    for begin, stop, top in chunks:
        part = pairs[begin:stop]
        rows = row_of.reshape(-1)[part]
        pair_j = part % m
        u, w, index_m = _inside_terms(windows, weights_ext, rows, pair_j, top + 1)
        lag = uT.reshape(-1)[part].unsqueeze(1) - u  # T - x (tau_syn units)
        causal = lag >= 0  # padding has zero weight and lands on the dropped extra row
        lag = lag.clamp(min=0.0)
        if ratio == 1.0:
            e = torch.exp(-lag)
            kernel = lag * e
            kernel_slope = (1.0 - lag) * e * causal
        else:
            e, h = torch.exp(-lag), torch.exp(-0.5 * lag)
            kernel = (h - e) * causal
            kernel_slope = (e - 0.5 * h) * causal
        slope.view(-1).index_add_(0, part, (w * kernel_slope).sum(dim=1))
        local.append((part, rows, index_m, w, kernel, kernel_slope))
    q = _slope_scale(active, grad_T, slope, c, min_slope, stats)  # dL/dT / v'(T)
    q_w = _weight_scale(q, lambda: _largest_causal_kernel(x, torch.where(active, T, zero), ratio),
                        cutoff, stats) if need_weight else q
    # matrix-product part: every input up to p_{g*} is causal; separable relative to p_{g*}
    onehot = torch.arange(G, device=device).view(1, G, 1) == g_star.unsqueeze(1)
    qG = (q.unsqueeze(1) * onehot)  # (B, G, m); zero where inactive (q = 0)
    qG_w = qG if q_w is q else (q_w.unsqueeze(1) * onehot)
    uG = uT.unsqueeze(1)
    if ratio == 1.0:
        # k(T - x) = e^{-U} (U E + K),  k'(T - x) = e^{-U} ((1 - U) E - K), U = T - p,
        # E = e^{x - p} (= f1), K = (p - x) e^{x - p} (= f0)
        eU = torch.exp(-uG)
        h_first, h_second = eU * uG * qG_w, eU * qG_w  # weight-gradient coefficients of E, K
        d_first, d_second = eU * (1.0 - uG) * qG, -eU * qG  # input-gradient coefficients
        feat_first, feat_second = f1, f0
    else:
        # k(T - x) = e^{-U/2} E2 - e^{-U} E1,  k' = -1/2 e^{-U/2} E2 + e^{-U} E1
        h_first = torch.exp(-0.5 * uG) * qG_w
        h_second = -torch.exp(-uG) * qG_w
        d_first = -0.5 * torch.exp(-0.5 * uG) * qG
        d_second = torch.exp(-uG) * qG
        feat_first, feat_second = f0, f1
    grad_x = grad_w = None
    if need_weight:
        grad_w = torch.zeros((n + 1) * m, dtype=dtype, device=device)
        product = feat_first.reshape(B * G, n).t() @ h_first.reshape(B * G, m)
        product.addmm_(feat_second.reshape(B * G, n).t(), h_second.reshape(B * G, m))
        grad_w[: n * m] = product.reshape(-1)
        for part, rows, index_m, w, kernel, kernel_slope in local:
            grad_w.index_add_(0, index_m.reshape(-1), (kernel * q_w.reshape(-1)[part].unsqueeze(1)).reshape(-1))
        grad_w = -grad_w[: n * m].reshape(n, m)
    if need_input:
        back = torch.cat([d_first.reshape(B * G, m), d_second.reshape(B * G, m)], dim=0) @ weights.t()
        back_first, back_second = back.reshape(2, B, G, n).unbind(0)
        grad_x = torch.zeros(B * (n + 1), dtype=dtype, device=device)
        grad_x.view(B, n + 1)[:, :n] = (feat_first * back_first + feat_second * back_second).sum(dim=1)
        for part, rows, index_m, w, kernel, kernel_slope in local:
            sample = torch.div(rows, G, rounding_mode="floor")
            index = torch.div(index_m, m, rounding_mode="floor") + (sample * (n + 1)).unsqueeze(1)
            grad_x.index_add_(0, index.reshape(-1),
                              (w * kernel_slope * q.reshape(-1)[part].unsqueeze(1)).reshape(-1))
        grad_x = grad_x.view(B, n + 1)[:, :n]
    return grad_x, grad_w


def gradients_fast(input_times, weights, output_times, params: LayerParameters, grad_output,
                   need_input_grad=True, need_weight_grad=True, solver_state=None,
                   weight_grad_cutoff=None, stats=None, min_slope=None):
    """Same contract as ``first_spike_gradients``; None when the layer does not suit.
    ``solver_state``: what :func:`solve_fast` kept for these inputs and weights."""
    groups = _groups(params)
    if groups is None:
        return None
    batch, n = input_times.shape
    grad_input = torch.zeros_like(input_times) if need_input_grad else None
    grad_weights = torch.zeros_like(weights) if need_weight_grad else None
    if batch == 0 or n == 0 or weights.shape[1] == 0:
        return grad_input, grad_weights
    with torch.no_grad():
        x_all = input_times.detach()
        w_all = weights.detach()
        for columns, tau, ratio in groups:
            whole = columns is None
            w = (w_all if whole else w_all[:, columns]).contiguous()
            c = params.threshold if whole else params.threshold[columns]
            x = x_all / tau if tau != 1.0 else x_all
            T = output_times if whole else output_times[:, columns]
            T = T / tau if tau != 1.0 else T
            # dL/dw = tau * (tau_syn-unit gradient): compare the latter with cutoff / tau
            cutoff = None if weight_grad_cutoff is None else weight_grad_cutoff / float(tau)
            g = grad_output if whole else grad_output[:, columns]
            loops = _use_cpu_kernels(x)  # the fused CPU loops take every layer
            dense = loops or n * w.shape[1] <= DENSE_MAX_PRODUCT
            chunks = (_loop_chunks if loops else _row_chunks)(x, w.shape[1])
            cached = None
            if not dense and solver_state:
                cached = solver_state.get(_state_key(tau, ratio, columns))
                if cached is not None and len(cached) != len(chunks):
                    cached = None
            dense_gradients = _gradients_dense_cpu if loops else _gradients_dense
            if dense and whole and len(chunks) == 1:  # one chunk: no copies
                gx, gw = dense_gradients(x, w, T, g, c, ratio, need_input_grad,
                                         need_weight_grad, cutoff, stats, min_slope=min_slope)
                return gx, (gw * tau if tau != 1.0 and gw is not None else gw)
            w_ext = None if dense else _with_zero_row(w)
            for i, rows in enumerate(chunks):
                if dense:
                    gx, gw = dense_gradients(x[rows], w, T[rows], g[rows], c, ratio,
                                             need_input_grad, need_weight_grad, cutoff, stats,
                                             min_slope=min_slope)
                else:
                    gx, gw = _gradients_rows(
                        x[rows], w, w_ext, T[rows], g[rows], c, ratio, need_input_grad,
                        need_weight_grad, cached[i] if cached is not None else None, cutoff,
                        stats, min_slope)
                if need_input_grad:
                    grad_input[rows] += gx
                if need_weight_grad:
                    if whole:
                        grad_weights += gw * tau
                    else:
                        grad_weights[:, columns] += gw * tau
    return grad_input, grad_weights
