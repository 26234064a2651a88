"""The exact first-spike engine against independent numerical solutions, gradients, edge cases."""
import math

import numpy as np
import pytest
import torch

from ode_reference import euler_first_crossing, first_crossing, potential
from pynn_ttfs.engine import feedforward, first_spike_times, membrane_potential

RATIOS = [1.0, 2.0]


def random_layer(seed, batch=25, n_pre=9, n_post=7, silent_fraction=0.2, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    times = torch.rand(batch, n_pre, generator=g, dtype=dtype) * 3.0
    times[torch.rand(batch, n_pre, generator=g) < silent_fraction] = math.inf
    weights = torch.randn(n_pre, n_post, generator=g, dtype=dtype) + 0.3
    return times, weights


def reference_times(times, weights, tau_syn, tau_mem, threshold):
    return np.array([
        [first_crossing(times[b].numpy(), weights[:, j].numpy(), tau_syn, tau_mem, threshold)
         for j in range(weights.shape[1])]
        for b in range(times.shape[0])
    ])


@pytest.mark.parametrize("ratio", RATIOS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_root_finding_on_the_analytic_potential(ratio, seed):
    times, weights = random_layer(seed)
    tau_syn, threshold = 1.3, 0.6
    ours = first_spike_times(times, weights, tau_syn, ratio * tau_syn, threshold).numpy()
    expected = reference_times(times, weights, tau_syn, ratio * tau_syn, threshold)
    np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(expected))
    assert np.isfinite(ours).mean() > 0.3  # the test exercises spiking neurons
    spiking = np.isfinite(ours)
    np.testing.assert_allclose(ours[spiking], expected[spiking], atol=1e-9, rtol=0)


@pytest.mark.parametrize("ratio", RATIOS)
def test_matches_euler_integration_of_the_ode(ratio):
    times, weights = random_layer(7, batch=4, n_pre=6, n_post=5)
    ours = first_spike_times(times, weights, 1.0, ratio, 0.5).numpy()
    for b in range(times.shape[0]):
        for j in range(weights.shape[1]):
            euler = euler_first_crossing(times[b].numpy(), weights[:, j].numpy(), 1.0, ratio, 0.5,
                                         t_max=12.0, dt=2e-4)
            assert np.isfinite(euler) == np.isfinite(ours[b, j])
            if np.isfinite(euler):
                assert abs(euler - ours[b, j]) < 2e-3  # Euler's O(dt) error


def test_per_neuron_parameters_and_mixed_ratios():
    times, weights = random_layer(3, n_post=6)
    tau_syn = torch.tensor([1.0, 2.0, 0.5, 1.0, 1.5, 3.0], dtype=torch.float64)
    ratio = torch.tensor([1.0, 2.0, 1.0, 2.0, 2.0, 1.0], dtype=torch.float64)
    threshold = torch.tensor([0.3, 0.5, 0.2, 0.8, 0.4, 0.6], dtype=torch.float64)
    ours = first_spike_times(times, weights, tau_syn, tau_syn * ratio, threshold).numpy()
    for j in range(6):
        expected = reference_times(times, weights[:, j:j + 1], tau_syn[j].item(),
                                   (tau_syn * ratio)[j].item(), threshold[j].item())[:, 0]
        np.testing.assert_array_equal(np.isfinite(ours[:, j]), np.isfinite(expected))
        ok = np.isfinite(expected)
        np.testing.assert_allclose(ours[ok, j], expected[ok], atol=1e-9)


@pytest.mark.parametrize("ratio", RATIOS)
def test_float32_agrees_with_float64(ratio):
    times, weights = random_layer(4, batch=200, n_pre=30, n_post=20)
    t64 = first_spike_times(times, weights, 1.0, ratio, 1.0)
    t32 = first_spike_times(times.float(), weights.float(), 1.0, ratio, 1.0).double()
    assert torch.equal(torch.isfinite(t64), torch.isfinite(t32))
    ok = torch.isfinite(t64)
    assert (t64[ok] - t32[ok]).abs().max().item() < 1e-4


def _robust_spiking_layer(ratio, seed=0):
    """Inputs and positive-leaning weights where every neuron spikes well clear of any
    causal-set switch, so the times are smooth in all parameters (gradcheck's premise)."""
    g = torch.Generator().manual_seed(seed)
    times = torch.sort(torch.rand(3, 5, generator=g, dtype=torch.float64) * 2.0, dim=1).values
    weights = torch.rand(5, 4, generator=g, dtype=torch.float64) * 0.6 + 0.6
    weights[1, 1] = -0.3  # one inhibitory synapse
    return times, weights


@pytest.mark.parametrize("ratio", RATIOS)
def test_gradcheck_weights_and_input_times(ratio):
    times, weights = _robust_spiking_layer(ratio)
    threshold = 0.5
    out = first_spike_times(times, weights, 1.0, ratio, threshold)
    assert torch.isfinite(out).all()
    # keep every output away from an input time so the causal set is locally constant
    gaps = (out.unsqueeze(1) - times.unsqueeze(2)).abs()
    assert gaps.min() > 1e-3
    times.requires_grad_(True)
    weights.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda t, w: first_spike_times(t, w, 1.0, ratio, threshold), (times, weights),
        eps=1e-7, atol=1e-6, rtol=1e-5,
    )


