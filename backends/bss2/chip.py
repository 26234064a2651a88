"""One emulated BrainScaleS-2 chip instance: hidden analog parameters, trims, probe stimuli.

A chip seed fixes every fixed-pattern deviation (one seed = one physical chip). The true
parameters are private (``_true_*``): the substrate's physics uses them, the calibration
routine does not — it only sees spike times returned by the probe methods
(:meth:`ChipInstance.measure_dc_response`, :meth:`ChipInstance.measure_synaptic_response`)
and writes per-neuron trims (:meth:`ChipInstance.set_trims`).

Per logical neuron j the chip realises, relative to the targets the user asked for:

    threshold current  c_j   = c_target * thr_j * trim_c_j * drift_c_j
    synaptic time      tau_s = tau_s_target * ts_j * trim_s_j * drift_s_j
    membrane time      tau_m = tau_m_target * tm_j * trim_m_j * drift_m_j
    weight of row i    w_ij  = w_realised * col_j * syn_ij

thr_j = 1 + threshold offset - leak offset (both relative to the nominal threshold swing),
col_j the neuron's synaptic input strength, syn_ij the per-synapse mismatch. ``drift_*``
are the post-calibration residuals: they appear only once trims are loaded and model what
the real calibration cannot remove (they are sized to the published residuals: threshold
+5 % +- 3.1 %, time constants 15 %, the middle of the published "roughly 10-20 %").
Without trims the chip shows its raw spread.
"""
from __future__ import annotations

import math
from typing import Dict, Optional

import numpy as np
import torch

from pynn_ttfs.engine.general import solve_first_spike_times_general

from .config import ChipConfig

TRIM_NAMES = ("threshold", "tau_mem", "tau_syn")


def _lognormal(rng: np.random.Generator, sigma: float, size) -> np.ndarray:
    return np.exp(sigma * rng.standard_normal(size)) if sigma > 0 else np.ones(size)


