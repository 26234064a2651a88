"""The training fast solver gives the engine's first-spike times."""
import math

import pytest
import torch

from pynn_ttfs.engine import layer_parameters, solve_first_spike_times
from pynn_ttfs.training.fast_solver import fast_first_spike_times


@pytest.mark.parametrize("ratio", [1.0, 2.0])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fast_solver_matches_engine(ratio, dtype):
    g = torch.Generator().manual_seed(int(ratio * 10))
    for trial in range(8):
        n_pre = 1 + trial * 3
        t = torch.rand(40, n_pre, generator=g, dtype=torch.float64) * 3
        t[torch.rand(40, n_pre, generator=g) < 0.2] = math.inf
        t[:, 0] = t[:, -1]  # ties
        w = torch.randn(n_pre, 6, generator=g, dtype=torch.float64) * 1.2 + 0.3 * ratio
        w[:, 0] = -1.0  # inhibitory only: silent
        tau = 1 + torch.rand(6, generator=g, dtype=torch.float64) * (trial % 2)  # per-neuron tau
        threshold = torch.full((6,), 0.7, dtype=torch.float64)
        t, w, tau, threshold = (x.to(dtype) for x in (t, w, tau, threshold))
        reference = solve_first_spike_times(t, w, layer_parameters(tau, tau * ratio, threshold, 6, w))
        fast = fast_first_spike_times(t, w, tau, tau * ratio, threshold)
        assert torch.equal(torch.isinf(reference), torch.isinf(fast))
        finite = torch.isfinite(reference)
        tol = 1e-9 if dtype == torch.float64 else 2e-4
        if finite.any():
            assert (reference[finite] - fast[finite]).abs().max() <= tol
        assert torch.isinf(fast[:, 0]).all()


def test_fast_solver_mixed_ratios_and_errors():
    t = torch.tensor([[0.1, 0.5, math.inf]], dtype=torch.float64)
    w = torch.full((3, 2), 2.0, dtype=torch.float64)
    ones = torch.ones(2, dtype=torch.float64)
    mixed = fast_first_spike_times(t, w, ones, torch.tensor([1.0, 2.0], dtype=torch.float64), ones)
    reference = solve_first_spike_times(
        t, w, layer_parameters(ones, torch.tensor([1.0, 2.0], dtype=torch.float64), ones, 2, w))
    torch.testing.assert_close(mixed, reference)
    with pytest.raises(ValueError, match="1 or 2"):
        fast_first_spike_times(t, w, ones, ones * 3, ones)