@pytest.mark.parametrize("ratio", RATIOS)
def test_gradients_match_central_finite_differences_of_a_loss(ratio):
    times, weights = random_layer(11, batch=6, n_pre=7, n_post=5, silent_fraction=0.1)
    weights = weights.abs() * 0.8
    times = times.clone().requires_grad_(True)
    weights = weights.clone().requires_grad_(True)

    def loss_of(t, w):
        out = first_spike_times(t, w, 1.0, ratio, 0.7)
        return torch.where(torch.isfinite(out), torch.sin(out), torch.zeros_like(out)).sum()

    loss_of(times, weights).backward()
    h = 1e-6
    for tensor, grad in ((weights, weights.grad), (times, times.grad)):
        flat = tensor.detach().clone().view(-1)
        for index in range(0, flat.numel(), 3):
            if not math.isfinite(flat[index].item()):
                continue
            plus, minus = flat.clone(), flat.clone()
            plus[index] += h
            minus[index] -= h
            args_p = (plus.view_as(tensor), weights.detach()) if tensor is times else (times.detach(), plus.view_as(tensor))
            args_m = (minus.view_as(tensor), weights.detach()) if tensor is times else (times.detach(), minus.view_as(tensor))
            numeric = (loss_of(*args_p) - loss_of(*args_m)).item() / (2 * h)
            assert abs(numeric - grad.view(-1)[index].item()) < 1e-5 * max(1.0, abs(numeric))


