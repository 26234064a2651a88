"""One layer's backward pass for the recipe step, with the per-(sample, neuron) cut-off.

The mathematics is the engine's (``pynn_ttfs.engine.first_spike_gradients``: implicit
differentiation of v(T) = c at computed or recorded times, fast path, the published
cut-off dropping a sample's weight gradient of a neuron whose largest entry is too big);
this wrapper adapts it to the trainer's per-layer bookkeeping.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..engine import first_spike_gradients, layer_parameters


@dataclass
class LayerGradients:
    weights: torch.Tensor  # dL/dW (n_pre, n_post)
    inputs: Optional[torch.Tensor]  # dL/dt_in (batch, n_pre), None if not requested
    n_cut: int  # (sample, neuron) pairs dropped by the cut-off
    n_low_slope: int = 0  # (sample, neuron) pairs dropped for v'(T) < min_slope


def layer_backward(
    input_times: torch.Tensor,
    weights: torch.Tensor,
    output_times: torch.Tensor,
    grad_output: torch.Tensor,
    tau_syn: torch.Tensor,
    tau_mem: torch.Tensor,
    threshold: torch.Tensor,
    max_weight_grad: Optional[float] = None,
    need_input_grad: bool = True,
    min_slope: Optional[float] = None,
) -> LayerGradients:
    """Backward of one layer. ``grad_output`` = dL/dT (batch, n_post) of the batch loss.

    ``max_weight_grad``: if max_i |dL/dT_j dT_j/dw_ij| of one sample exceeds it, that
    sample's weight gradient for neuron j is dropped (its input-time gradient is kept).
    ``min_slope``: pairs where the model's v'(T) < min_slope (threshold / tau_syn) pass no
    gradient (see ``engine.first_spike_gradients``).
    The engine's exact backward does the work (fast path, cut-off included).
    """
    params = layer_parameters(tau_syn, tau_mem, threshold, weights.shape[1], weights,
                              allow_any_ratio=True)
    stats = {"n_cut": 0, "n_low_slope": 0}
    grad_in, grad_w = first_spike_gradients(
        input_times, weights, output_times, params, grad_output,
        need_input_grad=need_input_grad, need_weight_grad=True,
        weight_grad_cutoff=max_weight_grad, stats=stats, min_slope=min_slope)
    return LayerGradients(grad_w, grad_in, int(stats["n_cut"]), int(stats["n_low_slope"]))
