"""Trials: how a batch of samples goes through ONE ``sim.run()``.

A batch of ``n_trials`` samples is laid out in time, one after the other: trial ``k``
occupies ``[k * trial_duration, (k + 1) * trial_duration)`` ms of the segment, and its
input spikes are the sample's spike times shifted by ``k * trial_duration``. Each trial
starts from rest and only the first spike of every neuron within the trial matters.

pynn_ttfs (``sim.setup(trial_duration=D)``) knows the boundaries and computes every trial
independently with the closed form, so a trial's result equals the isolated single-trial
result exactly (``trial_duration=None``: the whole segment is one trial). "Exactly" is
bit-for-bit given the trial's relative input times as float64 recovers them,
``(t + k D) - k D``, which may differ from ``t`` by one ulp of ``k D``;
``pynn_ttfs.trial_first_spike_times(pop)`` returns the per-trial times as computed, with
no absolute-time round trip. A spike at
exactly a boundary belongs to the trial that starts there; a neuron whose first spike
would come after its trial's end is silent in that trial.

The helpers here are backend-agnostic (no pynn_ttfs state), so the same script runs on
``pyNN.nest`` too. NEST has no trial boundaries; there the layout makes trials independent:

* every input and every first spike of interest lies in an *active window* ``W`` ms at
  the start of the trial;
* ``IF_curr_exp`` with ``v_reset = v_rest`` and a refractory period
  ``tau_refrac = W + G`` clamps a neuron after its first spike until its inputs have
  decayed, so it fires at most once per trial;
* the trial lasts ``2 W + G`` ms, with a silent gap ``G >= 20 max(tau_syn, tau_m)`` so that
  synaptic currents and membrane potentials are back at rest (residual < exp(-10)) when
  the next trial starts.

:func:`nest_trial_layout` returns ``trial_duration`` and ``tau_refrac`` for this layout and
:func:`nest_cell_parameters` the IF_curr_exp parameters equivalent to given
IF_curr_exp_ttfs parameters. Use the same ``trial_duration`` on pynn_ttfs for identical
scripts.
"""
from __future__ import annotations

import math
import numbers
from typing import Dict, Mapping, Optional

import numpy as np
import quantities as pq
from pyNN.parameters import Sequence

#: gap after the active window, in units of max(tau_syn, tau_m)
DECAY_GAP_TAUS = 20.0


def spike_times_for_trials(times, trial_duration: float, t_offset: float = 0.0):
    """SpikeSourceArray ``spike_times`` (one :class:`Sequence` per source) for a batch.

    ``times``: array (n_trials, n_sources) -- or (n_trials, n_sources, k) for several
    spikes per source and trial -- of spike times in ms relative to the trial start,
    ``inf`` = no spike. Every finite time must lie in ``[0, trial_duration)``.
    ``t_offset``: absolute time (ms) of the first trial's start (e.g. ``sim.get_current_time()``).
    Use as ``sources.set(spike_times=spike_times_for_trials(x, D))``.
    """
    if not (isinstance(t_offset, numbers.Real) and math.isfinite(t_offset) and t_offset >= 0):
        raise ValueError(f"t_offset must be a finite time >= 0 ms, got {t_offset!r}")
    values = np.asarray(times, dtype=float)
    if values.ndim == 2:
        values = values[:, :, None]
    if values.ndim != 3:
        raise ValueError(f"times must have shape (n_trials, n_sources[, k]), got {np.shape(times)}")
    if not trial_duration > 0:
        raise ValueError(f"trial_duration must be > 0 ms, got {trial_duration}")
    if np.any(np.isnan(values)):
        raise ValueError("times must not contain NaN (use inf for 'no spike')")
    finite = np.isfinite(values)
    if np.any(values[finite] < 0) or np.any(values[finite] >= trial_duration):
        raise ValueError(f"finite times must lie in [0, trial_duration={trial_duration}) ms, got "
                         f"range [{values[finite].min()}, {values[finite].max()}]")
    if np.any(values == -np.inf):
        raise ValueError("times must not be -inf")
    n_trials, n_sources, _ = values.shape
    starts = t_offset + trial_duration * np.arange(n_trials)
    absolute = values + starts[:, None, None]  # (trials, sources, k)
    result = []
    for j in range(n_sources):
        column = absolute[:, j, :].ravel()
        result.append(Sequence(np.sort(column[np.isfinite(column)])))
    return result


def _spiketrains(data) -> list:
    """The SpikeTrains of a neo Block (first segment), Segment, SpikeTrainList or list."""
    if hasattr(data, "segments"):
        if not data.segments:
            return []
        data = data.segments[-1] if len(data.segments) else data
    if hasattr(data, "spiketrains"):
        data = data.spiketrains
    return list(data)


_MS_PER_UNIT: Dict[str, float] = {}


