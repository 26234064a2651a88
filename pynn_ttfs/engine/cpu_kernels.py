"""Fused CPU loops (numba) for ``fast.py``'s dense path, used for every layer on the CPU.

A Yin-Yang layer (5 x 120, 121 x 3) is too small for tensor operations to pay off: the
eager PyTorch dense path runs ~100 tiny kernels per layer, and their launch cost, not the
arithmetic, sets the speed; for MNIST layers these loops also beat the windowed tensor
path on the CPU, since they stop at each neuron's crossing and need no temporaries. They
do the O(batch x n_pre x n_post) part of the algorithm in one pass per sample:

* forward, :func:`crossing_intervals`: sort a sample's inputs, walk them in time order
  keeping the running sums of every neuron, and stop at the first sub-interval whose
  (unimodal) membrane maximum reaches threshold (at a sub-interval's end the maximum needs
  no new exponential: e^{-t} of the input times is computed once per sample). The closed-form time inside that
  sub-interval (Lambert W / quadratic) is left to ``fast._closed_form`` so that the
  first-spike formula stays in one place.
* backward, :func:`dense_gradients`: the exact vector-Jacobian products of
  ``fast._gradients_dense`` (same formulas, same per-(sample, neuron) weight-gradient
  cut-off) without (batch, n_pre, n_post) temporaries, visiting only the causal inputs
  (those before the output spike) of each (sample, neuron).

Everything is computed in float64 and returned in float64; callers convert. Times are in
tau_syn units. The loops run on numba's threads, capped at ``torch.get_num_threads()``.
Set ``PYNN_TTFS_NUMBA=0`` to use the tensor path instead (it is also used when numba is
missing, and always on GPUs).
"""
from __future__ import annotations

import math
import os
import types

import numpy as np

try:  # numba is optional: without it the tensor path runs everywhere
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - exercised only where numba is not installed
    numba = None

#: the loops exist (numba is installed)
COMPILED = numba is not None
#: the engine uses them: numba installed and not disabled with PYNN_TTFS_NUMBA=0
AVAILABLE = COMPILED and os.environ.get("PYNN_TTFS_NUMBA", "1") != "0"


_threads = 1

#: a group of at least this many inputs at one time is summed along weight rows
TIE_GROUP_MIN = 8

#: the all-neurons loop packs the neurons still below threshold when half have crossed
#: and at least this many remain
PACK_MIN = 8

#: layers with at least this many neurons take the vector-over-neurons forward loop
#: (``_crossing_intervals_wide``); narrower ones walk neuron by neuron
WIDE_LAYER_MIN = 32


def use_threads(count: int) -> None:
    """Run the loops on at most ``count`` threads (torch's setting, so that
    ``torch.set_num_threads(1)`` holds for these loops too). One thread runs the serial
    compilation, outside any thread pool: the parallel one, limited to one thread, ran
    several times slower when several runs shared the cores (measured 6x per MNIST
    epoch)."""
    global _threads
    if COMPILED:
        _threads = max(1, min(int(count), numba.config.NUMBA_NUM_THREADS))
        if _threads > 1:
            numba.set_num_threads(_threads)


def _compiled(function):
    """(serial, parallel) compilations of one loop nest (prange = range in the serial one).

    The serial one is compiled from a copy under another name: numba's on-disk cache
    files are keyed by the function's name and signature, not by ``parallel``, so with one
    name the two compilations overwrite each other's cache entry and a later process
    loads whichever was written last (seen: the "serial" loops ran the parallel code and
    started numba's OpenMP threads)."""
    serial = types.FunctionType(function.__code__, function.__globals__,
                                function.__name__ + "_serial", function.__defaults__,
                                function.__closure__)
    serial.__qualname__ = function.__qualname__ + "_serial"
    return njit(cache=True)(serial), njit(parallel=True, cache=True)(function)


def _pick(variants):
    return variants[1] if _threads > 1 else variants[0]