def test_ratio_one_gradient_equals_lambert_w_formula():
    times = torch.tensor([[0.2, 0.5, 0.9]], dtype=torch.float64)
    weights = torch.tensor([[0.9], [0.7], [-0.2]], dtype=torch.float64, requires_grad=True)
    c = 0.4
    out = first_spike_times(times, weights, 1.0, 1.0, c)
    out.sum().backward()
    T = out.item()
    causal = times[0] < T
    w = weights.detach()[:, 0]
    A = (w * torch.exp(times[0]))[causal].sum()
    B = (w * times[0] * torch.exp(times[0]))[causal].sum()
    W = B / A - T
    expected = -torch.exp(times[0]) * (T - times[0]) / (A * (1 + W))
    expected[~causal] = 0
    torch.testing.assert_close(weights.grad[:, 0], expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("ratio", RATIOS)
def test_gradient_at_given_output_times_equals_direct(ratio):
    times, weights = random_layer(5)
    w1 = weights.clone().requires_grad_(True)
    w2 = weights.clone().requires_grad_(True)
    t1 = times.clone().requires_grad_(True)
    t2 = times.clone().requires_grad_(True)
    direct = first_spike_times(t1, w1, 1.0, ratio, 0.5)
    recorded = first_spike_times(t2, w2, 1.0, ratio, 0.5, output_times=direct.detach())
    assert torch.equal(direct, recorded)
    mask = torch.isfinite(direct)
    (direct[mask] ** 2).sum().backward()
    (recorded[mask] ** 2).sum().backward()
    torch.testing.assert_close(w1.grad, w2.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(t1.grad, t2.grad, rtol=1e-12, atol=1e-12)


def test_given_output_times_accept_any_tau_ratio_and_use_implicit_derivative():
    times = torch.tensor([[0.0, 0.4]], dtype=torch.float64)
    weights = torch.tensor([[1.0], [0.8]], dtype=torch.float64, requires_grad=True)
    tau_syn, tau_mem, c = 1.0, 1.7, 0.35
    T = first_crossing(times[0].numpy(), weights.detach()[:, 0].numpy(), tau_syn, tau_mem, c)
    out = first_spike_times(times, weights, tau_syn, tau_mem, c,
                            output_times=torch.tensor([[T]], dtype=torch.float64))
    out.sum().backward()
    h = 1e-6
    for i in range(2):
        wp = weights.detach()[:, 0].numpy().copy()
        wm = wp.copy()
        wp[i] += h
        wm[i] -= h
        numeric = (first_crossing(times[0].numpy(), wp, tau_syn, tau_mem, c)
                   - first_crossing(times[0].numpy(), wm, tau_syn, tau_mem, c)) / (2 * h)
        assert abs(numeric - weights.grad[i, 0].item()) < 1e-5


# ---------------------------------------------------------------- edge cases

def _assert_finite_gradients(times, weights, ratio, threshold=1.0):
    t = times.clone().requires_grad_(True)
    w = weights.clone().requires_grad_(True)
    out = first_spike_times(t, w, 1.0, ratio, threshold)
    assert not torch.isnan(out).any()
    torch.where(torch.isfinite(out), out, torch.zeros_like(out)).sum().backward()
    assert torch.isfinite(t.grad[torch.isfinite(t)]).all() and not torch.isnan(t.grad).any()
    assert torch.isfinite(w.grad).all()
    return out, t.grad, w.grad


@pytest.mark.parametrize("ratio", RATIOS)
def test_all_inputs_silent(ratio):
    times = torch.full((4, 6), math.inf, dtype=torch.float64)
    weights = torch.ones(6, 3, dtype=torch.float64) * 5
    out, gt, gw = _assert_finite_gradients(times, weights, ratio)
    assert torch.isinf(out).all()
    assert (gw == 0).all() and (gt == 0).all()


@pytest.mark.parametrize("ratio", RATIOS)
def test_zero_weights_never_spike(ratio):
    times = torch.rand(5, 4, dtype=torch.float64)
    out, _, gw = _assert_finite_gradients(times, torch.zeros(4, 3, dtype=torch.float64), ratio)
    assert torch.isinf(out).all() and (gw == 0).all()


@pytest.mark.parametrize("ratio", RATIOS)
def test_only_inhibitory_input_never_spikes(ratio):
    times = torch.rand(5, 4, dtype=torch.float64)
    out, _, _ = _assert_finite_gradients(times, -torch.rand(4, 3, dtype=torch.float64) - 0.1, ratio)
    assert torch.isinf(out).all()


@pytest.mark.parametrize("ratio", RATIOS)
def test_tied_inputs_act_like_one_input_with_the_summed_weight(ratio):
    tied = torch.tensor([[0.5, 0.5, 0.5, 1.0]], dtype=torch.float64)
    weights = torch.tensor([[0.4, 0.1], [0.3, 0.2], [0.5, -0.1], [0.2, 0.9]], dtype=torch.float64)
    merged_times = torch.tensor([[0.5, 1.0]], dtype=torch.float64)
    merged_weights = torch.stack([weights[:3].sum(0), weights[3]])
    out, _, _ = _assert_finite_gradients(tied, weights, ratio, threshold=0.3)
    torch.testing.assert_close(out, first_spike_times(merged_times, merged_weights, 1.0, ratio, 0.3),
                               rtol=1e-13, atol=1e-13)
    assert torch.isfinite(out).any()


@pytest.mark.parametrize("ratio, peak_lag, peak_value", [(1.0, 1.0, math.exp(-1)), (2.0, 2 * math.log(2), 0.25)])
def test_threshold_exactly_touched(ratio, peak_lag, peak_value):
    c = 0.5
    weight = c / peak_value  # the potential's maximum equals the threshold exactly
    times = torch.tensor([[0.3]], dtype=torch.float64)
    weights = torch.tensor([[weight]], dtype=torch.float64)
    out, gt, gw = _assert_finite_gradients(times, weights, ratio, threshold=c)
    assert abs(out.item() - (0.3 + peak_lag)) < 1e-6
    # just below the tangency there is no spike
    below = first_spike_times(times, weights * (1 - 1e-6), 1.0, ratio, c)
    assert torch.isinf(below).all()


@pytest.mark.parametrize("ratio", RATIOS)
def test_very_large_and_very_small_weights(ratio):
    times = torch.tensor([[0.25, 0.7]], dtype=torch.float64)
    weights = torch.tensor([[1e6, 1e-9], [0.0, 1e-9]], dtype=torch.float64)
    out, _, _ = _assert_finite_gradients(times, weights, ratio)
    # huge weight: the potential reaches threshold almost at once, v ~ w s / tau_m
    expected = first_crossing(times[0].numpy(), weights[:, 0].numpy(), 1.0, ratio, 1.0)
    assert abs(out[0, 0].item() - expected) < 1e-9 and out[0, 0].item() - 0.25 < 1e-5
    assert math.isinf(out[0, 1].item())


@pytest.mark.parametrize("ratio", RATIOS)
def test_inputs_after_the_output_spike_do_not_matter(ratio):
    times = torch.tensor([[0.1, 0.3]], dtype=torch.float64)
    weights = torch.tensor([[1.5], [1.0]], dtype=torch.float64)
    before = first_spike_times(times, weights, 1.0, ratio, 0.5)
    later = torch.cat([times, torch.tensor([[before.item() + 0.01, before.item() + 2]], dtype=torch.float64)], 1)
    extra = torch.cat([weights, torch.tensor([[-50.0], [30.0]], dtype=torch.float64)])
    w = extra.clone().requires_grad_(True)
    after = first_spike_times(later, w, 1.0, ratio, 0.5)
    assert after.item() == pytest.approx(before.item(), abs=1e-14)
    after.sum().backward()
    assert (w.grad[2:] == 0).all() and (w.grad[:2] != 0).all()


@pytest.mark.parametrize("ratio", RATIOS)
def test_batch_one_and_single_input(ratio):
    times = torch.tensor([[0.4]], dtype=torch.float64)
    weights = torch.tensor([[2.5, 0.1, -1.0]], dtype=torch.float64)  # 2.0 would touch exactly at ratio 2
    out, _, gw = _assert_finite_gradients(times, weights, ratio, threshold=0.5)
    out = out.detach()
    assert out.shape == (1, 3)
    expected = reference_times(times, weights, 1.0, ratio, 0.5)
    np.testing.assert_array_equal(np.isfinite(out.numpy()), np.isfinite(expected))
    assert abs(out[0, 0].item() - expected[0, 0]) < 1e-10


def test_silent_layer_propagates_silence_and_no_nan():
    times = torch.rand(3, 4, dtype=torch.float64)
    layers = [
        {"weights": torch.full((4, 5), -1.0, dtype=torch.float64, requires_grad=True)},
        {"weights": torch.full((5, 2), 3.0, dtype=torch.float64, requires_grad=True)},
    ]
    hidden, output = feedforward(times, layers)
    assert torch.isinf(hidden).all() and torch.isinf(output).all()
    torch.where(torch.isfinite(output), output, torch.zeros_like(output)).sum().backward()
    for layer in layers:
        assert (layer["weights"].grad == 0).all()


def test_feedforward_bias_spikes_are_the_last_weight_rows():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(8, 4, generator=g, dtype=torch.float64)
    w1 = torch.rand(5, 6, generator=g, dtype=torch.float64) + 0.3
    w2 = torch.rand(7, 3, generator=g, dtype=torch.float64) + 0.3
    hidden, out = feedforward(x, [{"weights": w1, "threshold": 0.8}, {"weights": w2, "threshold": 0.8}],
                              bias_times=[[0.9], [0.9]])
    manual_hidden = first_spike_times(torch.cat([x, torch.full((8, 1), 0.9, dtype=torch.float64)], 1), w1, threshold=0.8)
    manual_out = first_spike_times(torch.cat([manual_hidden, torch.full((8, 1), 0.9, dtype=torch.float64)], 1), w2, threshold=0.8)
    assert torch.equal(hidden, manual_hidden) and torch.equal(out, manual_out)


@pytest.mark.parametrize("ratio", RATIOS)
def test_membrane_potential_matches_superposition_and_reaches_threshold(ratio):
    times, weights = random_layer(9, batch=3, n_pre=5, n_post=4)
    samples = torch.linspace(0, 6, 61, dtype=torch.float64)
    v = membrane_potential(times, weights, samples, 1.0, ratio)
    for b in range(3):
        for j in range(4):
            np.testing.assert_allclose(
                v[b, :, j].numpy(), potential(samples.numpy(), times[b].numpy(), weights[:, j].numpy(), 1.0, ratio),
                atol=1e-12)
    out = first_spike_times(times, weights, 1.0, ratio, 0.5)
    for b, j in zip(*torch.nonzero(torch.isfinite(out), as_tuple=True)):
        at_spike = membrane_potential(times[b:b + 1], weights[:, j:j + 1], out[b, j].view(1), 1.0, ratio)
        assert abs(at_spike.item() - 0.5) < 1e-10


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"tau_syn": 1.0, "tau_mem": 1.5}, r"tau_mem / tau_syn = 1\.5 is not supported.*ratio 1.*ratio 2"),
        ({"tau_syn": 0.0}, r"tau_syn must be > 0"),
        ({"tau_syn": -1.0, "tau_mem": -1.0}, r"tau_syn must be > 0"),
        ({"tau_mem": 0.0}, r"tau_mem must be > 0"),
        ({"threshold": 0.0}, r"threshold .* must be > 0.*above the resting potential"),
        ({"threshold": torch.ones(5)}, r"threshold must be a scalar or a 1-D tensor.*length 3"),
        ({"tau_syn": float("nan")}, r"tau_syn must be finite"),
    ],
)
def test_bad_parameters_raise_value_error_naming_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        first_spike_times(torch.rand(2, 4, dtype=torch.float64), torch.rand(4, 3, dtype=torch.float64), **kwargs)


