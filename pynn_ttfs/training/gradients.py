"""Exact per-layer backward pass with the per-(sample, neuron) gradient cut-off.

At output times T (computed or recorded) implicit differentiation of v(T) = c gives, for
one sample and one neuron j of a layer,

    dT_j/dw_ij = -k(T_j - t_i) / v_j'(T_j),     dT_j/dt_i = w_ij k'(T_j - t_i) / v_j'(T_j),
    v_j'(T_j)  = sum_{t_i < T_j} w_ij k'(T_j - t_i)

(k = the PSP kernel of the neuron; zero outside the causal set and for silent neurons).
The engine's autograd Function gives the batch sums of these; the published recipe needs
the per-sample weight gradient dL/dT_j * dT_j/dw_ij to drop a (sample, neuron) whose
largest entry exceeds the cut-off (a neuron that barely reaches threshold has v'(T) ~ 0
and a diverging gradient). So this module evaluates the same formulas per sample, with the
engine's kernel functions and the engine's floor on v'(T), so that without a cut-off the
result equals the engine's gradient (tests check it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..engine import psp_kernel, psp_kernel_derivative

#: bound on one (chunk, n_pre, n_post) working tensor
CHUNK_ELEMENTS = 1 << 22


@dataclass
class LayerGradients:
    weights: torch.Tensor  # dL/dW (n_pre, n_post)
    inputs: torch.Tensor  # dL/dt_in (batch, n_pre)
    n_cut: int  # (sample, neuron) pairs dropped by the cut-off


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
) -> LayerGradients:
    """Backward of one layer. ``grad_output`` = dL/dT (batch, n_post) of the batch loss.

    ``max_weight_grad``: if max_i |dL/dT_j dT_j/dw_ij| of one sample exceeds it, that
    sample's weight gradient for neuron j is dropped (its input-time gradient is kept).
    """
    batch, n_pre = input_times.shape
    n_post = weights.shape[1]
    spiking = torch.isfinite(output_times)
    g = torch.where(spiking, grad_output, torch.zeros_like(grad_output))
    floor = torch.sqrt(torch.tensor(torch.finfo(weights.dtype).eps, dtype=weights.dtype,
                                    device=weights.device)) * (threshold / tau_syn)
    grad_w = torch.zeros_like(weights)
    grad_in = torch.zeros_like(input_times) if need_input_grad else None
    n_cut = 0
    uniform = bool((tau_syn == tau_syn[0]).all() & (tau_mem == tau_syn).all())
    fast_ratio1 = tau_syn[0] if uniform else None
    step = max(1, CHUNK_ELEMENTS // max(1, n_pre * n_post))
    for start in range(0, batch, step):
        rows = slice(start, min(batch, start + step))
        # outputs that stay silent get T = -inf: every lag is then -inf, outside the causal set
        t_out = torch.where(spiking[rows], output_times[rows],
                            torch.full_like(output_times[rows], -torch.inf))
        lag = t_out.unsqueeze(1) - input_times[rows].unsqueeze(2)  # (b, n_pre, n_post)
        if fast_ratio1 is not None:
            # tau_mem = tau_syn = tau for every neuron: k(s) = x e^-x, k'(s) = (1 - x) e^-x / tau
            causal = lag > 0
            x = torch.where(causal, lag, torch.zeros_like(lag)) / fast_ratio1
            decay = torch.exp(-x) * causal
            kernel = x * decay
            kernel_slope = (decay - kernel) / fast_ratio1
        else:
            lag = torch.where(lag > 0, lag, torch.full_like(lag, -1.0))
            kernel_slope = psp_kernel_derivative(lag, tau_syn, tau_mem)
            kernel = psp_kernel(lag, tau_syn, tau_mem)
        slope_w = kernel_slope * weights  # w_ij k'(T_j - t_i), (b, n_pre, n_post)
        v_slope = slope_w.sum(dim=1)
        scale = g[rows] / torch.maximum(v_slope, floor)  # dL/dT / v'(T), (b, n_post)
        scale_w = scale
        if max_weight_grad is not None:
            # largest per-sample |dL/dw_ij| of neuron j = |scale_j| max_i k(T_j - t_i)
            largest = kernel.amax(dim=1) * scale.abs()
            keep = largest <= max_weight_grad
            n_cut += int((~keep & (scale != 0)).sum())
            scale_w = torch.where(keep, scale, torch.zeros_like(scale))
        grad_w -= (kernel * scale_w.unsqueeze(1)).sum(dim=0)
        if need_input_grad:
            grad_in[rows] = torch.bmm(slope_w, scale.unsqueeze(-1)).squeeze(-1)
    return LayerGradients(grad_w, grad_in, n_cut)
