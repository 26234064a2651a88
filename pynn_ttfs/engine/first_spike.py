"""Exact first-spike times of a layer (the reference solver) and its exact gradients.

Forward (``solve_first_spike_times``): sort each sample's inputs once; running sums over the
sorted inputs give, for every prefix k of the k earliest inputs, the closed-form candidate
T_k of the membrane reaching threshold with exactly that causal set. T_k is valid if it
lies between the k-th and (k+1)-th input; the output is the first valid candidate.

    ratio 1 (tau_mem = tau_syn, times in tau_syn units, relative to a reference r):
        A = sum w e^(t-r),  B = sum w (t-r) e^(t-r),  z = -(c/A) e^(B/A),
        T = r + B/A - W0(z)                       valid if A > 0 and z >= -1/e
    ratio 2 (tau_mem = 2 tau_syn):
        a1 = sum w e^(t-r), a2 = sum w e^((t-r)/2), D = a2^2 - 4 a1 c,
        T = r + 2 ln(2 a1 / (a2 + sqrt(D)))       valid if a1 > 0, a2 > 0, D >= 0

Times are taken relative to the sample's earliest input r so that the exponentials stay
in range. Memory is O(batch x n_pre x n_post) per chunk; the batch is processed in chunks
of bounded size.

Backward (``first_spike_gradients``): implicit differentiation of v(T) = c at the given
output times T, valid for any kernel and for times recorded elsewhere:

    dT/dw_i = -k(T - t_i) / v'(T),    dT/dt_i = w_i k'(T - t_i) / v'(T),
    v'(T)   = sum_{t_i < T} w_i k'(T - t_i)

(zero for inputs after T and for silent neurons). For ratio 1 this equals the Lambert-W
form -e^{t_i}(T - t_i) / (A (1 + W)).
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch

from .fast import gradients_fast, solve_fast, span_message
from .lambertw import lambertw
from .neuron import (SUPPORTED_RATIOS, LayerParameters, Scalar, layer_parameters, psp_kernel,
                     psp_kernel_derivative)

#: elements of one (chunk, n_pre, n_post) working tensor; bounds peak memory
CHUNK_ELEMENTS = 1 << 22
_INV_E = math.exp(-1.0)


def _chunks(batch: int, per_sample: int):
    step = max(1, CHUNK_ELEMENTS // max(1, per_sample))
    for start in range(0, batch, step):
        yield slice(start, min(batch, start + step))


def check_layer_inputs(input_times: torch.Tensor, weights: torch.Tensor) -> None:
    """Shape, dtype and value checks shared by every entry point (ValueError on failure)."""
    if not isinstance(input_times, torch.Tensor) or not isinstance(weights, torch.Tensor):
        raise ValueError("input_times and weights must be torch tensors")
    if input_times.dim() != 2:
        raise ValueError(
            f"input_times must have shape (batch, n_pre), got {tuple(input_times.shape)}"
        )
    if weights.dim() != 2:
        raise ValueError(f"weights must have shape (n_pre, n_post), got {tuple(weights.shape)}")
    if input_times.shape[1] != weights.shape[0]:
        raise ValueError(
            f"shape mismatch: input_times has n_pre = {input_times.shape[1]} columns but "
            f"weights has {weights.shape[0]} rows"
        )
    if not torch.is_floating_point(input_times) or not torch.is_floating_point(weights):
        raise ValueError("input_times and weights must be floating point tensors")
    if input_times.dtype != weights.dtype:
        raise ValueError(
            f"input_times ({input_times.dtype}) and weights ({weights.dtype}) must share a dtype"
        )
    if input_times.dtype == torch.float16:
        # its largest exponent, log(65504) ~ 11, is below the solver's rescaling margin
        raise ValueError("float16 cannot hold the solver's exponentials (exp(t / tau) overflows "
                         "beyond t ~ 11 tau): use float32 or float64")
    if input_times.dtype == torch.bfloat16:
        # 8 significant bits: the crossing tolerance alone is ~0.5 tau_syn, and spikes
        # appear or vanish against float32 on a few % of neurons
        raise ValueError("bfloat16 has too few significant bits for spike times (errors up to "
                         "~1 tau_syn): use float32 or float64")
    if input_times.device != weights.device:
        raise ValueError(
            f"input_times ({input_times.device}) and weights ({weights.device}) must be on "
            "the same device"
        )
    # one reduction each in the common case (NaN > -inf is False); the message says which
    if not bool((input_times > -math.inf).all()):
        if torch.isnan(input_times).any():
            raise ValueError("input_times contains NaN; use +inf for inputs that do not spike")
        raise ValueError("input_times contains -inf; spike times must be finite or +inf")
    if not bool(torch.isfinite(weights).all()):
        raise ValueError("weights must be finite (got NaN or inf)")


def _solve_chunk(
    sorted_times: torch.Tensor,  # (b, n), ascending, +inf last
    sorted_weights: torch.Tensor,  # (b, n, m)
    params: LayerParameters,
    ratio_value: float,
) -> torch.Tensor:
    tau_syn = params.tau_syn
    uniform_tau = bool((tau_syn == tau_syn[0]).all())
    tau = tau_syn[:1] if uniform_tau else tau_syn  # broadcast over neurons
    finite = torch.isfinite(sorted_times).unsqueeze(-1)  # (b, n, 1)
    x = sorted_times.unsqueeze(-1) / tau  # (b, n, 1 or m), tau_syn units
    reference = torch.where(finite[:, :1], x[:, :1], torch.zeros_like(x[:, :1]))
    dx = torch.where(finite, x - reference, torch.zeros_like(x))
    spread = dx.max().item() if dx.numel() else 0.0
    limit = math.log(torch.finfo(dx.dtype).max) - 20.0
    if spread > limit:
        raise ValueError(span_message(spread, limit, dx.dtype))
    zeros = torch.zeros((), dtype=dx.dtype, device=dx.device)
    weighted = torch.where(finite, sorted_weights, zeros)
    c = params.threshold
    if ratio_value == 1.0:
        a = torch.cumsum(weighted * torch.exp(dx), dim=1)
        b = torch.cumsum(weighted * (dx * torch.exp(dx)), dim=1)
        positive = a > 0
        safe_a = torch.where(positive, a, torch.ones_like(a))
        mean_time = b / safe_a
        z = -(c / safe_a) * torch.exp(mean_time)
        eps = torch.finfo(z.dtype).eps
        solvable = positive & (z >= -_INV_E * (1.0 + 16.0 * eps))
        w0 = lambertw(torch.where(solvable, torch.clamp(z, min=-_INV_E), torch.full_like(z, -0.1)))
        candidate = mean_time - w0
    else:
        a1 = torch.cumsum(weighted * torch.exp(dx), dim=1)
        a2 = torch.cumsum(weighted * torch.exp(0.5 * dx), dim=1)
        discriminant = a2 * a2 - 4.0 * a1 * c
        eps = torch.finfo(a1.dtype).eps
        solvable = (a1 > 0) & (a2 > 0) & (discriminant >= -16.0 * eps * a2 * a2)
        root = (a2 + torch.sqrt(torch.clamp(discriminant, min=0.0))) / torch.where(
            solvable, 2.0 * a1, torch.ones_like(a1)
        )
        candidate = -2.0 * torch.log(torch.where(solvable, root, torch.ones_like(root)))
    # the candidate must fall between this input and the next one (closed interval, with a
    # rounding-level tolerance so a crossing exactly at an input time is not lost)
    lower = torch.where(finite, dx, torch.full_like(dx, math.inf))
    upper = torch.cat([lower[:, 1:], torch.full_like(lower[:, :1], math.inf)], dim=1)
    tol = 64.0 * torch.finfo(candidate.dtype).eps * (1.0 + candidate.abs())
    valid = solvable & finite & (candidate >= lower - tol) & (candidate <= upper + tol)
    any_valid = valid.any(dim=1)  # (b, m)
    first = torch.argmax(valid.to(torch.uint8), dim=1, keepdim=True)  # first valid prefix
    shape = (valid.shape[0], 1, valid.shape[2])
    t_rel = torch.gather(candidate.expand(valid.shape), 1, first)
    t_rel = torch.maximum(t_rel, torch.gather(lower.expand(valid.shape), 1, first))
    t_rel = torch.minimum(t_rel, torch.gather(upper.expand(valid.shape), 1, first))
    times = ((t_rel + reference.expand(shape)) * tau).squeeze(1)
    return torch.where(any_valid, times, torch.full_like(times, math.inf))


def solve_first_spike_times_reference(
    input_times: torch.Tensor, weights: torch.Tensor, params: LayerParameters
) -> torch.Tensor:
    """First-spike times (batch, n_post) of a layer, +inf where a neuron stays silent.

    No autograd; use :func:`first_spike_times` for a differentiable version.
    """
    batch, n_pre = input_times.shape
    n_post = weights.shape[1]
    out = torch.full((batch, n_post), math.inf, dtype=weights.dtype, device=weights.device)
    if batch == 0 or n_post == 0 or n_pre == 0:
        return out
    with torch.no_grad():
        sorted_times, order = torch.sort(input_times.detach(), dim=1)
        w = weights.detach()
        for ratio_value in (1.0, 2.0):
            columns = torch.nonzero(params.ratio == ratio_value).flatten()
            if columns.numel() == 0:
                continue
            sub = LayerParameters(
                params.tau_syn[columns], params.tau_mem[columns], params.threshold[columns],
                params.ratio[columns],
            )
            w_sub = w[:, columns]
            for rows in _chunks(batch, n_pre * columns.numel()):
                sorted_weights = w_sub[order[rows]]  # (b, n_pre, m_sub) in per-sample order
                out[rows.start:rows.stop, columns] = _solve_chunk(
                    sorted_times[rows], sorted_weights, sub, ratio_value
                )
    return out


def _check_gradient_options(weight_grad_cutoff: Optional[float], min_slope: Optional[float]) -> None:
    """The checks of the gradient options shared by first_spike_gradients and first_spike_times."""
    if weight_grad_cutoff is not None and not weight_grad_cutoff > 0:
        raise ValueError(f"weight_grad_cutoff must be > 0 or None, got {weight_grad_cutoff}")
    if min_slope is not None and not (math.isfinite(min_slope) and min_slope >= 0):
        raise ValueError(f"min_slope must be a finite number >= 0 or None, got {min_slope}")


def first_spike_gradients_reference(
    input_times: torch.Tensor,
    weights: torch.Tensor,
    output_times: torch.Tensor,
    params: LayerParameters,
    grad_output: torch.Tensor,
    need_input_grad: bool = True,
    need_weight_grad: bool = True,
    weight_grad_cutoff: Optional[float] = None,
    stats: Optional[dict] = None,
    min_slope: Optional[float] = None,
) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
    """Vector-Jacobian products of the first-spike times at ``output_times``.

    Returns (dL/d input_times (batch, n_pre), dL/d weights (n_pre, n_post)) given
    grad_output = dL/dT (batch, n_post). Silent neurons (T = inf) pass no gradient, and
    neither do pairs whose v'(T) < min_slope * threshold / tau_syn (when given).
    """
    batch, n_pre = input_times.shape
    grad_input = torch.zeros_like(input_times) if need_input_grad else None
    grad_weights = torch.zeros_like(weights) if need_weight_grad else None
    spiking = torch.isfinite(output_times)
    # v'(T) > 0 at an upward crossing; at an exact touch it vanishes. The floor keeps the
    # gradient finite there (it is genuinely unbounded) and guards against recorded times
    # that sit where the model's v'(T) is not positive.
    floor = torch.sqrt(torch.tensor(torch.finfo(weights.dtype).eps, dtype=weights.dtype)) * (
        params.threshold / params.tau_syn
    )
    tau_syn, tau_mem = params.tau_syn, params.tau_mem
    g = torch.where(spiking, grad_output, torch.zeros_like(grad_output))
    if min_slope is not None and stats is not None:
        stats.setdefault("n_low_slope", 0)
    for rows in _chunks(batch, n_pre * weights.shape[1]):
        t_out = output_times[rows]
        lag = torch.where(
            spiking[rows].unsqueeze(1),
            t_out.unsqueeze(1) - input_times[rows].unsqueeze(2),
            torch.full((1,), -1.0, dtype=weights.dtype, device=weights.device),
        )  # (b, n_pre, n_post); <= 0 or nan-free negative outside the causal set
        lag = torch.nan_to_num(lag, nan=-1.0, neginf=-1.0)
        kernel_slope = psp_kernel_derivative(lag, tau_syn, tau_mem)
        v_slope = torch.einsum("bim,im->bm", kernel_slope, weights)
        scale = g[rows] / torch.maximum(v_slope, floor)  # dL/dT / v'(T)
        if min_slope is not None:
            low = (v_slope < min_slope * params.threshold / tau_syn) & (g[rows] != 0)
            scale = torch.where(low, torch.zeros_like(scale), scale)
            if stats is not None:
                stats["n_low_slope"] += int(low.sum())
        if need_weight_grad:
            kernel = psp_kernel(lag, tau_syn, tau_mem)
            if weight_grad_cutoff is not None:
                # per-sample |dL/dw_ij| = k(T_j - t_i) |dL/dT_j / v'(T_j)|
                drop = (kernel.amax(dim=1) * scale.abs() > weight_grad_cutoff) & (scale != 0)
                if stats is not None:
                    stats["n_cut"] = stats.get("n_cut", 0) + int(drop.sum())
                scale_w = torch.where(drop, torch.zeros_like(scale), scale)
            else:
                scale_w = scale
            grad_weights -= torch.einsum("bim,bm->im", kernel, scale_w)
        if need_input_grad:
            grad_input[rows] = torch.einsum("bim,im,bm->bi", kernel_slope, weights, scale)
    return grad_input, grad_weights



def solve_first_spike_times(
    input_times: torch.Tensor, weights: torch.Tensor, params: LayerParameters
) -> torch.Tensor:
    """First-spike times (batch, n_post) of a layer, +inf where a neuron stays silent.

    Dispatches to the fast exact solver (``fast.py``: probe windows and matrix products);
    layers it does not cover (more than a few distinct tau_syn values) use
    :func:`solve_first_spike_times_reference`. Same result to rounding. No autograd; use
    :func:`first_spike_times` for a differentiable version.
    """
    check_layer_inputs(input_times, weights)
    check_layer_parameters(params, weights)
    return _solve_keeping_state(input_times, weights, params, keep_state=False)[0]


def check_layer_parameters(params: LayerParameters, weights: torch.Tensor) -> None:
    """Parameters built for this layer (one value per neuron, the weights' dtype and device)
    with a ratio the closed form covers (ValueError otherwise)."""
    _check_parameters(params, weights)
    supported = torch.zeros_like(params.ratio, dtype=torch.bool)
    for ratio in SUPPORTED_RATIOS:
        supported |= params.ratio == ratio
    if not bool(supported.all()):
        unsupported = float(params.ratio[~supported][0])
        raise ValueError(f"tau_mem / tau_syn = {unsupported:.6g}: the closed-form solver covers "
                         f"ratios {SUPPORTED_RATIOS} only; use "
                         f"pynn_ttfs.engine.general.solve_first_spike_times_general for others")


def _check_output_times(output_times: torch.Tensor, input_times: torch.Tensor,
                        weights: torch.Tensor, name: str = "output_times") -> None:
    """``output_times`` (or the gradient named ``name``): shape (batch, n_post), the
    weights' dtype and device; spike times also neither NaN nor -inf."""
    expected = (input_times.shape[0], weights.shape[1])
    if not isinstance(output_times, torch.Tensor):
        raise ValueError(f"{name} must be a torch tensor of shape (batch, n_post) = {expected}")
    if tuple(output_times.shape) != expected:
        raise ValueError(f"{name} must have shape (batch, n_post) = {expected}, got "
                         f"{tuple(output_times.shape)}")
    if output_times.dtype != weights.dtype or output_times.device != weights.device:
        raise ValueError(f"{name} ({output_times.dtype}, {output_times.device}) must match the "
                         f"weights ({weights.dtype}, {weights.device})")
    if name == "output_times" and not bool((output_times > -math.inf).all()):
        if torch.isnan(output_times).any():
            raise ValueError("output_times contains NaN; use +inf for silent neurons")
        raise ValueError("output_times contains -inf; spike times must be finite or +inf")


def _check_parameters(params: LayerParameters, weights: torch.Tensor) -> None:
    """Shapes, dtype and device as the weights'; time constants and threshold finite and
    > 0, and ratio = tau_mem / tau_syn (a LayerParameters built by hand may say otherwise;
    ``layer_parameters`` builds consistent ones)."""
    _check_parameter_shapes(params, weights)
    if weights.shape[1] == 0:
        return
    positive = [torch.isfinite(v) & (v > 0) for v in (params.tau_syn, params.tau_mem, params.threshold)]
    actual = params.tau_mem.double() / params.tau_syn.double()
    tolerance = 8 * torch.finfo(params.ratio.dtype).eps + 1e-9
    consistent = (params.ratio.double() - actual).abs() <= tolerance * actual.abs()
    # one synchronisation for all four checks
    ok = torch.stack([m.all() for m in positive] + [consistent.all()]).tolist()
    for good, name, value in zip(ok, ("tau_syn", "tau_mem", "threshold"),
                                 (params.tau_syn, params.tau_mem, params.threshold)):
        if not good:
            bad = value[~(torch.isfinite(value) & (value > 0))][0].item()
            raise ValueError(f"params.{name} must be finite and > 0 for every neuron, got {bad}")
    if not ok[3]:
        j = int(torch.nonzero(~consistent)[0])
        raise ValueError(f"params.ratio must equal tau_mem / tau_syn for every neuron: neuron {j} "
                         f"has ratio {params.ratio[j].item():g} but tau_mem / tau_syn = "
                         f"{actual[j].item():g} (build parameters with layer_parameters)")


def _check_parameter_shapes(params: LayerParameters, weights: torch.Tensor) -> None:
    n_post = weights.shape[1]
    for name in ("tau_syn", "tau_mem", "threshold", "ratio"):
        value = getattr(params, name)
        if tuple(value.shape) != (n_post,):
            raise ValueError(f"params.{name} must have one value per neuron, shape ({n_post},), "
                             f"got {tuple(value.shape)}")
        if value.dtype != weights.dtype or value.device != weights.device:
            raise ValueError(f"params.{name} ({value.dtype}, {value.device}) must match the "
                             f"weights ({weights.dtype}, {weights.device})")


def _solve_keeping_state(input_times, weights, params, keep_state: bool):
    """(times, solver state for the backward pass or None)."""
    solved = solve_fast(input_times, weights, params, keep_state=keep_state)
    if solved is None:
        return solve_first_spike_times_reference(input_times, weights, params), None
    return solved


def first_spike_gradients(
    input_times: torch.Tensor,
    weights: torch.Tensor,
    output_times: torch.Tensor,
    params: LayerParameters,
    grad_output: torch.Tensor,
    need_input_grad: bool = True,
    need_weight_grad: bool = True,
    solver_state: Optional[dict] = None,
    weight_grad_cutoff: Optional[float] = None,
    stats: Optional[dict] = None,
    min_slope: Optional[float] = None,
) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
    """Vector-Jacobian products of the first-spike times at ``output_times``.

    Returns (dL/d input_times (batch, n_pre), dL/d weights (n_pre, n_post)) given
    grad_output = dL/dT (batch, n_post). Silent neurons (T = inf) pass no gradient.
    Fast path (``fast.py``) where it applies, else :func:`first_spike_gradients_reference`.
    ``solver_state``: what the forward solve kept for the same inputs and weights.

    ``weight_grad_cutoff`` (the published recipe's per-(sample, neuron) cut-off, in
    dL/dw units): a sample's weight gradient of neuron j is dropped when its largest entry
    max_i |dL/dT_j dT_j/dw_ij| exceeds it; input-time gradients are kept. ``stats`` (a
    dict) receives ``n_cut``, the number of dropped (sample, neuron) pairs.

    ``min_slope`` (None = off; in units of threshold / tau_syn): a (sample, neuron) pair
    whose model membrane slope v'(T) at the given T is below it passes no gradient, to the
    weights or to the inputs (``stats["n_low_slope"]`` counts them). At times computed by
    the model v'(T) > 0 (an upward crossing); at times recorded on a substrate whose
    neurons differ from the model (an analog chip), the model's membrane can be flat or
    falling at T, where 1 / v'(T) gives a gradient of arbitrary size and sign.
    """
    _check_gradient_options(weight_grad_cutoff, min_slope)
    # the kernels index T and dL/dT by (sample, neuron) without bounds checks
    check_layer_inputs(input_times, weights)
    _check_parameters(params, weights)
    _check_output_times(output_times, input_times, weights)
    _check_output_times(grad_output, input_times, weights, name="grad_output")
    result = gradients_fast(input_times, weights, output_times, params, grad_output,
                            need_input_grad, need_weight_grad, solver_state,
                            weight_grad_cutoff, stats, min_slope)
    if result is None:
        result = first_spike_gradients_reference(
            input_times, weights, output_times, params, grad_output,
            need_input_grad, need_weight_grad, weight_grad_cutoff, stats, min_slope)
    return result


class FirstSpikeTimes(torch.autograd.Function):
    """Autograd Function: forward solves (or takes the given output times), backward is exact."""

    @staticmethod
    def forward(ctx, input_times, weights, tau_syn, tau_mem, threshold, ratio, output_times,
                weight_grad_cutoff=None, min_slope=None):
        params = LayerParameters(tau_syn, tau_mem, threshold, ratio)
        ctx.solver_state = None
        ctx.weight_grad_cutoff = weight_grad_cutoff
        ctx.min_slope = min_slope
        if output_times is None:
            # probe-window states computed here are reused by the backward pass
            times, ctx.solver_state = _solve_keeping_state(
                input_times, weights, params, keep_state=any(ctx.needs_input_grad[:2]))
        else:
            times = output_times.detach().to(weights.dtype).clone()
        ctx.save_for_backward(input_times, weights, times, tau_syn, tau_mem, threshold, ratio)
        return times

    @staticmethod
    def backward(ctx, grad_times):
        if torch.is_grad_enabled():  # create_graph=True: a second derivative is wanted
            raise RuntimeError(
                "first_spike_times has exact first derivatives only: its gradients are not "
                "differentiable again (backward/autograd.grad with create_graph=True, e.g. a "
                "gradient penalty, would silently get zero second derivatives)")
        input_times, weights, times, tau_syn, tau_mem, threshold, ratio = ctx.saved_tensors
        params = LayerParameters(tau_syn, tau_mem, threshold, ratio)
        grad_input, grad_weights = first_spike_gradients(
            input_times, weights, times, params, grad_times,
            need_input_grad=ctx.needs_input_grad[0],
            need_weight_grad=ctx.needs_input_grad[1],
            solver_state=ctx.solver_state,
            weight_grad_cutoff=ctx.weight_grad_cutoff,
            min_slope=ctx.min_slope,
        )
        ctx.solver_state = None  # free it: a second backward recomputes
        return grad_input, grad_weights, None, None, None, None, None, None, None


def first_spike_times(
    input_times: torch.Tensor,
    weights: torch.Tensor,
    tau_syn: Scalar = 1.0,
    tau_mem: Scalar = 1.0,
    threshold: Scalar = 1.0,
    output_times: Optional[torch.Tensor] = None,
    weight_grad_cutoff: Optional[float] = None,
    min_slope: Optional[float] = None,
) -> torch.Tensor:
    """Differentiable first-spike times (batch, n_post) of a layer; +inf = no spike.

    input_times (batch, n_pre), +inf for inputs that do not spike; weights (n_pre, n_post),
    signed. tau_syn, tau_mem, threshold (c = g_L (v_thresh - v_rest), in weight units):
    scalars or one value per neuron; tau_mem / tau_syn must be 1 or 2.

    ``output_times`` (batch, n_post): spike times recorded elsewhere (another simulator,
    a chip). They are returned as they are and the backward pass evaluates the exact
    gradients at them; any tau ratio is accepted then.

    ``weight_grad_cutoff``: drop a sample's weight gradient of a neuron whose largest entry
    exceeds it (see :func:`first_spike_gradients`); None = exact gradients.

    ``min_slope``: no gradient through (sample, neuron) pairs whose model membrane slope at
    the (recorded) time is below it, in threshold / tau_syn (see
    :func:`first_spike_gradients`); None = off.
    """
    _check_gradient_options(weight_grad_cutoff, min_slope)
    check_layer_inputs(input_times, weights)
    for name, value in (("tau_syn", tau_syn), ("tau_mem", tau_mem), ("threshold", threshold)):
        if isinstance(value, torch.Tensor) and value.requires_grad:
            raise ValueError(f"{name} requires grad, but first_spike_times has gradients for "
                             f"input_times and weights only; pass {name}.detach()")
    if output_times is not None:
        if isinstance(output_times, torch.Tensor) and torch.is_floating_point(output_times):
            # recorded times often come as float64 (numpy); they are returned in the
            # weights' dtype (a different device stays an error)
            output_times = output_times.to(weights.dtype)
        _check_output_times(output_times, input_times, weights)
    params = layer_parameters(
        tau_syn, tau_mem, threshold, weights.shape[1], weights,
        allow_any_ratio=output_times is not None,
    )
    return FirstSpikeTimes.apply(
        input_times, weights, params.tau_syn, params.tau_mem, params.threshold, params.ratio,
        output_times, weight_grad_cutoff, min_slope,
    )