if COMPILED:

    def _sorted_lags(row, ratio):
        """A sample's inputs in time order: (order, n_finite, dx, e_full, e_half,
        group_start, group_size). dx: lags of the finite inputs from the first one (the
        reference), e_full = e^{dx}, e_half = e^{dx / 2} (ratio 2; ones otherwise);
        [group_start, group_start + group_size): the largest group of inputs at one time
        if it holds at least TIE_GROUP_MIN inputs (MNIST's dark pixels), else size 0."""
        n = row.shape[0]
        order = np.argsort(row, kind="mergesort")
        n_finite = 0
        for k in range(n):
            if row[order[k]] < math.inf:
                n_finite += 1
        ref = row[order[0]] if n_finite > 0 else 0.0
        # sorted lags from the first input, and their exponentials (shared by all neurons)
        dx = np.empty(n_finite)
        e_full = np.empty(n_finite)
        e_half = np.empty(n_finite)
        for k in range(n_finite):
            dx[k] = row[order[k]] - ref
            e_full[k] = math.exp(dx[k])
            e_half[k] = math.exp(0.5 * dx[k]) if ratio != 1.0 else 1.0
        group_start = 0
        group_size = 0
        k = 0
        while k < n_finite:
            k_end = k + 1
            while k_end < n_finite and dx[k_end] == dx[k]:
                k_end += 1
            if k_end - k > group_size:
                group_start, group_size = k, k_end - k
            k = k_end
        if group_size < TIE_GROUP_MIN:
            group_size = 0
        return order, n_finite, dx, e_full, e_half, group_start, group_size

    _sorted_lags = njit(cache=True, inline="always")(_sorted_lags)

    def _sample_lags(x, s, ratio, reference, spread):
        """``_sorted_lags`` of sample s, its reference (first input time) and finite input
        spread written to reference[s] and spread[s]."""
        row = x[s]
        order, n_finite, dx, e_full, e_half, group_start, group_size = _sorted_lags(row, ratio)
        reference[s] = row[order[0]] if n_finite > 0 else 0.0
        spread[s] = dx[n_finite - 1] if n_finite > 0 else 0.0
        return order, n_finite, dx, e_full, e_half, group_start, group_size

    _sample_lags = njit(cache=True, inline="always")(_sample_lags)

    def _reaches(first, second, c, ratio, start, stop, last, e_full_start, e_full_stop,
                 e_half_start, e_half_stop):
        """Does u reach c on the non-empty sub-interval [start, stop] (stop = inf on the
        last one; e_*_stop unused there), with the running sums (first, second)? u is
        unimodal there. If its peak lies at or before start, u falls on the whole
        sub-interval and u(start) was tested with the sub-interval before (u is continuous;
        0 before the first input). Else the maximum is u(stop), tested without a division
        (the exponentials of the input times are known), or the interior peak."""
        if ratio == 1.0:  # u(t) = e^{-t} (first t - second), peak 1 + second/first
            if first > 0.0 and second > (start - 1.0) * first:
                if not last and second >= (stop - 1.0) * first:
                    return first * stop - second >= c * e_full_stop
                peak = 1.0 + second / first
                return math.exp(-peak) * (first * peak - second) >= c
            return False
        # u(t) = e^{-t/2} first - e^{-t} second, e^{peak/2} = 2 second/first
        if first > 0.0 and second > 0.0 and 2.0 * second > e_half_start * first:
            if not last and 2.0 * second >= e_half_stop * first:
                return first * e_half_stop - second >= c * e_full_stop
            peak = 2.0 * math.log(2.0 * second / first)
            return math.exp(-0.5 * peak) * first - math.exp(-peak) * second >= c
        return False

    _reaches = njit(cache=True, inline="always")(_reaches)

    def _crossing_intervals(x, weights_t, weights, ratio, threshold_reach, found, a, b, lo, hi,
                            reference, spread):
        """Neuron by neuron: each walks the sorted inputs and stops at its crossing (narrow
        layers, where a vector over neurons is too short to pay off)."""
        batch, n = x.shape
        m = weights_t.shape[0]
        for s in prange(batch):
            order, n_finite, dx, e_full, e_half, group_start, group_size = _sample_lags(
                x, s, ratio, reference, spread)
            # the group enters every neuron as one summed weight: the sums are added along
            # contiguous weight rows for all neurons at once instead of gathered neuron by neuron
            group_weight = np.zeros(m)
            for k in range(group_start, group_start + group_size):
                weight_row = weights[order[k]]
                for j in range(m):
                    group_weight[j] += weight_row[j]
            for j in range(m):
                first = 0.0
                second = 0.0
                c = threshold_reach[j]
                k = 0
                while k < n_finite:
                    if group_size > 0 and k == group_start:
                        w = group_weight[j]
                        k_next = k + group_size
                    else:
                        w = weights_t[j, order[k]]
                        k_next = k + 1
                    start = dx[k]
                    last = k_next == n_finite
                    stop = math.inf if last else dx[k_next]
                    if ratio == 1.0:
                        first += w * e_full[k]
                        second += w * (start * e_full[k])
                    else:
                        first += w * e_half[k]
                        second += w * e_full[k]
                    # an empty sub-interval (the next input at the same time) needs no test
                    if stop != start and _reaches(
                            first, second, c, ratio, start, stop, last, e_full[k],
                            math.inf if last else e_full[k_next], e_half[k],
                            math.inf if last else e_half[k_next]):
                        found[s, j] = True
                        a[s, j] = first
                        b[s, j] = second
                        lo[s, j] = start
                        hi[s, j] = stop
                        break
                    k = k_next

    def _accumulate(first, second, weight_row, count, add_first, add_second):
        """The running sums of the first ``count`` neurons after one more input (a vector
        loop)."""
        for p in range(count):
            first[p] += weight_row[p] * add_first
            second[p] += weight_row[p] * add_second

    _accumulate = njit(cache=True, inline="always")(_accumulate)

    def _add_row(target, full_row, neuron_of, count, packed, sign):
        """target[p] += sign * full_row[neuron_of[p]] for the first ``count`` positions
        (full_row read straight where the neurons are not packed); sign +1 or -1."""
        if packed:
            for p in range(count):
                target[p] += sign * full_row[neuron_of[p]]
        else:
            for p in range(count):
                target[p] += sign * full_row[p]

    _add_row = njit(cache=True, inline="always")(_add_row)

    def _crossing_intervals_wide(x, weights, column_sums, ratio, threshold_reach, found, a, b,
                                 lo, hi, reference, spread):
        """All neurons at once: the sorted inputs in the outer loop, the running sums of
        every neuron updated along one contiguous weight row (a vector loop), and the exact
        test (``_reaches``) only where a cheap upper bound of the membrane on the
        sub-interval reaches threshold. Once half the neurons still walked have crossed,
        the others are packed to the front (their weights then gathered per input), so
        that the late inputs, which most neurons no longer need, cost little.

        Each neuron's sums are the same, in the same order, as in ``_crossing_intervals``,
        except the group's summed weight: where the group holds most inputs it is taken as
        all weights minus the other rows (``column_sums`` minus the running row sum), which
        reads a fraction of the weights."""
        batch, n = x.shape
        m = weights.shape[1]
        for s in prange(batch):
            order, n_finite, dx, e_full, e_half, group_start, group_size = _sample_lags(
                x, s, ratio, reference, spread)
            group_end = group_start + group_size
            complement = group_size > 0 and n - group_end < group_size
            # per walked neuron, at its position p (neuron = neuron_of[p]); packed keeps
            # the positions in neuron order
            neuron_of = np.arange(m)
            n_walked = m
            packed = False
            first = np.zeros(m)
            second = np.zeros(m)
            bound = np.empty(m)
            # the threshold in the bound, +inf once the neuron crossed: the bound then
            # rules it out
            bound_reach = threshold_reach.copy()
            row_sum = np.zeros(m)  # the weights of the inputs before the group
            crossed = np.zeros(m, dtype=np.bool_)
            n_crossed = 0  # of the walked neurons
            weight_row = np.empty(m)  # the current input's weights, packed
            k = 0
            while k < n_finite and n_crossed < n_walked:
                start = dx[k]
                if ratio == 1.0:
                    add_first = e_full[k]
                    add_second = start * e_full[k]
                else:
                    add_first = e_half[k]
                    add_second = e_full[k]
                if group_size > 0 and k == group_start:
                    if complement:
                        for p in range(n_walked):
                            weight_row[p] = column_sums[neuron_of[p]] - row_sum[p]
                        for k_after in range(group_end, n):
                            _add_row(weight_row, weights[order[k_after]], neuron_of, n_walked,
                                     packed, -1.0)
                    else:
                        weight_row[:n_walked] = 0.0
                        for k_group in range(group_start, group_end):
                            _add_row(weight_row, weights[order[k_group]], neuron_of, n_walked,
                                     packed, 1.0)
                    _accumulate(first, second, weight_row, n_walked, add_first, add_second)
                    k_next = group_end
                else:
                    if packed:
                        full_row = weights[order[k]]
                        for p in range(n_walked):
                            weight_row[p] = full_row[neuron_of[p]]
                        _accumulate(first, second, weight_row, n_walked, add_first, add_second)
                        if complement and k < group_start:
                            for p in range(n_walked):
                                row_sum[p] += weight_row[p]
                    else:
                        full_row = weights[order[k]]
                        _accumulate(first, second, full_row, m, add_first, add_second)
                        if complement and k < group_start:
                            for p in range(m):
                                row_sum[p] += full_row[p]
                    k_next = k + 1
                last = k_next == n_finite
                stop = math.inf if last else dx[k_next]
                if stop == start:  # an empty sub-interval: the next input comes at the same time
                    k = k_next
                    continue
                candidates = n_walked
                if not last:
                    # u on [start, stop] is at most e^{-start} (first stop - second) (ratio 1)
                    # or e^{-start/2} first - e^{-stop} second (ratio 2; both where first > 0
                    # and, ratio 2, second > 0, which _reaches needs), here times e^{start}
                    # or e^{stop}; inflated against rounding, so that a sub-interval it
                    # rules out is one the exact test rules out too
                    if ratio == 1.0:
                        slope = stop * (1.0 + 1e-9) + 1e-9
                        scale = e_full[k]
                    else:
                        slope = e_full[k_next] / e_half[k] * (1.0 + 1e-9) + 1e-9
                        scale = e_full[k_next]
                    candidates = 0
                    for p in range(n_walked):
                        bound[p] = first[p] * slope - second[p] - bound_reach[p] * scale
                        candidates += bound[p] >= 0.0
                if candidates > 0:
                    for p in range(n_walked):
                        if crossed[p] or (not last and bound[p] < 0.0):
                            continue
                        j = neuron_of[p]
                        if _reaches(first[p], second[p], threshold_reach[j], ratio, start, stop,
                                    last, e_full[k], math.inf if last else e_full[k_next],
                                    e_half[k], math.inf if last else e_half[k_next]):
                            crossed[p] = True
                            bound_reach[p] = math.inf
                            n_crossed += 1
                            found[s, j] = True
                            a[s, j] = first[p]
                            b[s, j] = second[p]
                            lo[s, j] = start
                            hi[s, j] = stop
                    if 2 * n_crossed >= n_walked and n_walked - n_crossed >= PACK_MIN:
                        # pack the neurons still below threshold to the front, in order
                        kept = 0
                        for p in range(n_walked):
                            if not crossed[p]:
                                neuron_of[kept] = neuron_of[p]
                                first[kept] = first[p]
                                second[kept] = second[p]
                                bound_reach[kept] = bound_reach[p]
                                row_sum[kept] = row_sum[p]
                                crossed[kept] = False
                                kept += 1
                        n_walked = kept
                        n_crossed = 0
                        packed = True
                k = k_next

    def _gradients(x, weights_t, T, grad_T, floor, drop_below, ratio, cutoff, need_input,
                   need_weight, n_chunks, grad_x, grad_w_parts, dropped, low_slope):
        batch, n = x.shape
        m = weights_t.shape[0]
        per_chunk = (batch + n_chunks - 1) // n_chunks
        # samples in n_chunks blocks, each with its own weight-gradient sum (no races)
        for chunk in prange(n_chunks):
            kernel = np.zeros(n)  # by position in the sample's time order
            slope_kernel = np.zeros(n)
            e_in = np.zeros(n)
            h_in = np.zeros(n)
            grad_w = grad_w_parts[chunk]
            for s in range(chunk * per_chunk, min(batch, (chunk + 1) * per_chunk)):
                row = x[s]
                order = np.argsort(row, kind="mergesort")  # causal inputs come first
                # e^{-lag} = e^{-(t - ref)} e^{(t_i - ref)}: one exponential per input and
                # one per neuron instead of one per (neuron, causal input)
                ref = row[order[0]] if row[order[0]] < math.inf else 0.0
                for k in range(n):
                    t_in = row[order[k]]
                    if not t_in < math.inf:
                        break
                    e_in[k] = math.exp(t_in - ref)
                    if ratio != 1.0:
                        h_in[k] = math.exp(0.5 * (t_in - ref))
                for j in range(m):
                    t = T[s, j]
                    g = grad_T[s, j]
                    if not (t < math.inf) or g == 0.0:
                        continue
                    slope = 0.0
                    largest = 0.0
                    n_causal = 0
                    # factorised only where e^{-(t - ref)} stays a normal float64
                    factorised = t - ref < 700.0
                    e_out = math.exp(-(t - ref)) if factorised else 0.0
                    h_out = math.exp(-0.5 * (t - ref)) if factorised else 0.0
                    for k in range(n):
                        lag = t - row[order[k]]
                        # an input at exactly t is causal (its right slope counts);
                        # this and all later inputs are not
                        if not lag >= 0.0:
                            break
                        e = e_out * e_in[k] if factorised else math.exp(-lag)
                        if ratio == 1.0:
                            kernel[k] = lag * e
                            slope_kernel[k] = (1.0 - lag) * e
                        else:
                            h = h_out * h_in[k] if factorised else math.exp(-0.5 * lag)
                            kernel[k] = h - e
                            slope_kernel[k] = e - 0.5 * h
                        slope += weights_t[j, order[k]] * slope_kernel[k]
                        largest = max(largest, kernel[k])
                        n_causal += 1
                    if slope < drop_below[j]:  # the model does not cross here: no gradient
                        low_slope[s, j] = True
                        continue
                    q = g / max(slope, floor[j])
                    if need_input:
                        for k in range(n_causal):
                            i = order[k]
                            grad_x[s, i] += weights_t[j, i] * slope_kernel[k] * q
                    if cutoff > 0.0 and q != 0.0 and largest * abs(q) > cutoff:
                        dropped[s, j] = True  # the published cut-off: no weight gradient
                    elif need_weight:
                        for k in range(n_causal):
                            grad_w[j, order[k]] -= kernel[k] * q


