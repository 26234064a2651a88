"""Multi-layer feed-forward evaluation with bias spikes, recording every layer's times."""
from __future__ import annotations

from typing import List, Mapping, Optional, Sequence

import torch

from .first_spike import first_spike_times


#: what a layer of :func:`feedforward` may hold
LAYER_KEYS = frozenset({"weights", "tau_syn", "tau_mem", "threshold"})


def with_bias(input_times: torch.Tensor, bias_times: Optional[Sequence[float]]) -> torch.Tensor:
    """Append one column per bias spike (a fixed time in every sample) to the inputs."""
    if not bias_times:
        return input_times
    bias = torch.as_tensor(list(bias_times), dtype=input_times.dtype, device=input_times.device)
    return torch.cat([input_times, bias.expand(input_times.shape[0], -1)], dim=1)


def feedforward(
    input_times: torch.Tensor,
    layers: Sequence[Mapping[str, object]],
    bias_times: Optional[Sequence[Optional[Sequence[float]]]] = None,
    recorded_times: Optional[Sequence[torch.Tensor]] = None,
) -> List[torch.Tensor]:
    """Run a feed-forward network; returns every layer's first-spike times (differentiable).

    layers[l]: {"weights": (n_in_l [+ n_bias_l], n_out_l), "tau_syn", "tau_mem", "threshold"}.
    bias_times[l]: extra input spikes at fixed times for layer l; their weights are the
    last rows of that layer's weight matrix. recorded_times[l]: the layer's times measured
    elsewhere (then gradients are evaluated at them; in-the-loop training).
    """
    if bias_times is not None and len(bias_times) != len(layers):
        raise ValueError(
            f"bias_times must have one entry per layer ({len(layers)}), got {len(bias_times)}"
        )
    if recorded_times is not None and len(recorded_times) != len(layers):
        raise ValueError(
            f"recorded_times must have one entry per layer ({len(layers)}), got {len(recorded_times)}"
        )
    for index, layer in enumerate(layers):
        unknown = sorted(set(layer) - LAYER_KEYS)
        if unknown or "weights" not in layer:
            raise ValueError(f"layers[{index}] must have 'weights' and may have 'tau_syn', "
                             f"'tau_mem', 'threshold'; got unknown keys {unknown}"
                             if unknown else f"layers[{index}] has no 'weights'")
    outputs: List[torch.Tensor] = []
    current = input_times
    for index, layer in enumerate(layers):
        layer_input = with_bias(current, bias_times[index] if bias_times else None)
        current = first_spike_times(
            layer_input,
            layer["weights"],
            tau_syn=layer.get("tau_syn", 1.0),
            tau_mem=layer.get("tau_mem", 1.0),
            threshold=layer.get("threshold", 1.0),
            output_times=recorded_times[index] if recorded_times is not None else None,
        )
        outputs.append(current)
    return outputs