@pytest.mark.parametrize(
    "times, weights, match",
    [
        (torch.rand(2, 4), torch.rand(5, 3), r"shape mismatch: input_times has n_pre = 4.*weights has 5 rows"),
        (torch.rand(4), torch.rand(4, 3), r"input_times must have shape \(batch, n_pre\)"),
        (torch.rand(2, 4), torch.rand(4), r"weights must have shape \(n_pre, n_post\)"),
        (torch.tensor([[0.1, float("nan")]]), torch.rand(2, 1), r"input_times contains NaN"),
        (torch.tensor([[0.1, -float("inf")]]), torch.rand(2, 1), r"input_times contains -inf"),
        (torch.rand(1, 2), torch.tensor([[float("nan")], [1.0]]), r"weights must be finite"),
        (torch.rand(1, 2), torch.rand(2, 1, dtype=torch.float64), r"must share a dtype"),
    ],
)
def test_bad_tensors_raise_value_error(times, weights, match):
    with pytest.raises(ValueError, match=match):
        first_spike_times(times, weights)


def test_bad_output_times_shape_and_nan():
    times, weights = torch.rand(2, 3), torch.rand(3, 4)
    with pytest.raises(ValueError, match=r"output_times must have shape \(batch, n_post\) = \(2, 4\)"):
        first_spike_times(times, weights, output_times=torch.rand(2, 3))
    with pytest.raises(ValueError, match="output_times contains NaN"):
        first_spike_times(times, weights, output_times=torch.full((2, 4), float("nan")))
    with pytest.raises(ValueError, match="output_times contains -inf"):
        first_spike_times(times, weights, output_times=torch.full((2, 4), -float("inf")))
    recorded = torch.rand(2, 4, dtype=torch.float64)  # e.g. from numpy: taken in float32
    out = first_spike_times(times, weights, output_times=recorded)
    assert out.dtype == torch.float32 and torch.equal(out, recorded.float())
    with pytest.raises(ValueError, match=r"output_times must have shape"):
        first_spike_times(times, weights, output_times=torch.rand(2, 3, dtype=torch.float64))


