"""Weight mapping between PyNN currents (nA), model units and the chip's 6-bit integers.

model weight = weight_nA / c_nA of the target neuron (c = g_L (v_thresh - v_rest), the
threshold current the user asked for); chip integer = round(model * resolution) clipped to
[-max_int, max_int]; the sign selects the synapse row (excitatory / inhibitory) of the
signed input. The realised model weight is integer / resolution.
"""
from __future__ import annotations

import numpy as np

from .config import ChipConfig


def model_to_chip(weight_model: np.ndarray, config: ChipConfig) -> np.ndarray:
    """Chip integers (float64 array of whole numbers in [-max_int, max_int]).

    With infinite resolution (``weight_resolution=None``) the model weight is returned
    unchanged (no rounding, no clipping).
    """
    w = np.asarray(weight_model, dtype=np.float64)
    if config.weight_resolution is None:
        return w.copy()
    return np.clip(np.round(w * config.weight_resolution), -config.max_weight_int, config.max_weight_int)


def chip_to_model(weight_int: np.ndarray, config: ChipConfig) -> np.ndarray:
    w = np.asarray(weight_int, dtype=np.float64)
    if config.weight_resolution is None:
        return w.copy()
    return w / config.weight_resolution


def realise_model(weight_model: np.ndarray, config: ChipConfig) -> np.ndarray:
    """The model weight the chip actually holds for a requested model weight."""
    return chip_to_model(model_to_chip(weight_model, config), config)
