"""Every number of the emulated BrainScaleS-2 chip, with its source or its status as an assumption.

Units used throughout the emulation:

* Model time: the PyNN layer's ms. Chip time = model time / acceleration; with the default
  1000x, 1 model ms = 1 chip µs, so a population with tau_syn = 6 ms runs with the
  published tau_s = 6 µs of chip time.
* Model weight units: a synaptic weight divided by the threshold current of the TARGET
  neuron, w_model = w_nA / c_nA with c = g_L (v_thresh - v_rest) = cm / tau_m * (v_thresh -
  v_rest). One model unit is the weight that, delivered as a constant current, would hold
  the membrane exactly at threshold. The chip stores round(w_model * weight_resolution)
  clipped to [-max_weight_int, max_weight_int] (published: 30 per unit, 63, so 1/30
  resolution and |w| <= 2.1).
* Relative spreads are standard deviations of log-normal factors (exp(sigma N(0, 1))) on
  the nominal value, so parameters stay positive.

Sources: ../shared/docs/ttfs-reference.md section 5 (published chip facts: 1000x, 6 µs,
8 ns, 256/256 limits, 6-bit weights, calibratable ranges, post-calibration residuals from
the authors' hardware-aware simulation: threshold offset +0.13 and sigma 0.08 at threshold
2.6 -> +5.0 % and 3.1 %; trial-to-trial threshold sigma 0.04 -> 1.5 %; jitter 0.01 tau_s;
calibrated time constants within roughly 10-20 % of their targets -> 15 %).
Chip power: 0.696 W = 192 µJ / 276 µs, the ASIC energy and the classification time per
sample that Stradmann et al. measured on the BrainScaleS-2 mobile system ("Demonstrating
analog inference on the BrainScaleS-2 mobile system", IEEE Open Journal of Circuits and
Systems 3, 252-262 (2022), doi:10.1109/OJCAS.2022.3208413; the whole system drew 5.6 W).
That ASIC ran in its analog matrix-multiplication mode, not in spiking mode, so the figure
is the chip's measured power in operation, not a measurement of TTFS inference.
Uncalibrated spreads, the per-synapse gain spread and the overheads are ASSUMPTIONS
(stated as such below); change them through ``ChipConfig``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np


@dataclass(frozen=True)
class ChipConfig:
    # --- capacity (published) ---
    n_neurons: int = 256  # logical neurons over all LIF populations
    max_inputs: int = 256  # signed inputs per neuron (2 synapse rows each)
    # --- weights (published) ---
    #: chip integers per model weight unit; None = infinite resolution (no rounding, no clip)
    weight_resolution: Optional[float] = 30.0
    max_weight_int: int = 63
    # --- time (published) ---
    acceleration: float = 1000.0  # model ms -> chip µs at 1000x
    time_resolution_us: float = 0.008  # FPGA clock 125 MHz; 0 = no time-stamp quantisation
    tau_syn_range_us: Tuple[float, float] = (0.3, 30.0)
    tau_mem_range_us: Tuple[float, float] = (0.5, 60.0)
    trial_duration_tau_s: float = 30.0  # chip time one sample occupies, in tau_s
    #: ASSUMPTION: extra chip-side time per trial (µs) and per run() call (µs); 0 by default,
    #: i.e. the reported time is the analog network's time only
    overhead_per_trial_us: float = 0.0
    overhead_per_run_us: float = 0.0
    #: ASIC power in operation (W) for the energy estimate = power x chip time; source in
    #: the module docstring (Stradmann et al. 2022: 192 µJ per 276 µs sample)
    chip_power_w: float = 0.192e-3 / 276e-6
    #: the whole system's power (W) in the same measurement (FPGA, board, ASIC)
    system_power_w: float = 5.6
    # --- trial-to-trial noise (published magnitudes) ---
    noise: bool = True
    threshold_noise: float = 0.04 / 2.6  # relative sigma per (trial, neuron)
    spike_jitter_tau_s: float = 0.01  # sigma of each spike time, in the neuron's tau_s
    # --- fixed pattern before calibration (ASSUMPTIONS; the time constants' raw spread is
    # taken at twice the published post-calibration residual) ---
    threshold_spread: float = 0.15  # threshold voltage relative to (v_thresh - v_rest)
    leak_spread: float = 0.10  # leak (resting) potential, relative to (v_thresh - v_rest)
    tau_mem_spread: float = 0.30
    tau_syn_spread: float = 0.30
    column_gain_spread: float = 0.15  # per-neuron synaptic input strength (calibratable)
    synapse_gain_spread: float = 0.03  # per-synapse DAC mismatch (not calibratable)
    dc_gain_spread: float = 0.10  # the neuron's offset-current source, used by calibration
    dead_fraction: float = 0.0  # fraction of neuron circuits that never spike
    # --- after calibration (published residuals of the hardware-aware simulation) ---
    calibrated_threshold_offset: float = 0.13 / 2.6  # mean relative threshold offset (+5 %)
    calibrated_threshold_spread: float = 0.08 / 2.6  # per-neuron sigma (3.1 %)
    #: tau_mem and tau_syn per neuron: published "roughly 10-20 % around target" -> 15 %
    calibrated_tau_spread: float = 0.15
    #: trim DACs: relative step and range of the per-neuron correction factors
    trim_step: float = 0.002
    trim_range: Tuple[float, float] = (0.4, 2.5)
    #: operating point at which calibration measures (chip µs)
    calibration_tau_us: float = 6.0

    def __post_init__(self):
        if not isinstance(self.noise, (bool, np.bool_)):  # "off" or "no" would read as on
            raise ValueError(f"ChipConfig.noise must be True or False, got {self.noise!r}")
        positive = ("n_neurons", "max_inputs", "max_weight_int", "acceleration", "trial_duration_tau_s",
                    "calibration_tau_us", "trim_step")
        for field_ in dataclasses.fields(self):  # strings would fail in comparisons below
            value = getattr(self, field_.name)
            if field_.name == "noise" or value is None:
                continue
            if isinstance(value, list):  # a range read back from JSON
                value = tuple(value)
                object.__setattr__(self, field_.name, value)
            parts = value if isinstance(value, tuple) else (value,)
            if any(isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating))
                   for v in parts):
                raise ValueError(f"ChipConfig.{field_.name} must be a number"
                                 f"{' pair' if isinstance(value, tuple) else ''}, got {value!r}")
        for name in positive:
            if not (getattr(self, name) > 0 and math.isfinite(getattr(self, name))):
                raise ValueError(f"ChipConfig.{name} must be finite and > 0, got {getattr(self, name)}")
        if self.weight_resolution is not None and not (self.weight_resolution > 0
                                                       and math.isfinite(self.weight_resolution)):
            raise ValueError(
                f"ChipConfig.weight_resolution must be finite and > 0, or None (infinite "
                f"resolution), got {self.weight_resolution}"
            )
        non_negative = ("time_resolution_us", "overhead_per_trial_us", "overhead_per_run_us",
                        "chip_power_w", "system_power_w",
                        "threshold_noise", "spike_jitter_tau_s", "threshold_spread", "leak_spread",
                        "tau_mem_spread", "tau_syn_spread", "column_gain_spread", "synapse_gain_spread",
                        "dc_gain_spread", "calibrated_threshold_spread", "calibrated_tau_spread")
        for name in non_negative:
            if not (getattr(self, name) >= 0 and math.isfinite(getattr(self, name))):
                raise ValueError(f"ChipConfig.{name} must be finite and >= 0, got {getattr(self, name)}")
        if not 0 <= self.dead_fraction < 1:
            raise ValueError(f"ChipConfig.dead_fraction must lie in [0, 1), got {self.dead_fraction}")
        for name in ("tau_syn_range_us", "tau_mem_range_us", "trim_range"):
            low, high = getattr(self, name)
            if not 0 < low < high:
                raise ValueError(f"ChipConfig.{name} must be (low, high) with 0 < low < high, got {(low, high)}")

    @property
    def max_weight_model(self) -> float:
        """Largest |weight| in model units (2.1 for the published 63 / 30)."""
        if self.weight_resolution is None:
            return float("inf")
        return self.max_weight_int / self.weight_resolution

    def replace(self, **changes) -> "ChipConfig":
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown ChipConfig fields {unknown}; known: {sorted(known)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> Dict:
        return dataclasses.asdict(self)

    @classmethod
    def ideal(cls, **changes) -> "ChipConfig":
        """No noise, no fixed-pattern spread, infinite weight resolution, no time stamps:
        the chip then reproduces the software substrate exactly."""
        base = cls(weight_resolution=None, time_resolution_us=0.0, noise=False, threshold_spread=0.0,
                   leak_spread=0.0, tau_mem_spread=0.0, tau_syn_spread=0.0, column_gain_spread=0.0,
                   synapse_gain_spread=0.0, dc_gain_spread=0.0, calibrated_threshold_offset=0.0,
                   calibrated_threshold_spread=0.0, calibrated_tau_spread=0.0)
        return base.replace(**changes) if changes else base


def make_config(chip_config=None, **changes) -> ChipConfig:
    """A ChipConfig from None (defaults), a ChipConfig or a dict, with field overrides."""
    if chip_config is None:
        base = ChipConfig()
    elif isinstance(chip_config, ChipConfig):
        base = chip_config
    elif isinstance(chip_config, dict):
        base = ChipConfig().replace(**chip_config)
    else:
        raise ValueError(f"chip_config must be a ChipConfig, a dict or None, got {type(chip_config).__name__}")
    changes = {k: v for k, v in changes.items() if v is not None}
    return base.replace(**changes) if changes else base