def _gradient_arguments(dtype=torch.float64):
    from pynn_ttfs.engine import layer_parameters
    generator = torch.Generator().manual_seed(0)
    times = torch.rand(3, 4, generator=generator, dtype=dtype)
    weights = torch.rand(4, 5, generator=generator, dtype=dtype)
    params = layer_parameters(1.0, 1.0, 0.5, 5, weights)
    out = first_spike_times(times, weights, threshold=0.5)
    return times, weights, out, params, torch.ones_like(out)


@pytest.mark.parametrize("which, bad, match", [
    ("output_times", torch.rand(1, 1, dtype=torch.float64), r"output_times must have shape \(batch, n_post\) = \(3, 5\), got \(1, 1\)"),
    ("grad_output", torch.rand(1, 1, dtype=torch.float64), r"grad_output must have shape \(batch, n_post\) = \(3, 5\)"),
    ("output_times", torch.full((3, 5), float("nan"), dtype=torch.float64), "output_times contains NaN"),
    ("output_times", torch.full((3, 5), -float("inf"), dtype=torch.float64), "output_times contains -inf"),
    ("grad_output", torch.ones(3, 5), r"grad_output \(torch.float32, cpu\) must match the weights"),
    ("input_times", torch.rand(3, 2, dtype=torch.float64), "shape mismatch: input_times has n_pre = 2"),
])
def test_first_spike_gradients_checks_its_arguments(which, bad, match):
    """The gradient kernels index T and dL/dT by (sample, neuron) without bounds checks: a
    wrong shape used to read past the arrays (loops) or broadcast (tensors)."""
    from pynn_ttfs.engine import first_spike_gradients
    times, weights, out, params, grad = _gradient_arguments()
    arguments = dict(input_times=times, weights=weights, output_times=out, params=params,
                     grad_output=grad)
    first_spike_gradients(**arguments)  # the good arguments pass
    arguments[which] = bad
    with pytest.raises(ValueError, match=match):
        first_spike_gradients(**arguments)