def _in_ms(train) -> np.ndarray:
    """A SpikeTrain's times in ms. quantities parses a unit and hashes dimensionalities on
    every ``rescale`` (~0.2 ms per train, most of a chip batch's read-back), so the factor
    is looked up by the unit's name."""
    unit = train.dimensionality.string
    factor = _MS_PER_UNIT.get(unit)
    if factor is None:
        factor = float(pq.Quantity(1.0, unit).rescale(pq.ms).magnitude)
        _MS_PER_UNIT[unit] = factor
    return np.asarray(train.magnitude, dtype=float) * factor


def first_spike_times(data, n_trials: int, trial_duration: float, n_neurons: Optional[int] = None,
                      t_start: float = 0.0) -> np.ndarray:
    """(n_trials, n_neurons) first spike time of every neuron in every trial, in ms relative
    to the trial start, ``inf`` = silent.

    ``data``: ``population.get_data("spikes")`` (a neo Block: its last segment is used), a
    Segment, or its spiketrains. Neurons are identified by the ``source_index`` annotation
    (PyNN sets it), else by position. ``t_start``: absolute start of the first trial (ms).
    """
    if not (isinstance(n_trials, (int, np.integer)) and not isinstance(n_trials, bool)
            and n_trials >= 0):
        raise ValueError(f"n_trials must be an integer >= 0, got {n_trials!r}")
    if not (np.isfinite(trial_duration) and trial_duration > 0):
        raise ValueError(f"trial_duration must be a finite number > 0 ms, got {trial_duration}")
    if not np.isfinite(t_start):
        raise ValueError(f"t_start must be a finite number of ms, got {t_start}")
    trains = _spiketrains(data)
    indices = []
    for position, train in enumerate(trains):
        index = train.annotations.get("source_index", position)
        indices.append(int(np.asarray(index).ravel()[0]))
    if n_neurons is None:
        n_neurons = (max(indices) + 1) if indices else 0
    out = np.full((n_trials, n_neurons), np.inf)
    for index, train in zip(indices, trains):
        if index >= n_neurons:
            raise ValueError(f"spike train of neuron {index} does not fit n_neurons={n_neurons}")
        times = _in_ms(train) - t_start
        trial = np.floor(times / trial_duration + 1e-9).astype(np.int64)
        rel = times - trial * trial_duration
        ok = (trial >= 0) & (trial < n_trials)
        trial, rel = trial[ok], np.maximum(rel[ok], 0.0)
        column = np.full(n_trials, np.inf)
        np.minimum.at(column, trial, rel)
        out[:, index] = column
    return out


def nest_trial_layout(active_window: float, tau_syn: float, tau_m: float,
                      gap: Optional[float] = None) -> Dict[str, float]:
    """``trial_duration`` and ``tau_refrac`` (ms) that make NEST's IF_curr_exp trials
    independent and single-spike: tau_refrac = W + G, trial_duration = 2 W + G, with
    G = ``gap`` or 20 max(tau_syn, tau_m)."""
    values = np.asarray([active_window, tau_syn, tau_m], dtype=float)
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError("active_window, tau_syn and tau_m must be finite and > 0 ms, got "
                         f"{active_window}, {tau_syn}, {tau_m}")
    min_gap = DECAY_GAP_TAUS * max(float(np.max(tau_syn)), float(np.max(tau_m)))
    gap = min_gap if gap is None else float(gap)
    if not (math.isfinite(gap) and gap >= min_gap):
        raise ValueError(f"gap must be >= {DECAY_GAP_TAUS:g} max(tau_syn, tau_m) = {min_gap} ms "
                         f"for currents to decay between trials, got {gap}")
    return {"trial_duration": 2 * active_window + gap, "tau_refrac": active_window + gap}


_TTFS_DEFAULTS = {"v_rest": -65.0, "cm": 1.0, "tau_m": 5.0, "tau_syn_E": 5.0, "tau_syn_I": 5.0,
                  "v_thresh": -50.0}


def nest_cell_parameters(ttfs_parameters: Mapping[str, float], active_window: float,
                         gap: Optional[float] = None) -> Dict[str, float]:
    """IF_curr_exp parameters equivalent to IF_curr_exp_ttfs ``ttfs_parameters`` (missing
    ones take IF_curr_exp_ttfs's defaults) under the layout of :func:`nest_trial_layout`:
    same v_rest, cm, tau_m, tau_syn_E/I, v_thresh; v_reset = v_rest; i_offset = 0;
    tau_refrac = W + G."""
    params = dict(_TTFS_DEFAULTS)
    params.update({k: v for k, v in ttfs_parameters.items() if k in _TTFS_DEFAULTS})
    layout = nest_trial_layout(active_window, params["tau_syn_E"], params["tau_m"], gap)
    params.update(v_reset=params["v_rest"], i_offset=0.0, tau_refrac=layout["tau_refrac"])
    return params


__all__ = ["spike_times_for_trials", "first_spike_times", "nest_trial_layout",
           "nest_cell_parameters", "DECAY_GAP_TAUS"]
