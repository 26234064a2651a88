"""The general-ratio first-crossing solver against the closed forms and an independent root finder."""
import math
import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
import ode_reference  # noqa: E402

from pynn_ttfs.engine import cpu_kernels, first_spike_times  # noqa: E402
from pynn_ttfs.engine.general import first_spike_times_any_ratio, solve_first_spike_times_general  # noqa: E402


@pytest.fixture(autouse=True, params=["loops", "tensors"])
def implementation(request, monkeypatch):
    """Every test runs on both implementations: the fused CPU loops and the tensor path."""
    if request.param == "loops" and not cpu_kernels.COMPILED:
        pytest.skip("numba is not installed")
    monkeypatch.setattr(cpu_kernels, "AVAILABLE", request.param == "loops")
    return request.param


def random_layer(rng, batch, n_pre, n_post, silent=0.2):
    t = rng.uniform(0.0, 3.0, (batch, n_pre))
    t[rng.random((batch, n_pre)) < silent] = np.inf
    w = rng.normal(0.8, 1.0, (n_pre, n_post))
    return torch.tensor(t), torch.tensor(w)


@pytest.mark.parametrize("ratio", [1.0, 2.0])
def test_matches_closed_form(ratio):
    rng = np.random.default_rng(int(ratio))
    t, w = random_layer(rng, 150, 10, 20)
    tau_syn = torch.tensor(rng.uniform(0.5, 2.0, 20))
    closed = first_spike_times(t, w, tau_syn, ratio * tau_syn, 1.0)
    general = solve_first_spike_times_general(t, w, tau_syn, ratio * tau_syn, 1.0)
    assert torch.equal(torch.isfinite(closed), torch.isfinite(general))
    fin = torch.isfinite(closed)
    assert 0.3 < fin.double().mean() < 1.0  # both spiking and silent cases occur
    assert (closed[fin] - general[fin]).abs().max() < 1e-8


def test_matches_independent_root_finder_other_ratios():
    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(30):
        n = 6
        tau_syn = rng.uniform(0.5, 1.5)
        tau_mem = tau_syn * rng.choice([rng.uniform(0.4, 0.95), rng.uniform(1.05, 3.0), 1.0 + 1e-4])
        inp = rng.uniform(0.0, 3.0, n)
        inp[rng.random(n) < 0.2] = np.inf
        w = rng.normal(0.8, 1.0, n) * 1.5
        ours = solve_first_spike_times_general(
            torch.tensor(inp[None]), torch.tensor(w[:, None]), tau_syn, tau_mem, 1.0).item()
        ref = ode_reference.first_crossing(inp, w, tau_syn, tau_mem, 1.0, t_max=40.0)
        assert math.isfinite(ours) == math.isfinite(ref), (ours, ref)
        if math.isfinite(ref):
            checked += 1
            assert abs(ours - ref) < 1e-6
    assert checked >= 10


@pytest.mark.parametrize("inputs, weights, ratio, expected_after_last", [
    ((0.0, 1500.0), (0.5, 6.0), 2.0, "spike"),   # expm1 overflowed: NaN carried, spike lost
    ((0.0, 730.0), (0.5, 0.5), 50.0, "silent"),  # inf potential read as a crossing
    ((0.0, 400.0), (0.5, 3.0), 0.5, "spike"),    # tau_mem < tau_syn: span in tau_mem units
])
def test_long_gaps_between_inputs_neither_invent_nor_lose_spikes(implementation, inputs, weights,
                                                                 ratio, expected_after_last):
    """After a gap of hundreds of tau the first input has decayed to nothing: the neuron
    answers as for the last input alone. The CPU loops have no span limit; the tensor path
    refuses spans its exponential sums cannot hold, instead of returning inf."""
    t = torch.tensor([inputs], dtype=torch.float64)
    w = torch.tensor(weights, dtype=torch.float64)[:, None]
    if implementation == "tensors":
        with pytest.raises(ValueError, match="span"):
            solve_first_spike_times_general(t, w, 1.0, ratio, 1.0)
        return
    ours = solve_first_spike_times_general(t, w, 1.0, ratio, 1.0).item()
    alone = ode_reference.first_crossing(np.array([0.0]), np.array([weights[1]]), 1.0, ratio, 1.0,
                                         t_max=40.0)
    assert math.isfinite(alone) == (expected_after_last == "spike")
    if math.isfinite(alone):
        assert abs(ours - (inputs[1] + alone)) < 1e-6
    else:
        assert ours == math.inf


