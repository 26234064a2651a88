"""The free membrane potential v(t) = sum_i w_i k(t - t_i) at given sample times."""
from __future__ import annotations

import torch

from .first_spike import check_layer_inputs
from .neuron import Scalar, layer_parameters, psp_kernel


def membrane_potential(
    input_times: torch.Tensor,
    weights: torch.Tensor,
    sample_times: torch.Tensor,
    tau_syn: Scalar = 1.0,
    tau_mem: Scalar = 1.0,
) -> torch.Tensor:
    """v = g_L (u - E_L) in weight (current) units, shape (batch, n_samples, n_post).

    The potential without reset, starting from rest at time 0 of the trial.
    ``sample_times``: (n_samples,) shared by the batch, or (batch, n_samples). Any
    tau_mem / tau_syn ratio. Neurons sharing time constants are evaluated with one matrix
    product per group.
    """
    check_layer_inputs(input_times, weights)
    n_post = weights.shape[1]
    params = layer_parameters(tau_syn, tau_mem, 1.0, n_post, weights, allow_any_ratio=True)
    sample_times = torch.as_tensor(sample_times, dtype=weights.dtype, device=weights.device)
    batch = input_times.shape[0]
    if sample_times.dim() == 1:
        sample_times = sample_times.unsqueeze(0).expand(batch, -1)
    if sample_times.dim() != 2 or sample_times.shape[0] != batch:
        raise ValueError(
            "sample_times must have shape (n_samples,) or (batch, n_samples), got "
            f"{tuple(sample_times.shape)}"
        )
    if not bool(torch.isfinite(sample_times).all()):  # NaN read as "before every input": 0
        raise ValueError("sample_times must be finite (ms or tau_syn units), got NaN or inf")
    lag = sample_times.unsqueeze(2) - input_times.unsqueeze(1)  # (batch, S, n_pre)
    out = torch.zeros(batch, sample_times.shape[1], n_post, dtype=weights.dtype, device=weights.device)
    pairs = torch.stack([params.tau_syn, params.tau_mem], dim=1)
    unique_pairs, group = torch.unique(pairs, dim=0, return_inverse=True)
    for g, (ts, tm) in enumerate(unique_pairs):
        columns = torch.nonzero(group == g).flatten()
        kernel = psp_kernel(lag, ts, tm)  # (batch, S, n_pre)
        out[:, :, columns] = kernel @ weights[:, columns]
    return out
