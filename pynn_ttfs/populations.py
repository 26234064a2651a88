"""Population, PopulationView and Assembly of the pynn_ttfs backend.

Parameters are held per population as numpy arrays under their native names (equal to
the PyNN names, in PyNN units). Every change goes through the cell type's validation
first, so an invalid value (say an unsupported tau ratio) raises
InvalidParameterValueError and leaves the population unchanged.
"""
from __future__ import annotations

import numpy as np
from pyNN import common, errors
# PyNN's own LazyArray: its per-cell get/set_initial_value assert this type
from pyNN.parameters import LazyArray, ParameterSpace, Sequence, simplify
from pyNN.standardmodels import ModelNotAvailable, StandardCellType

from . import simulator
from .backends.graph import LIF, SOURCE, PopulationSpec
from .recording import Recorder, check_to_file
from .standardmodels import IF_curr_exp_ttfs, SpikeSourceArray, check_spike_times


def _is_ttfs(celltype) -> bool:
    return isinstance(celltype, IF_curr_exp_ttfs)


def _is_source(celltype) -> bool:
    return isinstance(celltype, SpikeSourceArray)


def _validate(celltype, params: dict) -> None:
    """Raise InvalidParameterValueError unless ``params`` (name -> array) are valid.

    SpikeSourceArray: the spikes delivered so far stay as they were (PyNN semantics); new
    spike times must not lie before the current time (see ``_check_not_in_past``).
    """
    if _is_ttfs(celltype):
        IF_curr_exp_ttfs.validate_arrays(params)
    elif _is_source(celltype):
        for i, seq in enumerate(params["spike_times"]):
            check_spike_times(seq, where=f" of neuron {i}")


def _evaluate_or_raise(parameter_space) -> None:
    """Evaluate a ParameterSpace; values of the wrong type become InvalidParameterValueError
    naming the parameters (lazyarray raises a bare ValueError/TypeError)."""
    try:
        parameter_space.evaluate(simplify=False)
    except (ValueError, TypeError) as error:
        raise errors.InvalidParameterValueError(
            f"invalid value for parameter(s) {sorted(parameter_space.keys())}: {error}") from error


def _per_cell_length_error(pop, name: str, value, what: str = "parameter"):
    """None, or an InvalidDimensionsError naming ``name`` when ``value`` is a 1-D array of
    numbers whose length is not the population's (PyNN's own error names no parameter).
    SpikeSourceArray's spike_times take a list of numbers as one Sequence: not checked."""
    if name == "spike_times" or isinstance(value, (str, bytes, Sequence)) or callable(value):
        return None
    try:
        values = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None  # not numbers: the type check names it
    if values.ndim == 1 and values.shape[0] != pop.size:
        return errors.InvalidDimensionsError(
            f"{what} {name} got {values.shape[0]} values for {pop.size} cells; give one "
            f"value for all cells or one per cell")
    return None


def _check_lengths(pop, values: dict, what: str) -> None:
    for name, value in values.items():
        error = _per_cell_length_error(pop, name, value, what)
        if error is not None:
            raise error


def _shape_parameters(celltype, parameter_space, size: int) -> None:
    """Give the cell type's parameters the population's shape and evaluate them; a value
    of the wrong length or type becomes an InvalidParameterValueError naming the
    parameter (lazyarray's own errors name none). Evaluated once: a RandomDistribution
    draws its values there, as on every other backend."""
    try:
        parameter_space.shape = (size,)
        parameter_space.evaluate(simplify=False)
    except (ValueError, TypeError) as error:
        # only now, to name it: which parameter fails on its own (the run is refused anyway)
        for name in parameter_space.keys():
            larr = parameter_space[name]
            if isinstance(larr, np.ndarray):
                continue  # evaluate() already replaced it by its array: it is fine
            try:
                larr.shape = (size,)
                larr.evaluate(simplify=False)
            except (ValueError, TypeError) as own_error:
                error = own_error
                break
        else:
            name = ", ".join(sorted(parameter_space.keys()))
        raise errors.InvalidParameterValueError(
            f"{type(celltype).__name__} parameter {name} for {size} cells: {error} "
            f"(give one number for all cells or an array of {size})") from error


def _check_not_in_past(spike_time_sequences, now: float) -> None:
    """New SpikeSourceArray spike times before the current time could never be delivered:
    a clear error rather than a silent drop."""
    for i, seq in enumerate(spike_time_sequences):
        values = np.asarray(seq.value if isinstance(seq, Sequence) else seq, dtype=float).ravel()
        past = values[values < now - 1e-9]
        if past.size:
            raise errors.InvalidParameterValueError(
                f"SpikeSourceArray spike_times of neuron {i} contain {past[0]} ms, before the "
                f"current time {now} ms: spikes cannot be delivered in the past")