def test_per_trial_threshold_and_edge_cases():
    rng = np.random.default_rng(3)
    t, w = random_layer(rng, 40, 5, 8)
    tau_syn, tau_mem = torch.full((8,), 1.0), torch.full((8,), 1.3)
    base = solve_first_spike_times_general(t, w, tau_syn, tau_mem, 1.0)
    per_trial = solve_first_spike_times_general(t, w, tau_syn, tau_mem, torch.ones(40, 8))
    assert torch.equal(base.isinf(), per_trial.isinf())
    assert torch.allclose(base[base.isfinite()], per_trial[per_trial.isfinite()])
    higher = solve_first_spike_times_general(t, w, tau_syn, tau_mem, torch.full((40, 8), 1.2))
    both = base.isfinite() & higher.isfinite()
    assert (higher[both] >= base[both] - 1e-12).all()  # a higher threshold never fires earlier
    silent = solve_first_spike_times_general(torch.full((3, 5), math.inf, dtype=torch.float64), w,
                                             tau_syn, tau_mem, 1.0)
    assert silent.isinf().all()
    inhibitory = solve_first_spike_times_general(t, -w.abs(), tau_syn, tau_mem, 1.0)
    assert inhibitory.isinf().all()
    with pytest.raises(ValueError, match="threshold"):
        solve_first_spike_times_general(t, w, tau_syn, tau_mem, torch.ones(3, 8))


def test_gradient_through_any_ratio_matches_finite_differences():
    rng = np.random.default_rng(5)
    t, w = random_layer(rng, 4, 5, 3, silent=0.0)
    w = (w.abs() + 0.5).requires_grad_(True)
    tau_syn, tau_mem = torch.tensor([1.0, 1.0, 1.0]), torch.tensor([1.2, 0.8, 1.5])
    out = first_spike_times_any_ratio(t, w, tau_syn, tau_mem, 1.0)
    fin = out.isfinite()
    assert fin.any()
    out[fin].sum().backward()
    eps = 1e-6
    for i, j in [(0, 0), (2, 1), (4, 2)]:
        plus, minus = w.detach().clone(), w.detach().clone()
        plus[i, j] += eps
        minus[i, j] -= eps
        tp = solve_first_spike_times_general(t, plus, tau_syn, tau_mem, 1.0)
        tm = solve_first_spike_times_general(t, minus, tau_syn, tau_mem, 1.0)
        numeric = ((tp - tm)[fin.expand_as(tp)] / (2 * eps)).sum()
        assert abs(numeric.item() - w.grad[i, j].item()) < 1e-4 * max(1.0, abs(numeric.item()))


def test_loops_equal_tensor_path_on_a_chip_sized_layer(monkeypatch):
    """The fused loops (carried state) and the tensor path (sums from the first input) agree
    to the solver tolerance on a chip-like layer: per-neuron time constants around ratio 1
    (some exactly 1), per-trial thresholds, mixed-sign weights, silent inputs."""
    if not cpu_kernels.COMPILED:
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(11)
    batch, n_pre, n_post = 60, 120, 40
    t = rng.uniform(0.0, 20.0, (batch, n_pre))
    t[rng.random((batch, n_pre)) < 0.3] = np.inf
    t[0] = np.inf  # one sample with no input at all
    t = torch.tensor(t)
    w = torch.tensor(rng.normal(0.05, 0.4, (n_pre, n_post)))
    tau_syn = torch.tensor(rng.uniform(0.8, 1.2, n_post))
    tau_mem = tau_syn * torch.tensor(rng.uniform(0.9, 1.1, n_post))
    tau_mem[:5] = tau_syn[:5]  # ratio exactly 1
    tau_mem[5:10] = 2.0 * tau_syn[5:10]
    threshold = torch.tensor(rng.uniform(0.8, 1.2, (batch, n_post)))
    monkeypatch.setattr(cpu_kernels, "AVAILABLE", True)
    loops = solve_first_spike_times_general(t, w, tau_syn, tau_mem, threshold)
    monkeypatch.setattr(cpu_kernels, "AVAILABLE", False)
    tensors = solve_first_spike_times_general(t, w, tau_syn, tau_mem, threshold)
    assert torch.equal(loops.isfinite(), tensors.isfinite())
    fin = loops.isfinite()
    assert 0.2 < fin.double().mean() < 0.95
    assert loops[0].isinf().all()
    assert (loops[fin] - tensors[fin]).abs().max() < 1e-8