def test_float16_and_bfloat16_are_refused_with_the_dtypes_that_work():
    with pytest.raises(ValueError, match="float16 cannot hold .* use float32 or float64"):
        first_spike_times(torch.rand(2, 3, dtype=torch.float16), torch.rand(3, 2, dtype=torch.float16))
    # bfloat16's 8 significant bits moved spike times by up to ~1.4 tau_syn
    with pytest.raises(ValueError, match="bfloat16 has too few significant bits.* use float32 or float64"):
        first_spike_times(torch.rand(2, 3, dtype=torch.bfloat16), torch.rand(3, 2, dtype=torch.bfloat16))


@pytest.mark.parametrize("field, value, message", [
    ("tau_syn", 0.0, r"params.tau_syn must be finite and > 0 for every neuron, got 0.0"),
    ("tau_mem", math.nan, r"params.tau_mem must be finite and > 0 .* got nan"),
    ("threshold", -1.0, r"params.threshold must be finite and > 0 .* got -1.0"),
    ("tau_mem", 2.0, r"params.ratio must equal tau_mem / tau_syn .* neuron 1 has ratio 1 but "
                     r"tau_mem / tau_syn = 2"),
])
def test_hand_built_layer_parameters_are_checked(field, value, message):
    """A LayerParameters built by hand (not by layer_parameters) that is inconsistent gave
    NaN, a spike at the first input, or the ratio-1 answer for a ratio-2 neuron."""
    from pynn_ttfs.engine import LayerParameters
    from pynn_ttfs.engine.first_spike import first_spike_gradients, solve_first_spike_times
    x = torch.tensor([[0.1, 0.5]], dtype=torch.float64)
    w = torch.full((2, 2), 3.0, dtype=torch.float64)
    good = dict(tau_syn=torch.ones(2, dtype=torch.float64), tau_mem=torch.ones(2, dtype=torch.float64),
                threshold=torch.ones(2, dtype=torch.float64), ratio=torch.ones(2, dtype=torch.float64))
    T = solve_first_spike_times(x, w, LayerParameters(**good))
    assert torch.isfinite(T).all()
    bad = dict(good)
    bad[field] = torch.tensor([1.0, value], dtype=torch.float64)
    with pytest.raises(ValueError, match=message):
        solve_first_spike_times(x, w, LayerParameters(**bad))
    with pytest.raises(ValueError, match=message):
        first_spike_gradients(x, w, T, LayerParameters(**bad), torch.ones_like(T))


def test_too_wide_time_span_for_float32_is_a_clear_error():
    times = torch.tensor([[0.0, 200.0]], dtype=torch.float32)
    with pytest.raises(ValueError, match=r"span .* tau_syn.*use float64"):
        first_spike_times(times, torch.ones(2, 1), threshold=10.0)
    # float64 handles the same span
    out = first_spike_times(times.double(), torch.ones(2, 1, dtype=torch.float64), threshold=10.0)
    assert torch.isinf(out).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("ratio", RATIOS)
def test_cuda_matches_cpu(ratio):
    times, weights = random_layer(1, batch=50, n_pre=20, n_post=10)
    cpu = first_spike_times(times, weights, 1.0, ratio, 0.5)
    gpu = first_spike_times(times.cuda(), weights.cuda(), 1.0, ratio, 0.5).cpu()
    assert torch.equal(torch.isfinite(cpu), torch.isfinite(gpu))
    ok = torch.isfinite(cpu)
    assert (cpu[ok] - gpu[ok]).abs().max() < 1e-12


