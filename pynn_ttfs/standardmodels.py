"""Standard models of the pynn_ttfs backend.

Available:

* :class:`IF_curr_exp_ttfs` -- the analytic time-to-first-spike LIF neuron (current-based,
  exponential synapses) with IF_curr_exp's parameter names and PyNN units. It fires at
  most once per trial and starts every trial from rest.
* :class:`SpikeSourceArray` -- spike times given in ms (validated).
* :class:`StaticSynapse` -- weight (nA, signed) and delay (ms, >= 0).

Every other standard model PyNN defines (IF_curr_exp, IF_cond_exp, Poisson sources,
current sources, STDP, ...) cannot be simulated exactly by this backend; it is a
:class:`pyNN.standardmodels.ModelNotAvailable`, so a script using it fails at once with a
clear message instead of running a different model.
"""
from __future__ import annotations

from typing import Dict, Mapping

import numpy as np
from pyNN import errors
from pyNN.parameters import Sequence
from pyNN.standardmodels import (
    ModelNotAvailable,
    StandardCellType,
    build_translations,
    cells as base_cells,
    electrodes as base_electrodes,
    receptors as base_receptors,
    synapses as base_synapses,
)

from .simulator import state

#: relative tolerance of the tau ratio checks (tau_m / tau_syn in {1, 2}, tau_syn_E == tau_syn_I)
TAU_RATIO_RTOL = 1e-9
SUPPORTED_RATIOS_TEXT = (
    "supported: tau_syn_E == tau_syn_I and tau_m == tau_syn or tau_m == 2 * tau_syn "
    f"(relative tolerance {TAU_RATIO_RTOL:g})"
)


def _identity_translations(names):
    return build_translations(*[(name, name) for name in names])


def _close(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a - b) <= TAU_RATIO_RTOL * np.maximum(np.abs(a), np.abs(b))


def _first_bad(mask: np.ndarray, values: np.ndarray) -> str:
    index = int(np.flatnonzero(mask)[0])
    return f"{values.ravel()[index]!r} (neuron index {index})" if values.size > 1 else repr(
        values.ravel()[0].item())


def check_ttfs_parameters(params: Mapping[str, object]) -> None:
    """Raise InvalidParameterValueError unless ``params`` (names -> scalars or arrays, PyNN
    units) describe valid IF_curr_exp_ttfs neurons. Missing names are not checked."""
    p = {name: np.asarray(value, dtype=float) for name, value in params.items()}
    for name, value in p.items():
        if not np.all(np.isfinite(value)):
            raise errors.InvalidParameterValueError(
                f"IF_curr_exp_ttfs parameter {name} must be finite, got {_first_bad(~np.isfinite(value), value)}")
    for name in ("cm", "tau_m", "tau_syn_E", "tau_syn_I"):
        if name in p and np.any(p[name] <= 0):
            raise errors.InvalidParameterValueError(
                f"IF_curr_exp_ttfs parameter {name} must be > 0, got {_first_bad(p[name] <= 0, p[name])}")
    if "tau_refrac" in p and np.any(p["tau_refrac"] < 0):
        raise errors.InvalidParameterValueError(
            f"IF_curr_exp_ttfs parameter tau_refrac must be >= 0, got "
            f"{_first_bad(p['tau_refrac'] < 0, p['tau_refrac'])}")
    if "i_offset" in p and np.any(p["i_offset"] != 0):
        raise errors.InvalidParameterValueError(
            "IF_curr_exp_ttfs parameter i_offset must be 0 nA (the closed-form first-spike time "
            f"has no offset current), got {_first_bad(p['i_offset'] != 0, p['i_offset'])}")
    if "v_thresh" in p and "v_rest" in p:
        bad = ~(p["v_thresh"] > p["v_rest"])
        if np.any(bad):
            index = int(np.flatnonzero(np.broadcast_to(bad, np.broadcast(p["v_thresh"], p["v_rest"]).shape))[0])
            raise errors.InvalidParameterValueError(
                "IF_curr_exp_ttfs parameter v_thresh must be > v_rest, got v_thresh="
                f"{np.broadcast_to(p['v_thresh'], bad.shape).ravel()[index]} <= v_rest="
                f"{np.broadcast_to(p['v_rest'], bad.shape).ravel()[index]} (neuron index {index})")
    if "tau_syn_E" in p and "tau_syn_I" in p:
        bad = ~_close(p["tau_syn_E"], p["tau_syn_I"])
        if np.any(bad):
            raise errors.InvalidParameterValueError(
                "IF_curr_exp_ttfs parameters tau_syn_E and tau_syn_I must be equal, got tau_syn_E="
                f"{np.broadcast_to(p['tau_syn_E'], bad.shape).ravel()[np.flatnonzero(bad)[0]]}, tau_syn_I="
                f"{np.broadcast_to(p['tau_syn_I'], bad.shape).ravel()[np.flatnonzero(bad)[0]]}; "
                + SUPPORTED_RATIOS_TEXT)
    if "tau_m" in p and "tau_syn_E" in p:
        ratio_one = _close(p["tau_m"], p["tau_syn_E"])
        ratio_two = _close(p["tau_m"], 2.0 * p["tau_syn_E"])
        bad = ~(ratio_one | ratio_two)
        if np.any(bad):
            index = int(np.flatnonzero(bad)[0])
            tau_m = np.broadcast_to(p["tau_m"], bad.shape).ravel()[index]
            tau_syn = np.broadcast_to(p["tau_syn_E"], bad.shape).ravel()[index]
            raise errors.InvalidParameterValueError(
                f"IF_curr_exp_ttfs parameter tau_m={tau_m} ms with tau_syn={tau_syn} ms "
                f"(ratio {tau_m / tau_syn:g}) is not supported; " + SUPPORTED_RATIOS_TEXT)


