"""Calibration of an emulated chip from spike responses only, and its on-disk cache.

What the routine does (it never reads the chip's hidden parameters):

1. Offset-current probe: the neuron's offset current is switched on at t = 0 at several
   levels L (multiples of the nominal threshold current). The first spike obeys
   T = -tau_m ln(1 - rho / L) with rho = threshold / offset-current gain; for the right
   tau_m every level gives the same rho = L (1 - exp(-T / tau_m)), so tau_m is the value
   that minimises the spread of log rho across levels (grid search, refined twice).
2. Synaptic probe: one spike at t = 0 through n_rows excitatory rows at several integer
   weights. With tau_m known, the first spike satisfies s * A * k(T; tau_s, tau_m) = 1,
   where A is the programmed amplitude in model units and s = (synaptic strength /
   threshold) the neuron's weight scale; tau_s is the value that makes s the same for
   every amplitude, and s is their geometric mean.
3. Trims: tau_m and tau_s trims bring the measured values to the operating point, the
   threshold trim scales the threshold by s so that one model weight unit means one
   threshold current again. Trims are quantised to the trim DAC step; neurons whose fit
   failed or whose trim falls outside the DAC range are flagged ``calibratable = False``
   (they keep trims of 1).

Each probe level is repeated and averaged (trial-to-trial noise). The result is saved as
``.npz`` keyed by chip seed and a hash of the chip configuration, like a real chip's
calibration cache.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from .chip import TRIM_NAMES, ChipInstance
from .config import ChipConfig

#: probe levels relative to each neuron's measured firing limit
DC_FACTORS = np.array([1.02, 1.06, 1.12, 1.25, 1.5, 2.0, 3.0])
SYNAPSE_FACTORS = np.array([1.0, 1.01, 1.02, 1.04, 1.07, 1.12, 1.25, 1.5])
SYNAPSE_ROWS = 32
MIN_LEVELS = 3
CACHE_ENV = "PYNN_TTFS_BSS2_CALIBRATION_DIR"
FORMAT_VERSION = 2  # 2: the noise settings are part of the configuration key


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "pynn_ttfs" / "bss2"))


def config_key(config: ChipConfig) -> str:
    """Hash of the configuration fields that shape a chip and its calibration. The noise
    settings count: the calibration measures the chip through its noisy spikes, so its
    trims depend on them."""
    fields = config.to_dict()
    for runtime_only in ("overhead_per_trial_us", "overhead_per_run_us", "trial_duration_tau_s"):
        fields.pop(runtime_only)
    text = json.dumps(fields, sort_keys=True, default=str) + f"/v{FORMAT_VERSION}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def cache_path(cache_dir, chip_seed: int, config: ChipConfig) -> Path:
    return Path(cache_dir) / f"bss2_chip{chip_seed}_{config_key(config)}.npz"


def _stable_kernel(t, tau_syn, tau_mem):
    """k(t) for t >= 0 and any ratio, without cancellation near tau_mem = tau_syn."""
    x = t / tau_syn
    r = tau_mem / tau_syn
    delta = r - 1.0
    one = np.abs(delta) < 1e-9
    safe = np.where(one, 1.0, delta)
    g = np.where(one, x, np.expm1(x * delta / r) / safe)
    return np.exp(-x) * g


def _mean_finite(times: np.ndarray) -> np.ndarray:
    """Mean over repeats; a level counts only if every repeat spiked (NaN otherwise)."""
    ok = np.all(np.isfinite(times), axis=0)
    return np.where(ok, np.where(np.isfinite(times), times, 0.0).mean(axis=0), np.nan)


def _grid_fit(loss_of_tau, reference: float, n_neurons: int):
    """Per-neuron argmin of loss_of_tau(tau (n, G)) -> (n, G) over a log grid, refined."""
    low, high = np.log(reference * 0.2), np.log(reference * 5.0)
    centre = None
    width = None
    for points in (241, 81, 81):
        if centre is None:
            grid = np.exp(np.linspace(low, high, points))[None, :].repeat(n_neurons, 0)
        else:
            grid = np.exp(centre[:, None] + np.linspace(-1.0, 1.0, points)[None, :] * width[:, None])
        loss = loss_of_tau(grid)
        best = np.argmin(np.where(np.isfinite(loss), loss, np.inf), axis=1)
        step = np.log(grid[:, 1] / grid[:, 0])
        centre = np.log(grid[np.arange(n_neurons), best])
        width = 2.0 * step
    return np.exp(centre)


def _log_spread(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Variance over the last axis of log(values) where valid."""
    logs = np.where(valid & (values > 0), np.log(np.where(values > 0, values, 1.0)), 0.0)
    count = valid.sum(axis=-1)
    mean = logs.sum(axis=-1) / np.maximum(count, 1)
    var = (np.where(valid, (logs - mean[..., None]) ** 2, 0.0)).sum(axis=-1) / np.maximum(count, 1)
    return np.where(count >= MIN_LEVELS, var, np.nan), mean


