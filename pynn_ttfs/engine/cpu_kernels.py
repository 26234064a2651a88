"""Fused CPU loops (numba) for the small dense layers of ``fast.py``.

A Yin-Yang layer (5 x 120, 121 x 3) is too small for tensor operations to pay off: the
eager PyTorch dense path runs ~100 tiny kernels per layer, and their launch cost, not the
arithmetic, sets the speed. These loops do the O(batch x n_pre x n_post) part of the same
algorithm in one pass per sample:

* forward, :func:`crossing_intervals`: sort a sample's inputs, walk them in time order
  keeping the running sums of every neuron, and stop at the first sub-interval whose
  (unimodal) membrane maximum reaches threshold. The closed-form time inside that
  sub-interval (Lambert W / quadratic) is left to ``fast._closed_form`` so that the
  first-spike formula stays in one place.
* backward, :func:`dense_gradients`: the exact vector-Jacobian products of
  ``fast._gradients_dense`` (same formulas, same per-(sample, neuron) weight-gradient
  cut-off) without (batch, n_pre, n_post) temporaries.

Everything is computed in float64 and returned in float64; callers convert. Times are in
tau_syn units. The loops run on numba's threads, capped at ``torch.get_num_threads()``.
Set ``PYNN_TTFS_NUMBA=0`` to use the tensor path instead (it is also used when numba is
missing, and always on GPUs).
"""
from __future__ import annotations

import math
import os

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


def use_threads(count: int) -> None:
    """Run the loops on at most ``count`` threads (torch's setting, so that
    ``torch.set_num_threads(1)`` holds for these loops too)."""
    if COMPILED:
        numba.set_num_threads(max(1, min(int(count), numba.config.NUMBA_NUM_THREADS)))


if COMPILED:

    @njit(parallel=True, cache=True)
    def _crossing_intervals(x, weights, ratio, threshold_reach, found, a, b, lo, hi, reference,
                            spread):
        batch, n = x.shape
        m = weights.shape[1]
        for s in prange(batch):
            row = x[s].astype(np.float64)
            order = np.argsort(row, kind="mergesort")
            n_finite = 0
            for k in range(n):
                if row[order[k]] < math.inf:
                    n_finite += 1
            ref = row[order[0]] if n_finite > 0 else 0.0
            reference[s] = ref
            spread[s] = row[order[n_finite - 1]] - ref if n_finite > 0 else 0.0
            # sorted lags from the first input, and their exponentials (shared by all neurons)
            dx = np.empty(n_finite)
            e_full = np.empty(n_finite)  # e^{dx}
            e_half = np.empty(n_finite)  # e^{dx / 2} (ratio 2)
            for k in range(n_finite):
                dx[k] = row[order[k]] - ref
                e_full[k] = math.exp(dx[k])
                e_half[k] = math.exp(0.5 * dx[k]) if ratio != 1.0 else 0.0
            for j in range(m):
                first = 0.0
                second = 0.0
                c = threshold_reach[j]
                for k in range(n_finite):
                    w = float(weights[order[k], j])
                    start = dx[k]
                    stop = dx[k + 1] if k + 1 < n_finite else math.inf
                    if ratio == 1.0:  # u(t) = e^{-t} (first t - second)
                        first += w * e_full[k]
                        second += w * (start * e_full[k])
                        if not first > 0.0:
                            continue
                        peak = 1.0 + second / first
                        peak = min(max(peak, start), stop)
                        v_max = math.exp(-peak) * (first * peak - second)
                    else:  # u(t) = e^{-t/2} first - e^{-t} second
                        first += w * e_half[k]
                        second += w * e_full[k]
                        if not (first > 0.0 and second > 0.0):
                            continue
                        peak = 2.0 * math.log(max(2.0 * second / first, 1e-300))
                        peak = min(max(peak, start), stop)
                        v_max = math.exp(-0.5 * peak) * first - math.exp(-peak) * second
                    if v_max >= c:
                        found[s, j] = True
                        a[s, j] = first
                        b[s, j] = second
                        lo[s, j] = start
                        hi[s, j] = stop
                        break

    @njit(parallel=True, cache=True)
    def _slopes_and_input_gradients(x, weights, T, grad_T, floor, ratio, cutoff, need_input,
                                    q_weight, grad_x, dropped):
        batch, n = x.shape
        m = weights.shape[1]
        for s in prange(batch):
            for j in range(m):
                t = T[s, j]
                g = grad_T[s, j]
                if not (t < math.inf) or g == 0.0:
                    continue
                slope = 0.0
                largest = 0.0
                for i in range(n):
                    lag = t - x[s, i]
                    if not lag > 0.0:
                        continue
                    e = math.exp(-lag)
                    if ratio == 1.0:
                        slope += weights[i, j] * ((1.0 - lag) * e)
                        kernel = lag * e
                    else:
                        h = math.exp(-0.5 * lag)
                        slope += weights[i, j] * (e - 0.5 * h)
                        kernel = h - e
                    largest = max(largest, kernel)
                q = g / max(slope, floor[j])
                if need_input:
                    for i in range(n):
                        lag = t - x[s, i]
                        if not lag > 0.0:
                            continue
                        e = math.exp(-lag)
                        if ratio == 1.0:
                            slope_kernel = (1.0 - lag) * e
                        else:
                            slope_kernel = e - 0.5 * math.exp(-0.5 * lag)
                        grad_x[s, i] += weights[i, j] * slope_kernel * q
                if cutoff > 0.0 and q != 0.0 and largest * abs(q) > cutoff:
                    dropped[s, j] = True  # the published cut-off: no weight gradient
                else:
                    q_weight[s, j] = q

    @njit(parallel=True, cache=True)
    def _weight_gradients(x, T, q_weight, ratio, grad_w):
        batch, n = x.shape
        m = T.shape[1]
        for j in prange(m):
            for s in range(batch):
                q = q_weight[s, j]
                if q == 0.0:
                    continue
                t = T[s, j]
                for i in range(n):
                    lag = t - x[s, i]
                    if not lag > 0.0:
                        continue
                    if ratio == 1.0:
                        kernel = lag * math.exp(-lag)
                    else:
                        kernel = math.exp(-0.5 * lag) - math.exp(-lag)
                    grad_w[i, j] -= kernel * q


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
    _crossing_intervals(x, weights, float(ratio), np.ascontiguousarray(threshold_reach, np.float64),
                        found, a, b, lo, hi, reference, spread)
    return found, a, b, lo, hi, reference, spread


def dense_gradients(x: np.ndarray, weights: np.ndarray, T: np.ndarray, grad_T: np.ndarray,
                    floor: np.ndarray, ratio: float, cutoff, need_input: bool,
                    need_weight: bool):
    """(dL/dx (B, n) or None, dL/dW (n, m) or None, dropped (B, m) bool), float64, tau_syn
    units; the formulas of ``fast._gradients_dense``. ``floor`` (m,): the smallest slope
    used in a division; ``cutoff``: the per-(sample, neuron) weight-gradient cut-off or
    None."""
    batch, n = x.shape
    m = weights.shape[1]
    q_weight = np.zeros((batch, m))
    grad_x = np.zeros((batch, n))
    dropped = np.zeros((batch, m), dtype=np.bool_)
    _slopes_and_input_gradients(x, weights, T, grad_T, floor, float(ratio),
                                -1.0 if cutoff is None else float(cutoff), need_input,
                                q_weight, grad_x, dropped)
    grad_w = None
    if need_weight:
        grad_w = np.zeros((n, m))
        _weight_gradients(x, T, q_weight, float(ratio), grad_w)
    return (grad_x if need_input else None), grad_w, dropped