def _plain_value(larr):
    """The value of a shape-less lazy array if it is a plain number/Sequence, else None."""
    if not larr.is_homogeneous or larr.operations:
        return None
    value = larr.base_value
    if isinstance(value, (Sequence, list, tuple, np.ndarray)) or np.isscalar(value):
        return value
    return None  # a RandomDistribution, a function of the index, ...


def _homogeneous_values(parameter_space) -> Dict[str, object]:
    """The parameters of a (shape-less) cell-type ParameterSpace that are single numbers."""
    values = {}
    for name in parameter_space.keys():
        value = _plain_value(parameter_space[name])
        if value is not None and np.ndim(value) == 0 and not isinstance(value, Sequence):
            values[name] = float(value)
    return values


class IF_curr_exp_ttfs(StandardCellType):
    """Analytic time-to-first-spike LIF neuron (current-based, exponential synaptic currents).

    Same parameter names and units as PyNN's IF_curr_exp; every trial starts from rest
    (v = v_rest, no synaptic current) and the neuron fires at most once per trial (its
    first threshold crossing, computed in closed form; no reset dynamics are simulated).

    Constraints (InvalidParameterValueError otherwise, at construction and at set()):
    tau_syn_E == tau_syn_I and tau_m == tau_syn or tau_m == 2 * tau_syn (relative
    tolerance 1e-9), cm, tau_m, tau_syn > 0, v_thresh > v_rest, i_offset == 0.
    Defaults are IF_curr_exp's except tau_m = 5 ms (= tau_syn_E = tau_syn_I = 5 ms, the
    Lambert-W case), because IF_curr_exp's tau_m = 20 ms is not a supported ratio.
    v_reset only shapes the recorded trace (held after the spike until the trial ends);
    tau_refrac is accepted (>= 0) and has no effect (one spike per trial).
    Receptor types excitatory and inhibitory behave identically (equal time constants):
    the sign of the weight decides.
    """

    default_parameters = {
        "v_rest": -65.0,  # mV
        "cm": 1.0,  # nF
        "tau_m": 5.0,  # ms (IF_curr_exp: 20; here equal to tau_syn)
        "tau_refrac": 0.1,  # ms, no effect
        "tau_syn_E": 5.0,  # ms
        "tau_syn_I": 5.0,  # ms
        "i_offset": 0.0,  # nA, must stay 0
        "v_reset": -65.0,  # mV, trace after the spike
        "v_thresh": -50.0,  # mV
    }
    recordable = ["spikes", "v"]
    conductance_based = False
    receptor_types = ("excitatory", "inhibitory")
    default_initial_values = {"v": -65.0, "isyn_exc": 0.0, "isyn_inh": 0.0}
    units = {
        "v": "mV", "isyn_exc": "nA", "isyn_inh": "nA", "v_rest": "mV", "cm": "nF",
        "tau_m": "ms", "tau_refrac": "ms", "tau_syn_E": "ms", "tau_syn_I": "ms",
        "i_offset": "nA", "v_reset": "mV", "v_thresh": "mV",
    }
    # native names equal the standard names (PyNN units are the substrate's units)
    translations = _identity_translations(default_parameters)

    def __init__(self, **parameters):
        super().__init__(**parameters)
        check_ttfs_parameters(_homogeneous_values(self.parameter_space))

    @staticmethod
    def validate_arrays(params: Mapping[str, np.ndarray]) -> None:
        check_ttfs_parameters(params)


