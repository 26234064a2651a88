"""Emulated BrainScaleS-2 chip: ``get_substrate("bss2", chip_seed=..., ...)``.

config.py (every chip number and its source), chip.py (one seeded chip instance),
calibration.py (spike-based calibration and its cache), weights.py (model <-> chip
integers), substrate.py (the Substrate).
"""
from .calibration import Calibration, calibrate, load_or_calibrate, measure_neurons, relative_spread
from .chip import ChipInstance
from .config import ChipConfig, make_config
from .substrate import BSS2Substrate
from .weights import chip_to_model, model_to_chip, realise_model

__all__ = ["BSS2Substrate", "ChipConfig", "ChipInstance", "Calibration", "calibrate", "load_or_calibrate",
           "measure_neurons", "relative_spread", "make_config", "model_to_chip", "chip_to_model",
           "realise_model"]