if COMPILED:

    def _general_potential(s, v0, i0, tau_syn, r, delta, ratio_one):
        """v(s) and dv/ds, s after an input at which v = v0 and the current is i0
        (the formula of ``general._potential``)."""
        x = s / tau_syn
        decay = math.exp(-x)
        if ratio_one:
            decay_g = decay * x
        elif x * delta / r < 700.0:
            decay_g = decay * (math.expm1(x * delta / r) / delta)
        else:  # expm1 would overflow (0 * inf = NaN): the difference form no longer cancels
            decay_g = (math.exp(-x / r) - decay) / delta
        v = v0 * math.exp(-x / r) + i0 * decay_g
        slope = (-v0 * (decay + delta * decay_g) + i0 * (decay - decay_g)) / (r * tau_syn)
        return v, slope

    _general_potential = njit(cache=True, inline="always")(_general_potential)

    def _general_first_spikes(x, weights_t, tau_syn, tau_mem, threshold, snap, tolerance,
                              max_iter, out):
        batch, n = x.shape
        m = weights_t.shape[0]
        for s in prange(batch):
            row = x[s]
            order = np.argsort(row, kind="mergesort")
            n_finite = 0
            for k in range(n):
                if row[order[k]] < math.inf:
                    n_finite += 1
            for j in range(m):
                ts = tau_syn[j]
                r = tau_mem[j] / ts
                delta = r - 1.0
                ratio_one = abs(delta) < snap
                c = threshold[s, j]
                v = 0.0  # potential and synaptic current just after input k
                current = 0.0
                for k in range(n_finite):
                    current += weights_t[j, order[k]]
                    start = row[order[k]]
                    last = k + 1 == n_finite
                    width = math.inf if last else row[order[k + 1]] - start
                    if v >= c:  # reached exactly at this input (continuous potential)
                        out[s, j] = start
                        break
                    f_end = -c
                    v_end = 0.0
                    if not last:
                        v_end, _ = _general_potential(width, v, current, ts, r, delta, ratio_one)
                        f_end = v_end - c
                    # the one extremum of a two-exponential combination
                    interior = False
                    s_star = 0.0
                    f_star = -math.inf
                    denominator = current + v * delta
                    if denominator != 0.0:
                        g_star = (current - v) / denominator
                        arg = 1.0 + delta * g_star
                        if arg > 0.0:
                            x_star = g_star if ratio_one else r / delta * math.log1p(delta * g_star)
                            s_star = x_star * ts
                            if 0.0 < s_star < width:
                                interior = True
                                v_star, _ = _general_potential(s_star, v, current, ts, r, delta,
                                                               ratio_one)
                                f_star = v_star - c
                    if f_end >= 0.0 or f_star >= 0.0:
                        # bracket [lo, hi] with v(lo) < c <= v(hi), v monotonic on it
                        if interior and f_star >= 0.0:
                            lo, hi = 0.0, s_star
                        elif interior:
                            lo, hi = s_star, width
                        else:
                            lo, hi = 0.0, width
                        t = 0.5 * (lo + hi)
                        for _ in range(max_iter):
                            value, slope = _general_potential(t, v, current, ts, r, delta, ratio_one)
                            f = value - c
                            if f >= 0.0:
                                hi = t
                            else:
                                lo = t
                            t_next = 0.5 * (lo + hi)
                            if slope > 0.0:
                                newton = t - f / slope
                                if lo < newton < hi:
                                    t_next = newton
                            step = abs(t_next - t)
                            t = t_next
                            if step <= tolerance:
                                break
                        out[s, j] = start + t
                        break
                    if last:
                        break
                    v = v_end  # carry the state to the next input
                    current *= math.exp(-width / ts)