def check_spike_times(times, where: str = "") -> np.ndarray:
    """Spike times (ms) of one source as a float array; sorted, finite and >= 0, else
    InvalidParameterValueError."""
    values = np.asarray(times.value if isinstance(times, Sequence) else times, dtype=float).ravel()
    if values.size:
        if not np.all(np.isfinite(values)):
            raise errors.InvalidParameterValueError(
                f"SpikeSourceArray spike_times{where} must be finite (ms), got {values[~np.isfinite(values)][0]}")
        if np.any(values < 0):
            raise errors.InvalidParameterValueError(
                f"SpikeSourceArray spike_times{where} must be >= 0 ms, got {values[values < 0][0]}")
        if np.any(np.diff(values) < 0):
            raise errors.InvalidParameterValueError(
                f"SpikeSourceArray spike_times{where} must be sorted in increasing order, got {values}")
    return values


class SpikeSourceArray(base_cells.SpikeSourceArray):
    __doc__ = base_cells.SpikeSourceArray.__doc__
    translations = build_translations(("spike_times", "spike_times"))

    def __init__(self, **parameters):
        given = parameters.get("spike_times")
        if isinstance(given, np.ndarray) and given.ndim == 2 and given.dtype != object:
            # PyNN's parameter space fails on it with a TypeError that names nothing
            raise ValueError(
                f"spike_times as a {given.shape} array: give one Sequence per cell, e.g. "
                f"spike_times=[Sequence(row) for row in times] (pyNN.parameters.Sequence), "
                f"or one list for all cells")
        super().__init__(**parameters)
        value = _plain_value(self.parameter_space["spike_times"])
        if isinstance(value, Sequence) or (value is not None and np.ndim(value) == 1
                                           and np.asarray(value).dtype != object):
            check_spike_times(value)


def check_weights_finite(weights, projection) -> None:
    """Connector-time check: weights are finite numbers (nA); any sign is allowed, also
    mixed signs on one projection (tau_syn_E == tau_syn_I, so the sign decides)."""
    if not np.all(np.isfinite(np.asarray(weights, dtype=float))):
        raise errors.ConnectionError(f"weight must be a finite number (nA), got {weights}")


def check_delays_valid(delays, projection) -> None:
    """Connector-time check: delays are finite and >= 0 ms (they shift arrival times exactly)."""
    values = np.asarray(delays, dtype=float)
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise errors.ConnectionError(f"delay must be finite and >= 0 ms, got {delays}")


class StaticSynapse(base_synapses.StaticSynapse):
    __doc__ = base_synapses.StaticSynapse.__doc__
    translations = build_translations(("weight", "weight"), ("delay", "delay"))
    parameter_checks = {"weight": check_weights_finite, "delay": check_delays_valid}

    def _get_minimum_delay(self):
        return state.min_delay


# --- everything else PyNN standardises is not available ------------------------------

AVAILABLE_MODELS = ("IF_curr_exp_ttfs", "SpikeSourceArray", "StaticSynapse")


class _NotAvailable(ModelNotAvailable):
    def __init__(self, *args, **kwargs):
        raise NotImplementedError(
            f"The {self.__class__.__name__} model is not available for this simulator "
            "(pynn_ttfs simulates only exact time-to-first-spike networks: "
            f"{', '.join(AVAILABLE_MODELS)})."
        )


_UNAVAILABLE = []
for _module in (base_cells, base_synapses, base_electrodes, base_receptors):
    for _name, _obj in list(vars(_module).items()):
        if (isinstance(_obj, type) and _obj.__module__ == _module.__name__
                and not _name.startswith("_") and _name not in AVAILABLE_MODELS
                and _name not in ("Section", "HasSections")):
            globals()[_name] = type(_name, (_NotAvailable,), {"__doc__": "Not available in pynn_ttfs."})
            _UNAVAILABLE.append(_name)

__all__ = list(AVAILABLE_MODELS) + _UNAVAILABLE