# ---------------------------------------------------------------- gradient cut-off

def _per_sample_weight_gradients(times, weights, ratio, threshold, grad_output):
    """dL/dW of every sample separately (batch, n_pre, n_post), via the engine one sample at a time."""
    rows = []
    for b in range(times.shape[0]):
        w = weights.clone().requires_grad_(True)
        out = first_spike_times(times[b:b + 1], w, 1.0, ratio, threshold)
        (torch.where(torch.isfinite(out), out, torch.zeros_like(out)) * grad_output[b:b + 1]).sum().backward()
        rows.append(w.grad)
    return torch.stack(rows)


@pytest.mark.parametrize("ratio", RATIOS)
@pytest.mark.parametrize("shape", [(12, 6, 5), (20, 300, 8)])  # dense and windowed fast paths
def test_weight_gradient_cutoff_drops_exactly_the_large_sample_neuron_pairs(ratio, shape):
    from pynn_ttfs.engine import first_spike_gradients, layer_parameters, solve_first_spike_times
    from pynn_ttfs.engine.first_spike import first_spike_gradients_reference
    batch, n_pre, n_post = shape
    g = torch.Generator().manual_seed(21)
    times = torch.rand(batch, n_pre, generator=g, dtype=torch.float64) * 2
    weights = torch.randn(n_pre, n_post, generator=g, dtype=torch.float64) * (1.5 / n_pre ** 0.5) + 4.0 / n_pre
    grad_output = torch.randn(batch, n_post, generator=g, dtype=torch.float64)
    params = layer_parameters(1.0, ratio, 0.5, n_post, weights)
    T = solve_first_spike_times(times, weights, params)
    assert torch.isfinite(T).float().mean() > 0.5
    per_sample = _per_sample_weight_gradients(times, weights, ratio, 0.5, grad_output)
    largest = per_sample.abs().amax(dim=1)  # (batch, n_post)
    # about half of the pairs are dropped; the cut-off lies halfway between two pairs'
    # values, so that rounding in the last bit cannot move a pair across it
    values = largest[largest > 0].sort().values
    middle = len(values) // 2
    cutoff = float(0.5 * (values[middle - 1] + values[middle]))
    keep = (largest <= cutoff).unsqueeze(1)
    expected = (per_sample * keep).sum(0)
    for gradients in (first_spike_gradients, first_spike_gradients_reference):
        stats = {}
        grad_in_cut, grad_w = gradients(times, weights, T, params, grad_output,
                                        weight_grad_cutoff=cutoff, stats=stats)
        torch.testing.assert_close(grad_w, expected, rtol=1e-9, atol=1e-12)
        assert stats["n_cut"] == int(((largest > cutoff)).sum())
        # input-time gradients ignore the cut-off
        grad_in_full, _ = gradients(times, weights, T, params, grad_output)
        torch.testing.assert_close(grad_in_cut, grad_in_full, rtol=1e-12, atol=1e-12)
    # through autograd
    w = weights.clone().requires_grad_(True)
    out = first_spike_times(times, w, 1.0, ratio, 0.5, weight_grad_cutoff=cutoff)
    (torch.where(torch.isfinite(out), out, torch.zeros_like(out)) * grad_output).sum().backward()
    torch.testing.assert_close(w.grad, expected, rtol=1e-9, atol=1e-12)


def test_bad_weight_gradient_cutoff():
    with pytest.raises(ValueError, match=r"weight_grad_cutoff must be > 0 or None, got -1"):
        first_spike_times(torch.rand(2, 3), torch.rand(3, 2), weight_grad_cutoff=-1)


# --- bad input to the public solver functions: a clear error, never a silent answer ------

def _layer(dtype=torch.float64):
    return (torch.tensor([[0.0, 0.5, 1.0]], dtype=dtype),
            torch.tensor([[1.0, 0.9], [1.0, 0.9], [1.0, 0.9]], dtype=dtype))