if COMPILED:
    _crossing_intervals_variants = _compiled(_crossing_intervals)
    _crossing_intervals_wide_variants = _compiled(_crossing_intervals_wide)
    _gradients_variants = _compiled(_gradients)
    _general_first_spikes_variants = _compiled(_general_first_spikes)


def crossing_intervals(x: np.ndarray, weights: np.ndarray, ratio: float,
                       threshold_reach: np.ndarray):
    """For every (sample, neuron): does the membrane reach ``threshold_reach`` (the
    threshold with the solver's rounding slack), and if so the running sums (a, b) and the
    sub-interval [lo, hi] that hold the first crossing, in lags from the sample's first
    input (``reference``). Also each sample's finite input spread (tau_syn).

    x (B, n) tau_syn units, +inf = silent; weights (n, m); returns float64 arrays
    (found (B, m) bool, a, b, lo, hi (B, m), reference (B,), spread (B,)).
    """
    batch, m = x.shape[0], weights.shape[1]
    found = np.zeros((batch, m), dtype=np.bool_)
    a, b = np.ones((batch, m)), np.ones((batch, m))
    lo, hi = np.zeros((batch, m)), np.zeros((batch, m))
    reference, spread = np.zeros(batch), np.zeros(batch)
    # float32 weights stay float32 (exact in the float64 sums, half the memory traffic)
    weights = np.ascontiguousarray(
        weights, weights.dtype if weights.dtype in (np.float32, np.float64) else np.float64)
    x = np.ascontiguousarray(x, np.float64)
    reach = np.ascontiguousarray(threshold_reach, np.float64)
    if m >= WIDE_LAYER_MIN:
        column_sums = weights.sum(axis=0, dtype=np.float64)
        _pick(_crossing_intervals_wide_variants)(
            x, weights, column_sums, float(ratio), reach, found, a, b, lo, hi, reference, spread)
    else:  # weights also as (n_post, n_pre) rows: a neuron's loop reads one contiguous row
        _pick(_crossing_intervals_variants)(
            x, np.ascontiguousarray(weights.T), weights, float(ratio), reach,
            found, a, b, lo, hi, reference, spread)
    return found, a, b, lo, hi, reference, spread


