"""The TTFS mathematics: pure PyTorch, batch-first, device-agnostic, no PyNN imports."""
from .first_spike import (
    FirstSpikeTimes,
    first_spike_gradients,
    first_spike_times,
    solve_first_spike_times,
)
from .lambertw import lambertw
from .network import feedforward, with_bias
from .neuron import SUPPORTED_RATIOS, LayerParameters, layer_parameters, psp_kernel, psp_kernel_derivative
from .potential import membrane_potential

__all__ = [
    "FirstSpikeTimes", "first_spike_gradients", "first_spike_times", "solve_first_spike_times",
    "lambertw", "feedforward", "with_bias", "SUPPORTED_RATIOS", "LayerParameters",
    "layer_parameters", "psp_kernel", "psp_kernel_derivative", "membrane_potential",
]