def _check_parameter_names(pop, parameter_names) -> None:
    """get() of a name the cell type lacks: PyNN's translation fails with a bare KeyError."""
    names = [parameter_names] if isinstance(parameter_names, str) else list(parameter_names)
    parts = pop.populations if isinstance(pop, common.Assembly) else [pop]
    for part in parts:
        celltype = part.celltype
        for name in names:
            if name not in celltype.get_parameter_names():
                raise errors.NonExistentParameterError(
                    name, type(celltype).__name__, celltype.get_parameter_names())


def _get_parameters(pop, names):
    """Standard parameters from the native ones (shared by Population and PopulationView)."""
    celltype = pop.celltype
    if isinstance(celltype, StandardCellType):
        if any(name in celltype.computed_parameters() for name in names):
            native_names = celltype.get_native_names()
        else:
            native_names = celltype.get_native_names(*names)
        return celltype.reverse_translate(pop._get_native_parameters(*native_names))
    return pop._get_native_parameters(*names)


def _check_initial_values(pop, variable, values: np.ndarray, v_rest: np.ndarray) -> None:
    if not _is_ttfs(pop.celltype):
        return
    if variable == "v":
        if not np.allclose(values, v_rest, rtol=0, atol=1e-9):
            raise errors.InvalidParameterValueError(
                "IF_curr_exp_ttfs starts every trial from rest: the initial value of v must "
                f"equal v_rest ({simplify(v_rest)} mV), got {simplify(values)} mV")
    elif variable in ("isyn_exc", "isyn_inh"):
        if np.any(values != 0):
            raise errors.InvalidParameterValueError(
                f"IF_curr_exp_ttfs starts every trial from rest: the initial value of "
                f"{variable} must be 0 nA, got {simplify(values)}")
    else:
        raise errors.InvalidParameterValueError(
            f"IF_curr_exp_ttfs has no state variable {variable!r} (v, isyn_exc, isyn_inh)")


class Assembly(common.Assembly):
    _simulator = simulator

    def record(self, variables, to_file=None, sampling_interval=None, locations=None):
        # PyNN's version has every member write to_file at end(), each one overwriting the
        # one before: the Assembly writes it once, with every member's data
        check_to_file(to_file)
        common.Assembly.record(self, variables, None, sampling_interval, locations=locations)
        if isinstance(to_file, str):
            simulator.state.write_on_end.append((self, variables, to_file))
    record.__doc__ = common.Assembly.record.__doc__

    def get(self, parameter_names, gather=False, simplify=True):
        _check_parameter_names(self, parameter_names)
        return common.Assembly.get(self, parameter_names, gather=gather, simplify=simplify)
    get.__doc__ = common.Assembly.get.__doc__


class PopulationView(common.PopulationView):
    _assembly_class = Assembly
    _simulator = simulator

    def set(self, **parameters):
        _check_lengths(self, parameters, "parameter")
        common.PopulationView.set(self, **parameters)
    set.__doc__ = common.PopulationView.set.__doc__

    def get(self, parameter_names, gather=False, simplify=True):
        _check_parameter_names(self, parameter_names)
        return common.PopulationView.get(self, parameter_names, gather=gather, simplify=simplify)
    get.__doc__ = common.PopulationView.get.__doc__

    def record(self, variables, to_file=None, sampling_interval=None, locations=None):
        check_to_file(to_file)  # before anything is recorded: a refused call changes nothing
        common.PopulationView.record(self, variables, to_file, sampling_interval, locations)
    record.__doc__ = common.PopulationView.record.__doc__

    def _get_parameters(self, *names):
        return _get_parameters(self, names)

    def _native_array(self, name) -> np.ndarray:
        return self.parent._native_array(name)[self.mask]

    def _get_native_parameters(self, *names):
        values = {name: simplify(self._native_array(name)) for name in names}
        return ParameterSpace(values, shape=(self.size,))

    def _set_parameters(self, parameter_space):
        _evaluate_or_raise(parameter_space)
        root, index = self.grandparent, self.index_in_grandparent(np.arange(self.size))
        root._assign_parameters({name: value for name, value in parameter_space.items()}, index)

    def _set_initial_value_array(self, variable, initial_values):
        root = self.grandparent
        index = self.index_in_grandparent(np.arange(self.size))
        values = np.broadcast_to(np.asarray(initial_values.evaluate(simplify=False), float), (self.size,))
        if _is_ttfs(root.celltype):
            _check_initial_values(self, variable, values, root._native_array("v_rest")[index])
        stored = root.initial_values.get(variable)
        full = (np.broadcast_to(np.asarray(stored.evaluate(simplify=False), float), (root.size,)).copy()
                if stored is not None else np.zeros(root.size))
        full[index] = values
        root.initial_values[variable] = LazyArray(full, shape=(root.size,), dtype=float)

    def initialize(self, **initial_values):
        # The base class stores into self.initial_values, which a view does not have.
        _check_lengths(self, initial_values, "initial value of")
        for variable, value in initial_values.items():
            self._set_initial_value_array(variable, LazyArray(value, shape=(self.size,), dtype=float))

    def _get_view(self, selector, label=None):
        return PopulationView(self, selector, label)