def dense_gradients(x: np.ndarray, weights: np.ndarray, T: np.ndarray, grad_T: np.ndarray,
                    floor: np.ndarray, drop_below: np.ndarray, ratio: float, cutoff,
                    need_input: bool, need_weight: bool):
    """(dL/dx (B, n) or None, dL/dW (n, m) or None, dropped (B, m) bool, low_slope (B, m)
    bool), float64, tau_syn units; the formulas of ``fast._gradients_dense``. ``floor``
    (m,): the smallest slope used in a division; ``drop_below`` (m,): a pair whose slope is
    below it passes no gradient (-inf: none); ``cutoff``: the per-(sample, neuron)
    weight-gradient cut-off or None."""
    batch, n = x.shape
    m = weights.shape[1]
    n_chunks = max(1, min(batch, _threads))
    grad_x = np.zeros((batch, n))
    # (n_post, n_pre) layout, as the weights: a neuron's loop touches one contiguous row
    grad_w_parts = np.zeros((n_chunks, m, n) if need_weight else (n_chunks, 1, 1))
    dropped = np.zeros((batch, m), dtype=np.bool_)
    low_slope = np.zeros((batch, m), dtype=np.bool_)
    _pick(_gradients_variants)(x, np.ascontiguousarray(weights.T), T, grad_T, floor, drop_below,
                               float(ratio), -1.0 if cutoff is None else float(cutoff),
                               need_input, need_weight, n_chunks, grad_x, grad_w_parts, dropped,
                               low_slope)
    grad_w = grad_w_parts.sum(axis=0).T if need_weight else None
    return (grad_x if need_input else None), grad_w, dropped, low_slope