class ChipInstance:
    """Fixed-pattern state of one chip (numpy float64 arrays over ``config.n_neurons``)."""

    def __init__(self, chip_seed: int, config: ChipConfig):
        if not isinstance(chip_seed, (int, np.integer)) or chip_seed < 0:
            raise ValueError(f"chip_seed must be an integer >= 0, got {chip_seed!r}")
        self.chip_seed = int(chip_seed)
        self.config = config
        n = config.n_neurons
        rng = np.random.default_rng([self.chip_seed, 0xB552])
        # draw every quantity from its own stream so that changing one spread leaves the
        # others of the same chip unchanged (robustness sweeps compare like with like)
        streams = rng.spawn(9)
        offsets = (config.threshold_spread * streams[0].standard_normal(n)
                   - config.leak_spread * streams[1].standard_normal(n))
        self._true_threshold = np.maximum(1.0 + offsets, 0.2)
        self._true_tau_mem = _lognormal(streams[2], config.tau_mem_spread, n)
        self._true_tau_syn = _lognormal(streams[3], config.tau_syn_spread, n)
        self._true_column_gain = _lognormal(streams[4], config.column_gain_spread, n)
        self._true_synapse_gain = _lognormal(streams[5], config.synapse_gain_spread, (2 * config.max_inputs, n))
        self._true_dc_gain = _lognormal(streams[6], config.dc_gain_spread, n)
        self._true_dead = streams[7].random(n) < config.dead_fraction
        drift = streams[8]
        # clamped as the raw threshold is: a wide spread must not put a threshold below rest
        self._drift_threshold = np.maximum(
            1.0 + config.calibrated_threshold_offset
            + config.calibrated_threshold_spread * drift.standard_normal(n), 0.2)
        self._drift_tau_mem = _lognormal(drift, config.calibrated_tau_spread, n)
        self._drift_tau_syn = _lognormal(drift, config.calibrated_tau_spread, n)
        self.trims: Optional[Dict[str, np.ndarray]] = None

    # ----------------------------------------------------------------- trims
    @property
    def calibrated(self) -> bool:
        return self.trims is not None

    def set_trims(self, trims: Dict[str, np.ndarray]) -> None:
        n = self.config.n_neurons
        checked = {}
        for name in TRIM_NAMES:
            value = np.asarray(trims[name], dtype=np.float64)
            if value.shape != (n,) or not np.all(np.isfinite(value)) or np.any(value <= 0):
                raise ValueError(f"trim {name!r} must be {n} finite positive factors")
            checked[name] = value
        self.trims = checked

    def clear_trims(self) -> None:
        self.trims = None

    # ------------------------------------------------- effective parameters
    def neuron_factors(self) -> Dict[str, np.ndarray]:
        """Realised / target factors of every neuron in the chip's current state."""
        thr, tm, ts = self._true_threshold, self._true_tau_mem, self._true_tau_syn
        if self.trims is not None:
            thr = thr * self.trims["threshold"] * self._drift_threshold
            tm = tm * self.trims["tau_mem"] * self._drift_tau_mem
            ts = ts * self.trims["tau_syn"] * self._drift_tau_syn
        return {"threshold": thr, "tau_mem": tm, "tau_syn": ts,
                "column_gain": self._true_column_gain, "dead": self._true_dead}

    def synapse_gain(self, rows: np.ndarray, neurons: np.ndarray) -> np.ndarray:
        return self._true_synapse_gain[rows, neurons]

    # ------------------------------------------------------ noise and clock
    def add_output_noise(self, times: torch.Tensor, tau_syn: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Spike-time jitter (sigma in each neuron's tau_syn) on the finite times."""
        if not self.config.noise or self.config.spike_jitter_tau_s == 0:
            return times
        noise = torch.as_tensor(rng.standard_normal(tuple(times.shape)), dtype=times.dtype, device=times.device)
        jittered = times + noise * self.config.spike_jitter_tau_s * tau_syn
        return torch.where(torch.isfinite(times), torch.clamp(jittered, min=0.0), times)

    def noisy_threshold(self, threshold: torch.Tensor, n_trials: int, rng: np.random.Generator) -> torch.Tensor:
        """(n_trials, m) per-trial thresholds: trial-to-trial noise on the fixed thresholds."""
        base = threshold.unsqueeze(0).expand(n_trials, -1)
        if not self.config.noise or self.config.threshold_noise == 0:
            return base.clone()
        noise = torch.as_tensor(rng.standard_normal((n_trials, threshold.shape[0])), dtype=threshold.dtype,
                                device=threshold.device)
        return base * torch.clamp(1.0 + self.config.threshold_noise * noise, min=0.05)

    def timestamp(self, times_model_ms, xp=torch):
        """Quantise (model ms) times to the FPGA clock (round to the nearest tick)."""
        tick = self.config.time_resolution_us * self.config.acceleration / 1000.0
        if tick == 0:
            return times_model_ms
        return xp.round(times_model_ms / tick) * tick

    # ------------------------------------------------------ probe stimuli
    # Both return spike times in chip µs, shape (repeats, n_levels, n_neurons), inf = none.
    # Calibration sees nothing else of the chip.

    def measure_dc_response(self, levels: np.ndarray, repeats: int, rng: np.random.Generator) -> np.ndarray:
        """Switch on each neuron's offset current at t = 0 with amplitude ``levels`` (n_levels,)
        or (n_levels, n_neurons), in nominal threshold currents, and record the first spike
        (operating point tau = ``config.calibration_tau_us``)."""
        n = self.config.n_neurons
        f = self.neuron_factors()
        tau_m = self.config.calibration_tau_us * f["tau_mem"]
        levels = np.asarray(levels, dtype=np.float64)
        levels = np.broadcast_to(levels[:, None] if levels.ndim == 1 else levels, (levels.shape[0], n))
        drive = levels[None] * self._true_dc_gain[None, None, :]
        threshold = f["threshold"][None, None, :] * self._threshold_noise(rng, (repeats, levels.shape[0]))
        ratio = threshold / np.maximum(drive, 1e-300)
        with np.errstate(divide="ignore", invalid="ignore"):
            times = np.where(ratio < 1.0, -tau_m * np.log1p(-np.minimum(ratio, 1.0 - 1e-15)), np.inf)
        return self._finish_probe(times, self.config.calibration_tau_us * f["tau_syn"], rng)

    def measure_synaptic_response(self, total_ints: np.ndarray, n_rows: int, repeats: int,
                                  rng: np.random.Generator) -> np.ndarray:
        """Send one spike at t = 0 through ``n_rows`` excitatory rows of each neuron whose
        integer weights add up to ``total_ints`` (n_levels,) or (n_levels, n_neurons)
        (spread as evenly as the integers allow); record the first spike."""
        n = self.config.n_neurons
        if not 1 <= n_rows <= self.config.max_inputs:
            raise ValueError(f"n_rows must lie in [1, {self.config.max_inputs}], got {n_rows}")
        total = np.asarray(total_ints)
        total = np.broadcast_to(total[:, None] if total.ndim == 1 else total, (total.shape[0], n)).astype(np.int64)
        if np.any(total < 0) or np.any(total > n_rows * self.config.max_weight_int):
            raise ValueError(f"total_ints must lie in [0, {n_rows * self.config.max_weight_int}] for {n_rows} rows")
        f = self.neuron_factors()
        resolution = self.config.weight_resolution or 30.0
        gains = self._true_synapse_gain[2 * np.arange(n_rows)]  # excitatory row of each input
        cumulative = np.vstack([np.zeros((1, n)), np.cumsum(gains, axis=0)])
        per_row, extra = total // n_rows, total % n_rows
        weighted = per_row * cumulative[-1][None, :] + np.take_along_axis(cumulative, extra, axis=0)
        amplitude = weighted / resolution * self._true_column_gain[None, :]  # c_target units
        tau_syn = self.config.calibration_tau_us * f["tau_syn"]
        tau_mem = self.config.calibration_tau_us * f["tau_mem"]
        n_levels = total.shape[0]
        threshold = f["threshold"][None, None, :] * self._threshold_noise(rng, (repeats, n_levels))
        times = np.empty((repeats, n_levels, n))
        for level in range(n_levels):
            out = solve_first_spike_times_general(
                torch.zeros((repeats, 1), dtype=torch.float64),
                torch.as_tensor(amplitude[level][None, :]),
                torch.as_tensor(tau_syn), torch.as_tensor(tau_mem),
                torch.as_tensor(threshold[:, level, :]),
            )
            times[:, level, :] = out.numpy()
        return self._finish_probe(times, tau_syn, rng)

    def _threshold_noise(self, rng, shape) -> np.ndarray:
        n = self.config.n_neurons
        if not self.config.noise or self.config.threshold_noise == 0:
            return np.ones(shape + (n,))
        return np.maximum(1.0 + self.config.threshold_noise * rng.standard_normal(shape + (n,)), 0.05)

    def _finish_probe(self, times_us: np.ndarray, tau_syn_us: np.ndarray, rng) -> np.ndarray:
        if self.config.noise and self.config.spike_jitter_tau_s > 0:
            times_us = times_us + self.config.spike_jitter_tau_s * tau_syn_us * rng.standard_normal(times_us.shape)
        tick = self.config.time_resolution_us
        if tick > 0:
            times_us = np.round(times_us / tick) * tick
        times_us = np.where(np.isfinite(times_us), np.maximum(times_us, 0.0), math.inf)
        times_us[..., self._true_dead] = math.inf
        return times_us