class Population(common.Population):
    __doc__ = common.Population.__doc__
    _simulator = simulator
    _recorder_class = Recorder
    _assembly_class = Assembly

    def __init__(self, size, cellclass, cellparams=None, structure=None, initial_values={},
                 label=None):
        if isinstance(cellclass, type) and issubclass(cellclass, ModelNotAvailable):
            cellclass(**(cellparams or {}))  # raises NotImplementedError naming the model
        if isinstance(size, (int, np.integer)) and not isinstance(size, bool) and size < 1:
            raise ValueError(f"size must be an integer >= 1 (cells), got {size}")
        self._constructing = True
        self._user_initial = set(initial_values)
        common.Population.__init__(self, size, cellclass, cellparams, structure,
                                   initial_values, label)
        self._constructing = False
        if _is_ttfs(self.celltype) and "v" not in initial_values:
            # the default initial v is v_rest (each trial starts from rest)
            self.initial_values["v"] = LazyArray(self._native_array("v_rest").copy(),
                                                 shape=(self.size,), dtype=float)

    # -- cells and parameters ---------------------------------------------------------
    def set(self, **parameters):
        _check_lengths(self, parameters, "parameter")
        common.Population.set(self, **parameters)
    set.__doc__ = common.Population.set.__doc__

    def get(self, parameter_names, gather=False, simplify=True):
        _check_parameter_names(self, parameter_names)
        return common.Population.get(self, parameter_names, gather=gather, simplify=simplify)
    get.__doc__ = common.Population.get.__doc__

    def record(self, variables, to_file=None, sampling_interval=None, locations=None):
        check_to_file(to_file)  # before anything is recorded: a refused call changes nothing
        common.Population.record(self, variables, to_file, sampling_interval, locations)
    record.__doc__ = common.Population.record.__doc__

    def initialize(self, **initial_values):
        _check_lengths(self, initial_values, "initial value of")
        common.Population.initialize(self, **initial_values)
    initialize.__doc__ = common.Population.initialize.__doc__

    def _create_cells(self):
        state = simulator.state
        id_range = np.arange(state.id_counter, state.id_counter + self.size)
        self.all_cells = np.array([simulator.ID(i) for i in id_range], dtype=simulator.ID)
        self._mask_local = np.ones((self.size,), bool)
        for cell in self.all_cells:
            cell.parent = self
        state.id_counter += self.size
        parameter_space = self.celltype.native_parameters
        _shape_parameters(self.celltype, parameter_space, self.size)
        params = {}
        for name, value in parameter_space.items():
            params[name] = self._as_array(name, value)
        _validate(self.celltype, params)
        if _is_source(self.celltype):
            _check_not_in_past(params["spike_times"], state.t)
        self._parameters = params
        self._version = 0
        state.register_population(self)

    def _as_array(self, name, value):
        if _is_source(self.celltype):
            out = np.empty(self.size, dtype=object)
            values = value if isinstance(value, np.ndarray) and value.dtype == object else [value] * self.size
            for i, seq in enumerate(values):
                out[i] = seq if isinstance(seq, Sequence) else Sequence(np.asarray(seq, float))
            return out
        return np.array(np.broadcast_to(np.asarray(value, dtype=float), (self.size,)))

    def _native_array(self, name) -> np.ndarray:
        return self._parameters[name]

    def _assign_parameters(self, values: dict, index=None) -> None:
        """Validate, then store native ``values`` (name -> array for ``index`` or all)."""
        candidate = dict(self._parameters)
        new_spike_times = None
        sl = slice(None) if index is None else index
        n = self.size if index is None else len(index)
        for name, value in values.items():
            if name not in candidate:
                raise errors.NonExistentParameterError(
                    name, self.celltype.__class__.__name__, self.celltype.get_parameter_names())
            new = candidate[name].copy()
            if _is_source(self.celltype):
                arr = np.empty(n, dtype=object)
                vals = value if isinstance(value, np.ndarray) and value.dtype == object else [value] * n
                for i, seq in enumerate(vals):
                    arr[i] = seq if isinstance(seq, Sequence) else Sequence(np.asarray(seq, float))
                new_spike_times = arr
                new[sl] = arr
            else:
                new[sl] = np.broadcast_to(np.asarray(value, dtype=float), (n,))
            candidate[name] = new
        _validate(self.celltype, candidate)
        if new_spike_times is not None:
            _check_not_in_past(new_spike_times, simulator.state.t)
        old_v_rest = self._parameters.get("v_rest")
        self._parameters = candidate
        self._version += 1
        if _is_ttfs(self.celltype) and "v_rest" in values and "v" in self.initial_values:
            # initial v follows v_rest where it was at rest before
            v0 = np.broadcast_to(np.asarray(self.initial_values["v"].evaluate(simplify=False), float),
                                 (self.size,)).copy()
            at_rest = np.isclose(v0, old_v_rest, rtol=0, atol=1e-9)
            v0[at_rest] = candidate["v_rest"][at_rest]
            self.initial_values["v"] = LazyArray(v0, shape=(self.size,), dtype=float)

    def _get_parameters(self, *names):
        return _get_parameters(self, names)

    def _get_native_parameters(self, *names):
        return ParameterSpace({name: simplify(self._parameters[name]) for name in names},
                              shape=(self.size,))

    def _set_parameters(self, parameter_space):
        _evaluate_or_raise(parameter_space)
        self._assign_parameters({name: value for name, value in parameter_space.items()})

    def _set_initial_value_array(self, variable, initial_values):
        if self._constructing and variable not in self._user_initial:
            return  # class defaults; v is replaced by v_rest after construction
        values = np.broadcast_to(np.asarray(initial_values.evaluate(simplify=False), float), (self.size,))
        if _is_ttfs(self.celltype):
            _check_initial_values(self, variable, values, self._native_array("v_rest"))

    def _set_cell_initial_value(self, id, variable, value):
        """``cell.set_initial_value(...)``: checked like ``initialize()`` (PyNN's version
        writes into the array unchecked)."""
        stored = self.initial_values.get(variable)
        full = (np.broadcast_to(np.asarray(stored.evaluate(simplify=False), float), (self.size,)).copy()
                if stored is not None else np.zeros(self.size))
        full[self.id_to_local_index(id)] = value
        if _is_ttfs(self.celltype):
            _check_initial_values(self, variable, full, self._native_array("v_rest"))
        self.initial_values[variable] = LazyArray(full, shape=(self.size,), dtype=float)

    def _get_view(self, selector, label=None):
        return PopulationView(self, selector, label)

    # -- what the simulator needs -----------------------------------------------------
    def _records_v(self) -> bool:
        from pyNN.recording import Variable
        return bool(self.recorder.recorded.get(Variable("v", None, None)))

    def _population_spec(self, label: str) -> PopulationSpec:
        if _is_ttfs(self.celltype):
            p = self._parameters
            return PopulationSpec(label, self.size, LIF, {
                "tau_syn": p["tau_syn_E"].astype(float), "tau_m": p["tau_m"].astype(float),
                "cm": p["cm"].astype(float), "v_rest": p["v_rest"].astype(float),
                "v_thresh": p["v_thresh"].astype(float),
            })
        if _is_source(self.celltype):
            return PopulationSpec(label, self.size, SOURCE)
        raise errors.InvalidModelError(f"pynn_ttfs cannot simulate cell type {self.celltype}")

    def _spike_arrays(self):
        """(neuron index array, time array) of all spike times of a SpikeSourceArray (ms)."""
        seqs = self._parameters["spike_times"]
        times = [np.asarray(s.value, float).ravel() for s in seqs]
        counts = np.array([t.size for t in times], dtype=np.int64)
        index = np.repeat(np.arange(self.size), counts)
        return index, (np.concatenate(times) if times else np.zeros(0))

    def _trial_spikes(self, index, times, first: int, n_trials: int, trial_duration) -> np.ndarray:
        """Delivered spikes (neuron ``index``, absolute ``times`` in ms) per trial relative to
        the trial start: (n_trials, size, k), inf padded."""
        if trial_duration is None:
            trial = np.zeros(times.shape, dtype=np.int64)
            rel = times
        else:
            trial = np.floor(times / trial_duration + 1e-9).astype(np.int64)
            rel = times - trial * trial_duration
            rel = np.where(rel < 0, 0.0, rel)  # times within 1e-9 ms below a boundary
            trial -= first
        keep = (trial >= 0) & (trial < n_trials)
        index, trial, rel = index[keep], trial[keep], rel[keep]
        key = trial * self.size + index
        order = np.lexsort((rel, key))
        key, rel, trial, index = key[order], rel[order], trial[order], index[order]
        position = np.arange(key.size) - np.searchsorted(key, key, side="left")
        width = int(position.max()) + 1 if position.size else 1
        out = np.full((n_trials, self.size, width), np.inf)
        out[trial, index, position] = rel
        return out
