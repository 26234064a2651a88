"""The fast exact engine (pynn_ttfs/engine/fast.py) against the reference solver.

Every path is checked: the dense path for small layers, with the fused CPU loops
(``cpu_kernels``, numba; both forward loops: neuron by neuron and all neurons at once) and
with tensor operations (as on a GPU); the windowed path (probe
windows, matrix products, local closed form), forced by setting DENSE_MAX_PRODUCT = 0; the
windowed backward with and without the forward's cached boundary states.
"""
import math

import numpy as np
import pytest
import torch

import pynn_ttfs.engine.cpu_kernels as cpu_kernels
import pynn_ttfs.engine.fast as fast
from pynn_ttfs.engine import first_spike_times
from pynn_ttfs.engine.first_spike import (
    first_spike_gradients,
    first_spike_gradients_reference,
    solve_first_spike_times,
    solve_first_spike_times_reference,
)
from pynn_ttfs.engine.neuron import layer_parameters


@pytest.fixture(params=["dense-loops", "dense-loops-wide", "dense-tensors", "windowed",
                        "windowed-nocache"])
def path(request, monkeypatch):
    if request.param.startswith("dense-loops"):
        # numba is a dependency: its absence is a failure here, not a skip
        assert cpu_kernels.COMPILED, "numba is not installed: the fused CPU loops are missing"
        monkeypatch.setattr(cpu_kernels, "AVAILABLE", True)
        # every layer through one forward loop: neuron by neuron, or all neurons at once
        monkeypatch.setattr(cpu_kernels, "WIDE_LAYER_MIN",
                            1 if request.param.endswith("wide") else 10 ** 9)
    else:
        monkeypatch.setattr(cpu_kernels, "AVAILABLE", False)
    if request.param.startswith("windowed"):
        monkeypatch.setattr(fast, "DENSE_MAX_PRODUCT", 0)
    if request.param.endswith("nocache"):
        monkeypatch.setattr(fast, "STATE_CACHE_MAX_BYTES", -1)  # forward keeps no state
    return request.param