def _lowest_spiking(times: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Per neuron the lowest level at which every repeat spiked (NaN if none)."""
    spikes = np.all(np.isfinite(times), axis=0)  # (levels, n)
    first = np.argmax(spikes, axis=0)
    return np.where(spikes.any(axis=0), levels[first], np.nan)


def measure_neurons(chip: ChipInstance, repeats: int = 48, seed: int = 0) -> Dict[str, np.ndarray]:
    """Per-neuron tau_mem, tau_syn (chip µs) and weight scale s, fitted from spike times.

    Each probe first scans coarsely for the neuron's firing limit, then measures at levels
    just above it (where the spike time carries most information) up to several times it.
    NaN where a neuron did not spike at enough probe levels (dead, or far off).
    """
    rng = np.random.default_rng([chip.chip_seed, 0xCA1, seed])
    n = chip.config.n_neurons
    ref = chip.config.calibration_tau_us
    # 1. tau_mem from the offset-current probe
    coarse = np.exp(np.linspace(np.log(0.3), np.log(8.0), 28))
    limit = _lowest_spiking(chip.measure_dc_response(coarse, 4, rng), coarse)
    levels = np.nan_to_num(limit, nan=1.0)[None, :] * DC_FACTORS[:, None]  # (levels, n)
    t_dc = _mean_finite(chip.measure_dc_response(levels, repeats, rng))  # (levels, n)
    valid_dc = (np.isfinite(t_dc) & np.isfinite(limit)[None, :]).T  # (n, levels)
    t_dc_n = np.nan_to_num(t_dc.T)
    levels_n = levels.T

    def dc_loss(tau):  # tau (n, G)
        rho = levels_n[:, None, :] * -np.expm1(-t_dc_n[:, None, :] / tau[:, :, None])
        return _log_spread(rho, valid_dc[:, None, :])[0]

    tau_mem = _grid_fit(dc_loss, ref, n)
    tau_mem = np.where(valid_dc.sum(axis=1) >= MIN_LEVELS, tau_mem, np.nan)
    # 2. tau_syn and the weight scale from the synaptic probe
    resolution = chip.config.weight_resolution or 30.0
    max_total = SYNAPSE_ROWS * chip.config.max_weight_int
    coarse_ints = np.unique(np.round(np.exp(np.linspace(np.log(1.0 * resolution), np.log(max_total), 30))))
    limit_ints = _lowest_spiking(chip.measure_synaptic_response(coarse_ints, SYNAPSE_ROWS, 4, rng), coarse_ints)
    ints = np.clip(np.round(np.nan_to_num(limit_ints, nan=max_total)[None, :] * SYNAPSE_FACTORS[:, None]),
                   1, max_total)
    amplitude = ints.T / resolution  # (n, levels) programmed amplitude, model units
    t_syn = _mean_finite(chip.measure_synaptic_response(ints, SYNAPSE_ROWS, repeats, rng))
    valid_syn = (np.isfinite(t_syn).T & np.isfinite(tau_mem)[:, None] & np.isfinite(limit_ints)[:, None]
                 & (ints.T < max_total))
    t_syn_n = np.nan_to_num(t_syn.T)
    tau_mem_safe = np.nan_to_num(tau_mem, nan=ref)

    def scale_per_level(tau):  # -> (n, G, levels)
        k = _stable_kernel(t_syn_n[:, None, :], tau[:, :, None], tau_mem_safe[:, None, None])
        with np.errstate(divide="ignore"):
            return 1.0 / (amplitude[:, None, :] * k)

    def syn_loss(tau):
        return _log_spread(scale_per_level(tau), valid_syn[:, None, :])[0]

    tau_syn = _grid_fit(syn_loss, ref, n)
    spread, log_scale = _log_spread(scale_per_level(tau_syn[:, None]), valid_syn[:, None, :])
    ok = np.isfinite(spread[:, 0]) & np.isfinite(tau_mem)
    return {
        "tau_mem_us": np.where(ok, tau_mem, np.nan),
        "tau_syn_us": np.where(ok, tau_syn, np.nan),
        "weight_scale": np.where(ok, np.exp(log_scale[:, 0]), np.nan),
    }


def relative_spread(measured: Dict[str, np.ndarray], reference_tau_us: float) -> Dict[str, float]:
    """Standard deviation (over measurable neurons) of tau_mem, tau_syn relative to the
    operating point and of the weight scale, plus the weight scale's mean offset."""
    tm = measured["tau_mem_us"] / reference_tau_us
    ts = measured["tau_syn_us"] / reference_tau_us
    s = measured["weight_scale"]
    return {"tau_mem": float(np.nanstd(tm)), "tau_syn": float(np.nanstd(ts)),
            "weight_scale": float(np.nanstd(s)), "weight_scale_mean": float(np.nanmean(s)),
            "measurable_fraction": float(np.mean(np.isfinite(s)))}


@dataclass
class Calibration:
    chip_seed: int
    config_key: str
    trims: Dict[str, np.ndarray]
    calibratable: np.ndarray  # bool per neuron
    measured_before: Dict[str, np.ndarray]

    def save(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"trim_{k}": v for k, v in self.trims.items()}
        arrays.update({f"measured_{k}": v for k, v in self.measured_before.items()})
        meta = json.dumps({"chip_seed": self.chip_seed, "config_key": self.config_key,
                           "format_version": FORMAT_VERSION})
        # a temporary file of its own (two processes may calibrate the same chip at once),
        # renamed into place: nobody reads half a file
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem + ".", suffix=".tmp.npz")
        try:
            with os.fdopen(handle, "wb") as file:
                np.savez(file, calibratable=self.calibratable, meta=np.array(meta), **arrays)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
        return path

    @classmethod
    def load(cls, path, chip_seed: Optional[int] = None, config: Optional[ChipConfig] = None) -> "Calibration":
        with np.load(Path(path), allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            trims = {name: data[f"trim_{name}"].copy() for name in TRIM_NAMES}
            measured = {k[len("measured_"):]: data[k].copy() for k in data.files if k.startswith("measured_")}
            calibratable = data["calibratable"].copy()
        if chip_seed is not None and meta["chip_seed"] != chip_seed:
            raise ValueError(f"calibration file {path} is for chip_seed {meta['chip_seed']}, not {chip_seed}")
        if config is not None and meta["config_key"] != config_key(config):
            raise ValueError(
                f"calibration file {path} was made for a different chip configuration "
                f"(key {meta['config_key']}, expected {config_key(config)}); recalibrate"
            )
        return cls(meta["chip_seed"], meta["config_key"], trims, calibratable, measured)


def _quantise_trim(value: np.ndarray, config: ChipConfig):
    low, high = config.trim_range
    finite = np.isfinite(value)
    in_range = finite & (value >= low) & (value <= high)
    step = config.trim_step
    coded = np.exp(np.round(np.log(np.where(in_range, value, 1.0)) / step) * step)
    return np.where(in_range, coded, 1.0), in_range


def calibrate(chip: ChipInstance, repeats: int = 48, seed: int = 0) -> Calibration:
    """Measure the untrimmed chip, compute trims, load them into the chip, return them."""
    chip.clear_trims()
    measured = measure_neurons(chip, repeats=repeats, seed=seed)
    ref = chip.config.calibration_tau_us
    trim_m, ok_m = _quantise_trim(ref / measured["tau_mem_us"], chip.config)
    trim_s, ok_s = _quantise_trim(ref / measured["tau_syn_us"], chip.config)
    trim_c, ok_c = _quantise_trim(measured["weight_scale"], chip.config)
    calibration = Calibration(
        chip.chip_seed, config_key(chip.config),
        {"threshold": trim_c, "tau_mem": trim_m, "tau_syn": trim_s},
        ok_m & ok_s & ok_c, measured,
    )
    chip.set_trims(calibration.trims)
    return calibration


def needs_calibration(config: ChipConfig) -> bool:
    """False when the chip has no fixed-pattern spread and no dead circuits (nothing to
    calibrate, nothing to find: dead circuits are found by the calibration's measurement,
    so placement avoids them)."""
    spreads = (config.threshold_spread, config.leak_spread, config.tau_mem_spread, config.tau_syn_spread,
               config.column_gain_spread, config.calibrated_threshold_offset,
               config.calibrated_threshold_spread, config.calibrated_tau_spread, config.dead_fraction)
    return any(s > 0 for s in spreads)


def load_or_calibrate(chip: ChipInstance, cache_dir=None, mode: str = "auto") -> Optional[Calibration]:
    """mode "auto": load the cached calibration of this chip or measure and save it;
    "fresh": always measure and save; "none": leave the chip uncalibrated; any other string
    or a Path: load that file."""
    if mode in ("none", None, False):
        chip.clear_trims()
        return None
    if mode in ("auto", "fresh", True):
        path = cache_path(cache_dir or default_cache_dir(), chip.chip_seed, chip.config)
        if mode != "fresh" and path.exists():
            try:
                calibration = Calibration.load(path, chip.chip_seed, chip.config)
            except (OSError, ValueError, KeyError) as error:  # damaged or foreign: measure again
                warnings.warn(f"calibration cache {path} is unusable ({error}); recalibrating",
                              RuntimeWarning, stacklevel=2)
            else:
                chip.set_trims(calibration.trims)
                return calibration
        calibration = calibrate(chip)
        calibration.save(path)
        return calibration
    calibration = Calibration.load(mode, chip.chip_seed, chip.config)
    chip.set_trims(calibration.trims)
    return calibration