def general_first_spike_times(x: np.ndarray, weights: np.ndarray, tau_syn: np.ndarray,
                              tau_mem: np.ndarray, threshold: np.ndarray, ratio_one_snap: float,
                              time_tolerance: float, max_iter: int) -> np.ndarray:
    """``general.solve_first_spike_times_general``'s algorithm as one fused loop nest:
    walk each sample's sorted inputs, carry every neuron's potential and current from
    input to input, and solve (safeguarded Newton) in the first interval whose end or
    single extremum reaches threshold. No (batch, n_pre, n_post) temporaries and no span
    limit (the state is carried, not summed from the first input).

    x (B, n) in the layer's time unit, +inf = silent; weights (n, m); tau_syn, tau_mem (m,);
    threshold (B, m). Returns first-spike times (B, m) float64, +inf = silent."""
    batch, m = x.shape[0], weights.shape[1]
    out = np.full((batch, m), np.inf)
    _pick(_general_first_spikes_variants)(
        np.ascontiguousarray(x, np.float64), np.ascontiguousarray(np.asarray(weights, np.float64).T),
        np.ascontiguousarray(tau_syn, np.float64), np.ascontiguousarray(tau_mem, np.float64),
        np.ascontiguousarray(threshold, np.float64), float(ratio_one_snap), float(time_tolerance),
        int(max_iter), out)
    return out