def random_layer(seed, batch, n_pre, n_post, ties=False, silent=0.2, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    times = torch.rand(batch, n_pre, generator=g, dtype=dtype) * 4.0
    if ties:
        times = torch.round(times * 4.0) / 4.0
    times[torch.rand(batch, n_pre, generator=g) < silent] = math.inf
    scale = 0.3 + torch.rand((), generator=g, dtype=dtype)
    weights = torch.randn(n_pre, n_post, generator=g, dtype=dtype) * scale
    weights += 0.15 * torch.randn((), generator=g, dtype=dtype)
    return times, weights


def mnist_like(seed, batch, side=28, dtype=torch.float64):
    """~80 % dark pixels (t = 2.0, or silent in the 16x16 variant), bright ones early with
    ties at 0.15, as the MNIST encoding produces."""
    g = torch.Generator().manual_seed(seed)
    n = side * side
    value = torch.rand(batch, n, generator=g, dtype=dtype)
    value = torch.where(torch.rand(batch, n, generator=g) < 0.5, torch.zeros_like(value), value)
    dark = torch.rand(batch, n, generator=g) < 0.8
    times = 0.15 + value * 1.85
    times = torch.where(dark, torch.full_like(times, math.inf if side == 16 else 2.0), times)
    return times


def assert_same(times, weights, params, grad_seed=0, atol=1e-9):
    reference = solve_first_spike_times_reference(times, weights, params)
    trained = weights.clone().requires_grad_()  # a backward can follow: states are cached
    result = solve_first_spike_times(times, trained, params)
    assert torch.equal(torch.isfinite(reference), torch.isfinite(result))
    ok = torch.isfinite(reference)
    if ok.any():
        assert (reference[ok] - result[ok]).abs().max() <= atol * (1 + reference[ok].abs().max())
    g = torch.randn(reference.shape, generator=torch.Generator().manual_seed(grad_seed),
                    dtype=times.dtype)
    ref_x, ref_w = first_spike_gradients_reference(times, weights, reference, params, g)
    with torch.no_grad():
        fast_x, fast_w = first_spike_gradients(times, trained, reference, params, g)
    scale_x = 1.0 + ref_x.abs().max()
    scale_w = 1.0 + ref_w.abs().max()
    assert (ref_x - fast_x).abs().max() <= 1e-9 * scale_x
    assert (ref_w - fast_w).abs().max() <= 1e-9 * scale_w
    return reference


@pytest.mark.parametrize("ratio", [1.0, 2.0])
@pytest.mark.parametrize("seed", range(6))
def test_random_layers_match_reference(path, ratio, seed):
    g = torch.Generator().manual_seed(100 + seed)
    batch, n_pre, n_post = (int(v) for v in torch.randint(1, 60, (3,), generator=g))
    times, weights = random_layer(seed, batch, n_pre, n_post, ties=seed % 2 == 1)
    threshold = 0.2 + torch.rand(n_post, generator=g, dtype=torch.float64)
    params = layer_parameters(1.5, 1.5 * ratio, threshold, n_post, weights)
    out = assert_same(times, weights, params, seed)
    assert torch.isfinite(out).any() and not torch.isfinite(out).all() or batch * n_post < 20


@pytest.mark.parametrize("ratio", [1.0, 2.0])
def test_edge_shapes_match_reference(path, ratio):
    for batch, n_pre, n_post in [(1, 1, 1), (1, 30, 5), (7, 1, 9), (3, 2, 1)]:
        times, weights = random_layer(batch + n_pre, batch, n_pre, n_post, silent=0.1)
        weights = weights.abs() + 0.5
        params = layer_parameters(1.0, ratio, 0.3, n_post, weights)
        assert_same(times, weights, params)


def test_all_silent_and_empty_samples(path):
    times, weights = random_layer(3, 6, 40, 7)
    times[2] = math.inf
    params = layer_parameters(1.0, 1.0, 0.2, 7, weights)
    out = assert_same(times, weights, params)
    assert torch.isinf(out[2]).all()


@pytest.mark.parametrize("side", [28, 16])
@pytest.mark.parametrize("ratio", [1.0, 2.0])
def test_mnist_like_inputs_match_reference(path, side, ratio):
    times = mnist_like(side + int(ratio), 12, side)
    g = torch.Generator().manual_seed(7)
    weights = torch.randn(side * side, 30, generator=g, dtype=torch.float64) * 0.8 + 0.05
    params = layer_parameters(1.0, ratio, 1.0, 30, weights)
    out = assert_same(times, weights, params)
    assert torch.isfinite(out).float().mean() > 0.3


@pytest.mark.parametrize("ratio", [1.0, 2.0])
def test_large_group_of_equal_times_inside_the_sample(path, ratio):
    """A group of inputs at one time between earlier and later ones (the CPU loops add such
    a group as one summed weight): neurons that cross before, just after and long after
    the group all match the reference."""
    g = torch.Generator().manual_seed(5)
    batch, n_pre, n_post = 16, 60, 40
    times = torch.rand(batch, n_pre, generator=g, dtype=torch.float64) * 3.0
    times[:, :25] = 1.0  # the group, larger than cpu_kernels.TIE_GROUP_MIN
    times[:4, 30:] = 1.0  # in some samples the group runs to the last input
    weights = torch.randn(n_pre, n_post, generator=g, dtype=torch.float64) * 0.4
    weights += torch.linspace(-0.05, 0.25, n_post, dtype=torch.float64)
    params = layer_parameters(1.0, ratio, 1.0, n_post, weights)
    out = assert_same(times, weights, params)
    finite = out[torch.isfinite(out)]
    assert (finite < 1.0).any() and ((finite > 1.0) & (finite < 1.2)).any() and (finite > 2.0).any()
    assert not torch.isfinite(out).all()


def test_per_neuron_parameters_and_mixed_ratios(path):
    times, weights = random_layer(11, 20, 50, 12)
    g = torch.Generator().manual_seed(3)
    tau_syn = torch.tensor([1.0, 2.0, 1.0, 2.0] * 3, dtype=torch.float64)
    ratio = torch.tensor([1.0, 1.0, 2.0, 2.0, 1.0, 2.0] * 2, dtype=torch.float64)
    threshold = 0.1 + 0.5 * torch.rand(12, generator=g, dtype=torch.float64)
    params = layer_parameters(tau_syn, tau_syn * ratio, threshold, 12, weights)
    assert_same(times, weights, params)


def test_many_distinct_time_constants_fall_back_to_reference():
    times, weights = random_layer(12, 5, 20, 10)
    tau_syn = torch.linspace(0.8, 1.2, 10, dtype=torch.float64)
    params = layer_parameters(tau_syn, tau_syn, 0.3, 10, weights)
    assert fast.solve_fast(times, weights, params) is None  # not suited: reference solver
    assert_same(times, weights, params)


@pytest.mark.parametrize("ratio", [1.0, 2.0])
def test_crossing_hidden_between_probes_is_found(path, ratio):
    """v rises above threshold and falls back between two probe boundaries: the potential
    is below threshold at every boundary, yet the neuron spikes inside the window."""
    peak = 1.0 if ratio == 1.0 else 2.0 * math.log(2.0)
    peak_value = math.exp(-1.0) if ratio == 1.0 else 0.25
    n_filler = 40
    times = torch.cat([torch.tensor([1.0, 1.0 + 1.1 * peak], dtype=torch.float64),
                       torch.linspace(6.0, 9.0, n_filler, dtype=torch.float64)]).unsqueeze(0)
    weights = torch.zeros(2 + n_filler, 3, dtype=torch.float64)
    weights[0] = torch.tensor([1.02, 0.98, 1.02]) / peak_value  # bump just above / below c
    weights[1] = torch.tensor([-30.0, -30.0, 0.0])  # strong inhibition after the peak
    weights[2:] = 1e-3
    params = layer_parameters(1.0, ratio, 1.0, 3, weights)
    windows = fast._Windows(times, 3)
    boundaries = windows.p[0]
    from pynn_ttfs.engine import membrane_potential
    v_at_boundaries = membrane_potential(times, weights, boundaries, 1.0, ratio)[0]
    assert (v_at_boundaries[:, 0] < 1.0).all()  # every probe misses the bump
    out = assert_same(times, weights, params)
    assert math.isfinite(out[0, 0]) and 1.0 < out[0, 0] < 1.0 + 1.1 * peak
    assert math.isinf(out[0, 1])  # the bump stays below threshold: silent
    assert math.isfinite(out[0, 2])


@pytest.mark.parametrize("ratio", [1.0, 2.0])
def test_gradients_at_given_output_times(path, ratio):
    """Times recorded elsewhere (perturbed, some before any input, some silent)."""
    times, weights = random_layer(21, 15, 45, 8)
    params = layer_parameters(1.0, ratio, 0.3, 8, weights)
    solved = solve_first_spike_times_reference(times, weights, params)
    g = torch.Generator().manual_seed(5)
    recorded = torch.where(torch.isfinite(solved),
                           solved + 0.05 * torch.randn(solved.shape, generator=g, dtype=solved.dtype),
                           torch.rand(solved.shape, generator=g, dtype=solved.dtype) * 5.0)
    recorded[0] = -1.0  # before every input
    recorded[1, :3] = math.inf
    grad = torch.randn(recorded.shape, generator=g, dtype=recorded.dtype)
    ref_x, ref_w = first_spike_gradients_reference(times, weights, recorded, params, grad)
    fast_x, fast_w = first_spike_gradients(times, weights, recorded, params, grad)
    assert torch.allclose(ref_x, fast_x, rtol=1e-9, atol=1e-9 * (1 + ref_x.abs().max()))
    assert torch.allclose(ref_w, fast_w, rtol=1e-9, atol=1e-9 * (1 + ref_w.abs().max()))


@pytest.mark.parametrize("ratio", [1.0, 2.0])
def test_an_input_that_tips_the_membrane_at_its_own_time_is_causal(path, ratio):
    """The first input's PSP peaks exactly at threshold when the second input arrives: the
    membrane has no slope of its own there, and the second input's right slope (1/tau_mem)
    carries the crossing. Counting an input at exactly T as causal keeps every gradient
    finite and equal to the one-sided derivative an input arriving just before T sees;
    leaving it out divides by the floor of v'(T) instead."""
    peak = 1.0 if ratio == 1.0 else 2.0 * math.log(2.0)  # tau_syn units
    w_first, w_second = 1.0, 0.5
    kernel_peak = peak * math.exp(-peak) if ratio == 1.0 else math.exp(-0.5 * peak) - math.exp(-peak)
    params = layer_parameters(1.0, ratio, w_first * kernel_peak, 1, torch.ones(1, dtype=torch.float64))
    times = torch.tensor([[0.0, peak, math.inf]], dtype=torch.float64)
    weights = torch.tensor([[w_first], [w_second], [0.7]], dtype=torch.float64)
    T = torch.tensor([[peak]], dtype=torch.float64)
    grad = torch.ones_like(T)
    slope_first = (1.0 - peak) * math.exp(-peak) if ratio == 1.0 else (
        math.exp(-peak) - 0.5 * math.exp(-0.5 * peak))  # 0 up to rounding
    v_slope = w_first * slope_first + w_second / ratio  # tau_syn = 1
    expected_x = [w_first * slope_first / v_slope, w_second / ratio / v_slope, 0.0]
    expected_w = [-kernel_peak / v_slope, 0.0, 0.0]
    for gradients in (first_spike_gradients, first_spike_gradients_reference):
        gx, gw = gradients(times, weights, T, params, grad)
        assert gx[0].tolist() == pytest.approx(expected_x, rel=1e-12, abs=1e-12), gradients
        assert gw[:, 0].tolist() == pytest.approx(expected_w, rel=1e-12, abs=1e-12), gradients
    # the forward agrees from the side where the input comes first: dT/dx = 1 in the limit
    shift = 1e-6
    earlier = times.clone()
    earlier[0, 1] -= shift
    moved = float(solve_first_spike_times(earlier, weights, params)[0, 0])
    assert (peak - moved) / shift == pytest.approx(expected_x[1], rel=1e-3)


@pytest.mark.parametrize("ratio", [1.0, 2.0])
def test_min_slope_drops_exactly_the_pairs_with_a_flat_or_falling_membrane(path, ratio):
    """Recorded times where the model's membrane is flat or falling at T (as on a chip
    whose neurons differ from the model): with min_slope such a pair passes no gradient,
    neither to the weights nor to the inputs; every other pair is untouched. Same pairs
    and counts on every path as in the reference."""
    times, weights = random_layer(23, 30, 45, 8)
    params = layer_parameters(1.0, ratio, 0.3, 8, weights)
    solved = solve_first_spike_times_reference(times, weights, params)
    g = torch.Generator().manual_seed(6)
    recorded = torch.where(torch.isfinite(solved),
                           solved + 0.4 * torch.rand(solved.shape, generator=g, dtype=solved.dtype),
                           solved)  # late: past the model's crossing, often past its peak
    grad = torch.randn(recorded.shape, generator=g, dtype=recorded.dtype)
    threshold = 0.3
    # the model's v'(T) per pair, from the reference's own kernel derivative
    from pynn_ttfs.engine.neuron import psp_kernel_derivative
    lag = recorded.unsqueeze(1) - times.unsqueeze(2)
    lag = torch.where(torch.isfinite(lag) & (lag > 0), lag, torch.full_like(lag, -1.0))
    slope = torch.einsum("bim,im->bm", psp_kernel_derivative(lag, params.tau_syn, params.tau_mem), weights)
    min_slope = 0.5
    low = torch.isfinite(recorded) & (slope < min_slope * threshold)
    assert 0.1 < low[torch.isfinite(recorded)].float().mean() < 0.9  # both kinds present
    expected_x, expected_w = first_spike_gradients_reference(
        times, weights, recorded, params, torch.where(low, torch.zeros_like(grad), grad))
    for gradients in (first_spike_gradients, first_spike_gradients_reference):
        stats = {}
        gx, gw = gradients(times, weights, recorded, params, grad, stats=stats, min_slope=min_slope)
        assert stats["n_low_slope"] == int(low.sum())
        assert torch.allclose(gx, expected_x, rtol=1e-9, atol=1e-9 * (1 + expected_x.abs().max()))
        assert torch.allclose(gw, expected_w, rtol=1e-9, atol=1e-9 * (1 + expected_w.abs().max()))
    # through autograd, at the recorded times
    w = weights.clone().requires_grad_(True)
    x = times.clone().requires_grad_(True)
    out = first_spike_times(x, w, 1.0, ratio, 0.3, output_times=recorded, min_slope=min_slope)
    (torch.where(torch.isfinite(out), out, torch.zeros_like(out)) * grad).sum().backward()
    assert torch.allclose(w.grad, expected_w, rtol=1e-9, atol=1e-9 * (1 + expected_w.abs().max()))
    assert torch.allclose(torch.nan_to_num(x.grad, posinf=0.0), torch.nan_to_num(expected_x, posinf=0.0),
                          rtol=1e-9, atol=1e-9 * (1 + expected_x.abs().max()))
    # off (None) and 0 on the model's own times change nothing: there v'(T) > 0
    plain_x, plain_w = first_spike_gradients(times, weights, solved, params, grad)
    zero_x, zero_w = first_spike_gradients(times, weights, solved, params, grad, min_slope=0.0)
    assert torch.equal(plain_x, zero_x) and torch.equal(plain_w, zero_w)


@pytest.mark.parametrize("bad", [-0.1, math.inf, math.nan])
def test_bad_min_slope_is_a_clear_error(bad):
    times, weights = random_layer(1, 4, 5, 3)
    params = layer_parameters(1.0, 1.0, 0.3, 3, weights)
    T = solve_first_spike_times(times, weights, params)
    with pytest.raises(ValueError, match=r"min_slope must be a finite number >= 0 or None"):
        first_spike_gradients(times, weights, T, params, torch.ones_like(T), min_slope=bad)
    with pytest.raises(ValueError, match=r"min_slope must be a finite number >= 0 or None"):
        first_spike_times(times, weights, 1.0, 1.0, 0.3, min_slope=bad)


def test_autograd_through_two_layers_matches_reference(path):
    times = mnist_like(4, 6, 16)
    g = torch.Generator().manual_seed(9)
    w1 = (torch.randn(256, 24, generator=g, dtype=torch.float64) * 0.6 + 0.1).requires_grad_()
    w2 = (torch.randn(24, 10, generator=g, dtype=torch.float64) * 0.8 + 0.3).requires_grad_()

    def loss_and_grads(solve, gradients):
        import pynn_ttfs.engine.first_spike as first_spike
        saved = first_spike.solve_fast, first_spike.gradients_fast
        try:
            if solve is not None:
                first_spike.solve_fast, first_spike.gradients_fast = solve, gradients
            hidden = first_spike_times(times, w1, 1.0, 1.0, 0.5)
            out = first_spike_times(hidden, w2, 1.0, 1.0, 0.5)
            loss = torch.where(torch.isfinite(out), out, torch.zeros_like(out)).square().sum()
            return torch.autograd.grad(loss, (w1, w2))
        finally:
            first_spike.solve_fast, first_spike.gradients_fast = saved

    reference = loss_and_grads(lambda *a, **k: None, lambda *a, **k: None)
    result = loss_and_grads(None, None)
    for r, f in zip(reference, result):
        assert (r - f).abs().max() <= 1e-9 * (1 + r.abs().max())


@pytest.mark.parametrize("ratio", [1.0, 2.0])
def test_float32_agrees_with_float64_reference(path, ratio):
    times = mnist_like(30 + int(ratio), 20, 28)
    g = torch.Generator().manual_seed(31)
    weights = torch.randn(784, 25, generator=g, dtype=torch.float64) * 0.8 + 0.05
    params64 = layer_parameters(1.0, ratio, 1.0, 25, weights)
    params32 = layer_parameters(1.0, ratio, 1.0, 25, weights.float())
    reference = solve_first_spike_times_reference(times, weights, params64)
    result = solve_first_spike_times(times.float(), weights.float(), params32).double()
    agree = torch.isfinite(reference) == torch.isfinite(result)
    assert agree.float().mean() >= 0.999
    both = torch.isfinite(reference) & torch.isfinite(result)
    assert both.sum() > 50
    assert ((reference[both] - result[both]).abs() / reference[both].abs().clamp(min=1.0)).max() < 1e-4


def test_span_limit_error_matches_reference(path):
    times = torch.tensor([[0.0, 200.0]], dtype=torch.float32)
    params = layer_parameters(1.0, 1.0, 10.0, 1, times)
    with pytest.raises(ValueError, match=r"span .* tau_syn.*use float64"):
        solve_first_spike_times(times, torch.ones(2, 1), params)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("ratio", [1.0, 2.0])
def test_cuda_matches_cpu_reference(path, ratio):
    times = mnist_like(40, 64, 28)
    g = torch.Generator().manual_seed(41)
    weights = torch.randn(784, 60, generator=g, dtype=torch.float64) * 0.8 + 0.05
    params = layer_parameters(1.0, ratio, 1.0, 60, weights)
    reference = solve_first_spike_times_reference(times, weights, params)
    cuda_params = layer_parameters(1.0, ratio, 1.0, 60, weights.cuda())
    result = solve_first_spike_times(times.cuda(), weights.cuda(), cuda_params).cpu()
    assert torch.equal(torch.isfinite(reference), torch.isfinite(result))
    ok = torch.isfinite(reference)
    assert (reference[ok] - result[ok]).abs().max() < 1e-9
    grad = torch.randn(reference.shape, dtype=torch.float64, generator=g)
    ref_x, ref_w = first_spike_gradients_reference(times, weights, reference, params, grad)
    gpu_x, gpu_w = first_spike_gradients(times.cuda(), weights.cuda(), reference.cuda(),
                                         cuda_params, grad.cuda())
    assert (ref_x - gpu_x.cpu()).abs().max() <= 1e-9 * (1 + ref_x.abs().max())
    assert (ref_w - gpu_w.cpu()).abs().max() <= 1e-9 * (1 + ref_w.abs().max())


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("ratio", [1.0, 2.0])
def test_fused_cpu_loops_equal_the_tensor_dense_path(ratio, dtype):
    """The numba loops and the tensor path: same spikes, same times and gradients to
    rounding, the same (sample, neuron) pairs dropped by the weight-gradient cut-off."""
    assert cpu_kernels.COMPILED
    times, weights = random_layer(11, 150, 7, 40, ties=True, dtype=dtype)
    c = torch.full((40,), 1.0, dtype=dtype)
    loops = fast._solve_dense_cpu(times, weights, c, ratio)
    tensors = fast._solve_dense(times, fast._with_zero_row(weights), c, ratio)
    assert torch.equal(torch.isinf(loops), torch.isinf(tensors)) and torch.isfinite(loops).any()
    tol = 1e-12 if dtype == torch.float64 else 2e-5
    finite = torch.isfinite(loops)
    assert torch.allclose(loops[finite], tensors[finite], atol=tol, rtol=0)
    grad = torch.randn(tensors.shape, generator=torch.Generator().manual_seed(2), dtype=dtype)
    for cutoff in (None, 0.2):
        stats_loops, stats_tensors = {}, {}
        gx_l, gw_l = fast._gradients_dense_cpu(times, weights, tensors, grad, c, ratio, True, True,
                                               cutoff, stats_loops)
        gx_t, gw_t = fast._gradients_dense(times, weights, tensors, grad, c, ratio, True, True,
                                           cutoff, stats_tensors)
        assert stats_loops == stats_tensors
        if cutoff is not None:
            assert stats_loops["n_cut"] > 0
        scale = 1e-11 if dtype == torch.float64 else 1e-4
        assert torch.allclose(gx_l, gx_t, atol=scale * (1 + gx_t.abs().max()), rtol=0)
        assert torch.allclose(gw_l, gw_t, atol=scale * (1 + gw_t.abs().max()), rtol=0)


@pytest.mark.parametrize("ratio", [1.0, 2.0])
@pytest.mark.parametrize("inputs", ["random", "ties", "mnist", "group-middle"])
def test_both_forward_loops_agree(monkeypatch, ratio, inputs):
    """The neuron-by-neuron loop and the all-neurons loop (with its bound that skips the
    exact test, and its packing of the neurons still below threshold): the same spikes and
    intervals, bit for bit where no large group of equal times exists (same sums in the
    same order), to rounding where the wide loop takes the group's weight as all weights
    minus the others; float32 weights give exactly what their float64 copy gives."""
    assert cpu_kernels.COMPILED
    if inputs == "group-middle":  # most neurons cross before a group that holds half the inputs
        g = torch.Generator().manual_seed(12)
        early = torch.rand(30, 20, generator=g, dtype=torch.float64)
        late = 1.0 + torch.rand(30, 10, generator=g, dtype=torch.float64)
        times = torch.cat([early, torch.ones(30, 30, dtype=torch.float64), late], 1).numpy()
        weights = (torch.randn(60, 50, generator=g, dtype=torch.float64) * 0.3 + 0.15).numpy()
        weights[:20] += 0.5  # strong early inputs
        weights[:, 40:] = -np.abs(weights[:, 40:])  # ten silent neurons
    elif inputs == "mnist":
        times = mnist_like(3, 20, 28).numpy()
        g = torch.Generator().manual_seed(9)
        weights = (torch.randn(784, 70, generator=g, dtype=torch.float64) * 0.1 + 0.004).numpy()
    else:
        times, weights = random_layer(4, 60, 50, 45, ties=inputs == "ties")
        times, weights = times.numpy(), weights.numpy()
    # thresholds spread so that some neurons stay silent, some cross early, some late
    reach = np.linspace(0.3, 6.0, weights.shape[1]) * (1.0 if ratio == 1.0 else 0.4)
    results = {}
    for name, limit in (("neuron", 10 ** 9), ("wide", 1)):
        monkeypatch.setattr(cpu_kernels, "WIDE_LAYER_MIN", limit)
        results[name] = cpu_kernels.crossing_intervals(times, weights, ratio, reach)
    neuron, wide = results["neuron"], results["wide"]
    assert np.array_equal(neuron[0], wide[0]) and 0.05 < neuron[0].mean() < 0.95
    if inputs == "mnist":  # some neurons cross only after the dark pixels (the group, last)
        assert (neuron[3] == neuron[6][:, None])[neuron[0]].any()
    if inputs == "group-middle":  # half cross before the group (then packed), some after
        crossed_before = neuron[0] & (neuron[3] + neuron[5][:, None] < 1.0)
        assert (crossed_before.sum(1) >= 25).mean() > 0.5
        assert (neuron[0] & (neuron[3] + neuron[5][:, None] >= 1.0)).any()
    for one, other in zip(neuron[1:], wide[1:]):
        if inputs in ("mnist", "group-middle"):  # the group sum differs in rounding only
            assert np.allclose(one, other, rtol=1e-12, atol=1e-12)
        else:
            assert np.array_equal(one, other)
    weights32 = weights.astype(np.float32)
    from32 = cpu_kernels.crossing_intervals(times, weights32, ratio, reach)
    from64 = cpu_kernels.crossing_intervals(times, weights32.astype(np.float64), ratio, reach)
    assert all(np.array_equal(one, other) for one, other in zip(from32, from64))


def test_fused_cpu_loops_can_be_switched_off_by_environment():
    import subprocess
    import sys
    code = "import pynn_ttfs.engine.cpu_kernels as k; print(k.AVAILABLE, k.COMPILED)"
    env = dict(__import__("os").environ, PYNN_TTFS_NUMBA="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "True"]


def test_fused_cpu_loops_in_memory_bounded_chunks(monkeypatch):
    """A batch split into several chunks gives the same times and gradients as one call."""
    monkeypatch.setattr(cpu_kernels, "AVAILABLE", True)
    times, weights = random_layer(5, 90, 12, 30)
    weights.requires_grad_(True)
    times.requires_grad_(True)
    whole = first_spike_times(times, weights)
    g_times, g_weights = torch.autograd.grad(torch.nan_to_num(whole, posinf=0.0).sum(),
                                             [times, weights])
    monkeypatch.setattr(fast, "LOOP_CHUNK_BYTES", 8 * (12 + 6 * 30) * 7)  # 7 samples per chunk
    assert len(fast._loop_chunks(times, 30)) == 13
    chunked = first_spike_times(times, weights)
    c_times, c_weights = torch.autograd.grad(torch.nan_to_num(chunked, posinf=0.0).sum(),
                                             [times, weights])
    assert torch.equal(whole, chunked)
    assert torch.allclose(g_times, c_times, atol=1e-12) and torch.allclose(g_weights, c_weights, atol=1e-12)


def test_fused_cpu_loops_keep_torch_threads_and_serial_code():
    """With torch on one thread the loops run their serial compilation, start no OpenMP
    threads and leave torch's thread count alone (numba's cache once mixed the serial and
    parallel compilations up, and its OpenMP layer reset torch to all cores)."""
    import subprocess
    import sys
    if not cpu_kernels.COMPILED:
        pytest.skip("numba not installed")
    code = (
        "import sys, torch; torch.set_num_threads(int(sys.argv[1]))\n"
        "from pynn_ttfs.engine import first_spike_times\n"
        "import numba\n"
        "x = torch.rand(50, 20, dtype=torch.float64); w = torch.rand(20, 8, dtype=torch.float64)\n"
        "w.requires_grad_(True)\n"
        "t = first_spike_times(x, w); torch.nan_to_num(t, posinf=0.0).sum().backward()\n"
        "try:\n    layer = numba.threading_layer()\nexcept ValueError:\n    layer = 'none'\n"
        "print(torch.get_num_threads(), layer)\n")
    env = dict(__import__("os").environ, PYNN_TTFS_NUMBA="1", NUMBA_NUM_THREADS="2")
    # a run on two threads compiles (and caches on disk) the parallel loops first
    subprocess.run([sys.executable, "-c", code, "2"], env=env, capture_output=True, check=True)
    for _ in range(2):  # the second run loads the on-disk cache the first one wrote
        out = subprocess.run([sys.executable, "-c", code, "1"], env=env, capture_output=True,
                             text=True, check=True).stdout.split()
        assert out == ["1", "none"]
