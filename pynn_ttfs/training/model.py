"""A feed-forward TTFS network in model units, as the trainer holds it.

Model units: time in tau_s (of the reference, ``time_unit_ms``) and weights in units of the
nominal threshold current (``current_unit_na``), so the published recipe's numbers apply
as they are. Neuron parameters are per-neuron tensors (an emulated chip's fixed-pattern
variation keeps its shape). The float weights here are the optimizer's parameters; a
backend may hold a quantised copy (BSS-2), the trainer writes them back after each step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import torch

from ..engine import layer_parameters, solve_first_spike_times


@dataclass
class Layer:
    weights: torch.nn.Parameter  # (n_in [+1 bias], n_out), model units
    tau_syn: torch.Tensor  # (n_out,), tau_s units
    tau_mem: torch.Tensor
    threshold: torch.Tensor  # (n_out,), model units (nominal 1)
    bias_time: Optional[float] = None  # arrival time of the bias spike (tau_s); weights = last row
    delay: float = 0.0  # tau_s, added to the previous layer's times (synaptic delay)
    mask: Optional[torch.Tensor] = None  # like weights, True where a connection exists

    @property
    def n_in(self) -> int:
        return self.weights.shape[0] - (1 if self.bias_time is not None else 0)

    @property
    def n_out(self) -> int:
        return self.weights.shape[1]


@dataclass
class TTFSModel:
    layers: List[Layer] = field(default_factory=list)

    @property
    def parameters(self) -> List[torch.nn.Parameter]:
        return [layer.weights for layer in self.layers]

    @property
    def sizes(self) -> List[int]:
        return [self.layers[0].n_in] + [layer.n_out for layer in self.layers]

    def layer_input(self, index: int, previous_times: torch.Tensor) -> torch.Tensor:
        """Inputs of layer ``index``: the previous layer's times plus the bias spike."""
        layer = self.layers[index]
        if layer.delay:
            previous_times = previous_times + layer.delay
        if layer.bias_time is None:
            return previous_times
        bias = torch.full((previous_times.shape[0], 1), layer.bias_time,
                          dtype=previous_times.dtype, device=previous_times.device)
        return torch.cat([previous_times, bias], dim=1)

    @torch.no_grad()
    def forward(self, input_times: torch.Tensor) -> List[torch.Tensor]:
        """Every layer's first-spike times (tau_s, inf = silent) for a batch of inputs."""
        outputs = []
        current = input_times
        for index, layer in enumerate(self.layers):
            layer_in = self.layer_input(index, current)
            params = layer_parameters(layer.tau_syn, layer.tau_mem, layer.threshold,
                                      layer.n_out, layer.weights)
            current = solve_first_spike_times(layer_in, layer.weights.detach(), params)
            outputs.append(current)
        return outputs

    def state_dict(self) -> dict:
        return {
            "weights": [layer.weights.detach().clone() for layer in self.layers],
            "tau_syn": [layer.tau_syn.clone() for layer in self.layers],
            "tau_mem": [layer.tau_mem.clone() for layer in self.layers],
            "threshold": [layer.threshold.clone() for layer in self.layers],
            "bias_times": [layer.bias_time for layer in self.layers],
            "delays": [layer.delay for layer in self.layers],
        }

    def load_state_dict(self, state: dict) -> None:
        shapes = [tuple(w.shape) for w in state["weights"]]
        own = [tuple(layer.weights.shape) for layer in self.layers]
        if shapes != own:
            raise ValueError(f"the saved network's weight shapes {shapes} are not this "
                             f"model's {own}")
        for index, w in enumerate(state["weights"]):
            if not bool(torch.isfinite(torch.as_tensor(w)).all()):
                raise ValueError(f"layer {index}: the saved network's weights contain NaN or inf")
        delays = state.get("delays", [0.0] * len(self.layers))
        # the neuron parameters are the backend's (read through PyNN for in-the-loop runs):
        # a checkpoint made with others (another backend, chip or setup) would give
        # gradients of a network that does not run here
        for index, (layer, ts, tm, th, b, d) in enumerate(zip(
                self.layers, state["tau_syn"], state["tau_mem"], state["threshold"],
                state["bias_times"], delays)):
            for name, mine, saved in (("tau_syn", layer.tau_syn, ts), ("tau_mem", layer.tau_mem, tm),
                                      ("threshold", layer.threshold, th)):
                a = mine.detach().to("cpu", torch.float64)
                b_ = torch.as_tensor(saved).detach().to("cpu", torch.float64)
                if a.shape != b_.shape or not torch.allclose(a, b_, rtol=1e-6, atol=1e-9):
                    raise ValueError(f"layer {index}: the saved network's {name} is not this "
                                     "model's (saved with other neuron parameters: another "
                                     "backend, chip or setup); TTFSModel.from_state_dict keeps "
                                     "the saved ones")
            if (b is None) != (layer.bias_time is None) or (
                    b is not None and not math.isclose(float(b), float(layer.bias_time), rel_tol=1e-6)):
                raise ValueError(f"layer {index}: the saved network's bias time {b} is not this "
                                 f"model's {layer.bias_time}")
            if not math.isclose(float(d), float(layer.delay), rel_tol=1e-6, abs_tol=1e-12):
                raise ValueError(f"layer {index}: the saved network's delay {d} (tau_s) is not "
                                 f"this model's {layer.delay}")
        for layer, w in zip(self.layers, state["weights"]):
            with torch.no_grad():
                layer.weights.copy_(w)

    @classmethod
    def from_state_dict(cls, state: dict) -> "TTFSModel":
        delays = state.get("delays", [0.0] * len(state["weights"]))
        layers = [Layer(torch.nn.Parameter(w.clone()), ts, tm, th, b, d)
                  for w, ts, tm, th, b, d in zip(state["weights"], state["tau_syn"],
                                                 state["tau_mem"], state["threshold"],
                                                 state["bias_times"], delays)]
        return cls(layers)


def build_model(sizes: Sequence[int], weight_mean: Sequence[float],
                weight_std: Sequence[float], bias_times: Sequence[Optional[float]],
                generator: torch.Generator, dtype=torch.float64, device="cpu",
                tau_ratio: float = 1.0) -> TTFSModel:
    """Random Gaussian initial weights (per-layer mean and std), nominal neurons."""
    layers = []
    for index in range(len(sizes) - 1):
        n_in = sizes[index] + (1 if bias_times[index] is not None else 0)
        n_out = sizes[index + 1]
        w = torch.randn(n_in, n_out, generator=generator, dtype=torch.float64)
        w = (w * weight_std[index] + weight_mean[index]).to(dtype=dtype, device=device)
        ones = torch.ones(n_out, dtype=dtype, device=device)
        layers.append(Layer(torch.nn.Parameter(w), ones.clone(), ones * tau_ratio, ones.clone(),
                            bias_times[index]))
    return TTFSModel(layers)


def first_spike_summary(times: torch.Tensor) -> dict:
    """Mean earliest output time over samples with a spike (tau_s) and the silent fraction."""
    earliest = times.min(dim=1).values
    spiking = torch.isfinite(earliest)
    mean = float(earliest[spiking].mean()) if spiking.any() else math.inf
    return {"mean_first_output_time": mean, "all_silent_fraction": float((~spiking).float().mean())}