def test_solve_first_spike_times_checks_inputs_and_parameters():
    from pynn_ttfs.engine import layer_parameters, solve_first_spike_times
    x, w = _layer()
    params = layer_parameters(1.0, 1.0, 0.5, 2, w)
    with pytest.raises(ValueError, match="input_times contains NaN"):
        solve_first_spike_times(torch.tensor([[0.0, math.nan, 1.0]], dtype=torch.float64), w, params)
    with pytest.raises(ValueError, match="floating point"):
        solve_first_spike_times(x.long(), w, params)
    with pytest.raises(ValueError, match=r"params.tau_syn must have one value per neuron, shape \(3,\)"):
        solve_first_spike_times(x, torch.ones(3, 3, dtype=torch.float64), params)
    odd = layer_parameters(1.0, 1.5, 0.5, 2, w, allow_any_ratio=True)
    with pytest.raises(ValueError, match="tau_mem / tau_syn = 1.5: .*solve_first_spike_times_general"):
        solve_first_spike_times(x, w, odd)
    assert torch.isfinite(solve_first_spike_times(x, w, params)).all()


def test_learnable_neuron_parameters_and_double_backward_are_refused():
    x, w = _layer()
    threshold = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    with pytest.raises(ValueError, match=r"threshold requires grad.*pass threshold.detach\(\)"):
        first_spike_times(x, w, threshold=threshold)
    w = w.clone().requires_grad_()
    with pytest.raises(RuntimeError, match="exact first derivatives only"):
        torch.autograd.grad(first_spike_times(x, w, threshold=0.5).sum(), w, create_graph=True)


def test_feedforward_rejects_unknown_layer_keys():
    x, w = _layer()
    with pytest.raises(ValueError, match=r"layers\[0\] .* unknown keys \['tau_m', 'thresh'\]"):
        feedforward(x, [{"weights": w, "tau_m": 2.0, "thresh": 5.0}])
    with pytest.raises(ValueError, match=r"layers\[0\] has no 'weights'"):
        feedforward(x, [{"tau_syn": 1.0}])


@pytest.mark.parametrize("offset", [3e-7, 2e-6, 1e-5, 1e-4, 1e-2, -1e-5, 1.0, -0.5])
def test_psp_kernel_keeps_float32_precision_near_ratio_one(offset):
    """Against the textbook formula evaluated with 40 digits (at the float32 values of the
    time constants): float32 keeps ~1e-6 relative precision even where tau_mem/tau_syn - 1
    is a few ulps, where the textbook formula itself loses everything in float32."""
    import mpmath
    from pynn_ttfs.engine import psp_kernel, psp_kernel_derivative
    mpmath.mp.dps = 40
    s = torch.tensor([1e-3, 0.3, 1.0, 2.5, 7.0, 40.0])
    tau_syn = torch.tensor(1.3)
    tau_mem = torch.tensor(1.3 * (1 + offset), dtype=torch.float32)
    assert float(tau_mem) != float(tau_syn)  # a ratio really off 1 in float32
    ts, tm = mpmath.mpf(float(tau_syn)), mpmath.mpf(float(tau_mem))
    r = tm / ts
    for function, exact in (
            (psp_kernel, lambda v: (mpmath.exp(-v / tm) - mpmath.exp(-v / ts)) / (r - 1)),
            (psp_kernel_derivative,
             lambda v: (mpmath.exp(-v / ts) / ts - mpmath.exp(-v / tm) / tm) / (r - 1))):
        value = function(s, tau_syn, tau_mem)
        for got, time in zip(value.tolist(), s.tolist()):
            want = exact(mpmath.mpf(time))
            assert abs(got - float(want)) <= 2e-6 * abs(float(want)) + 1e-30, (function, time)


def test_a_too_wide_span_in_float64_does_not_advise_float64():
    times = torch.tensor([[0.0, 800.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"span 800.0 tau_syn.*float64 exponentials can represent; "
                                         r"shorten the span \(in a PyNN script: sim.setup\(trial_duration"):
        first_spike_times(times, torch.ones(2, 1, dtype=torch.float64), threshold=10.0)


def test_membrane_potential_refuses_non_finite_sample_times():
    from pynn_ttfs.engine import membrane_potential
    x, w = torch.tensor([[0.5]], dtype=torch.float64), torch.ones(1, 1, dtype=torch.float64)
    with pytest.raises(ValueError, match="sample_times must be finite"):
        membrane_potential(x, w, torch.tensor([math.nan], dtype=torch.float64))
    assert float(membrane_potential(x, w, torch.tensor([1.5], dtype=torch.float64))) > 0
