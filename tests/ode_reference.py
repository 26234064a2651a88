"""Independent numerical reference for first-spike times (numpy only, no engine code).

The potential v(t) is evaluated from its textbook superposition formula on a fine grid,
the first upward threshold crossing is bracketed there and refined by bisection; a
forward-Euler integrator of the ODE pair (I, v) is the second, fully independent check.
"""
import numpy as np


def potential(t, input_times, weights, tau_syn, tau_mem):
    """v(t) for one sample and one neuron; t may be an array."""
    t = np.asarray(t, dtype=np.float64)[..., None]
    lag = t - input_times[None, :]
    causal = np.isfinite(input_times)[None, :] & (lag > 0)
    lag = np.where(causal, lag, 0.0)
    if abs(tau_mem - tau_syn) < 1e-12:
        k = (lag / tau_syn) * np.exp(-lag / tau_syn)
    else:
        k = tau_syn / (tau_mem - tau_syn) * (np.exp(-lag / tau_mem) - np.exp(-lag / tau_syn))
    return np.sum(np.where(causal, k, 0.0) * weights[None, :], axis=-1)


def first_crossing(input_times, weights, tau_syn, tau_mem, threshold, t_max=40.0, step=1e-3):
    grid = np.arange(0.0, t_max, step)
    finite = input_times[np.isfinite(input_times)]
    grid = np.unique(np.concatenate([grid, finite, finite + 1e-9]))
    v = potential(grid, input_times, weights, tau_syn, tau_mem) - threshold
    above = np.nonzero(v >= 0)[0]
    if above.size == 0:
        return np.inf
    hi = grid[above[0]]
    lo = grid[above[0] - 1] if above[0] > 0 else hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if potential(mid, input_times, weights, tau_syn, tau_mem) - threshold >= 0:
            hi = mid
        else:
            lo = mid
    return hi


def euler_first_crossing(input_times, weights, tau_syn, tau_mem, threshold, t_max, dt):
    """Forward Euler on tau_syn dI/dt = -I (+ jumps), tau_mem dv/dt = -v + I."""
    order = np.argsort(input_times)
    times, w = input_times[order], weights[order]
    current, v, t, next_input = 0.0, 0.0, 0.0, 0
    n_steps = int(round(t_max / dt))
    for step in range(n_steps):
        t = step * dt
        while next_input < len(times) and times[next_input] <= t:
            current += w[next_input]
            next_input += 1
        v_new = v + dt * (-v + current) / tau_mem
        current += dt * (-current / tau_syn)
        if v_new >= threshold:
            # linear interpolation inside the step
            return t + dt * (threshold - v) / (v_new - v)
        v = v_new
    return np.inf
