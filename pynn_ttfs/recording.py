"""Recorder of the pynn_ttfs backend: reads the segment results kept by the simulator
state and hands them to PyNN's neo output code.

* ``spikes``: absolute spike times (ms) -- a LIF neuron's first spike of every trial, a
  SpikeSourceArray's given times up to the current time.
* ``v``: membrane potential in mV on the sampling grid (default ``timestep``) including
  t = 0: the closed-form free potential before the neuron's spike, ``v_reset`` after it
  until the trial ends, ``v_rest`` at every trial start. Samples of time that was run
  before v was recorded (or before its sampling interval last changed) are NaN: nothing
  was computed for them.

Spikes and v start where recording of that variable started (``record()`` after a run
returns nothing from before), or where ``get_data(clear=True)`` last cleared.
``record(None)`` stops recording and, as on NEST, drops what was recorded and not yet
retrieved: recording again starts afresh (v samples before it are NaN).
"""
from __future__ import annotations

import math

import neo
import numpy as np
import quantities as pq
from pyNN import recording
from pyNN.recording import filter_by_variables

from . import simulator


class Recorder(recording.Recorder):
    _simulator = simulator

    def record(self, variables, ids, sampling_interval=None, locations=None):
        # checked before PyNN marks the variables as recorded, so a refused interval
        # leaves the recording as it was
        if sampling_interval is not None and not (
                isinstance(sampling_interval, (int, float, np.integer, np.floating))
                and sampling_interval > 0 and math.isfinite(sampling_interval)):
            raise ValueError(f"sampling_interval must be a finite number > 0 ms, got "
                             f"{sampling_interval!r}")
        super().record(variables, ids, sampling_interval, locations)

    def _record(self, variable, new_ids, sampling_interval=None):
        if variable.location is not None:
            raise ValueError("pynn_ttfs neurons are single-compartment: record without locations")
        if variable.name != "spikes" and sampling_interval is not None:
            if not (sampling_interval > 0 and math.isfinite(sampling_interval)):
                raise ValueError(f"sampling_interval must be a finite number > 0 ms, got "
                                 f"{sampling_interval}")
            self.sampling_interval = float(sampling_interval)
        # a variable recorded from now on has no data from before now
        starts = self.__dict__.setdefault("_variable_start", {})
        if new_ids and variable.name not in starts:
            starts[variable.name] = float(self._simulator.state.t)

    def _start_time(self, variable_name=None) -> float:
        """Where the returned data start (ms): the segment's recording start, or later where
        ``variable_name`` was first recorded later."""
        start = float(pq.Quantity(self._recording_start_time, pq.ms).magnitude)
        if variable_name is not None:
            start = max(start, self.__dict__.get("_variable_start", {}).get(variable_name, start))
        return start

    def _first_v_row(self) -> int:
        """Index of the first v sample on the grid at or after the recording start."""
        interval = float(self.sampling_interval)
        return int(math.ceil(self._start_time() / interval - 1e-9))

    def _indices(self, ids) -> np.ndarray:
        ids = np.asarray([int(i) for i in ids], dtype=np.int64)
        return ids - int(self.population.first_id)

    def _spike_events(self, ids):
        """(id array, time array) of the recorded spikes of ``ids`` in [start, t]."""
        state = self._simulator.state
        pop = self.population
        ids = np.asarray(sorted(int(i) for i in ids), dtype=np.int64)
        if ids.size == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        index = ids - int(pop.first_id)
        t_start = self._start_time("spikes")
        if pop._parameters.get("spike_times") is not None:  # SpikeSourceArray
            neuron, times = state.results.source_spikes.get(pop, (np.zeros(0, np.int64), np.zeros(0)))
            wanted = np.zeros(pop.size, bool)
            wanted[index] = True
            keep = wanted[neuron] & (times >= t_start - 1e-9)
            neuron, times = neuron[keep], times[keep]
        else:
            spikes = state.results.spike_times.get(pop)
            if spikes is None:
                return np.zeros(0, dtype=np.int64), np.zeros(0)
            block = spikes[:, index]  # (trials, n_ids)
            trial, column = np.nonzero(np.isfinite(block) & (block >= t_start - 1e-9))
            neuron, times = index[column], block[trial, column]
        order = np.lexsort((times, neuron))
        return neuron[order] + int(pop.first_id), np.array(times[order], dtype=float)

    def _get_spiketimes(self, ids, clear=False):
        return self._spike_events(ids)

    def _get_all_signals(self, variable, ids, clear=False):
        if variable.name != "v":
            raise ValueError(f"pynn_ttfs cannot record {variable.name!r} (only spikes, v)")
        state = self._simulator.state
        index = self._indices(ids)
        if index.size == 0:
            return np.array([]), None
        values = state.results.v.get(self.population)
        interval = float(self.sampling_interval)
        first_row = self._first_v_row()
        n_rows = max(int(np.floor(state.t / interval + 1e-9)) + 1 - first_row, 0)
        stored_interval = state.results.v_interval.get(self.population)
        if values is not None and not math.isclose(stored_interval, interval):
            values = None  # stored at another sampling interval: nothing on this grid yet
        if values is None:
            if state.t == 0:  # no time has passed: the neurons rest
                v_rest = self.population._native_array("v_rest")[index]
                return np.tile(v_rest, (n_rows, 1)), None
            return np.full((n_rows, index.size), np.nan), None  # run, but not computed
        rows = np.full((n_rows, values.shape[1]), np.nan)
        available = values[first_row:first_row + n_rows]
        rows[:available.shape[0]] = available
        # samples before v was first recorded were not computed for this recording
        v_start = self._start_time("v")
        before = (first_row + np.arange(n_rows)) * interval < v_start - 1e-9
        rows[before] = np.nan
        return rows[:, index], None

    def _get_current_segment(self, filter_ids=None, variables="all", clear=False):
        segment = super()._get_current_segment(filter_ids=filter_ids, variables=variables,
                                               clear=clear)
        # PyNN starts the signal at the recording start; its first sample is the grid
        # point at or after it
        grid_start = self._first_v_row() * float(self.sampling_interval) * pq.ms
        for signal in segment.analogsignals:
            signal.t_start = grid_start
        return segment

    def store_to_cache(self, annotations=None):
        """Keep the segment at reset(). PyNN's version drops it whenever get(clear=True)
        came since the last reset, losing what was recorded after that call; here it is kept
        whenever time has passed since the recording (re)started."""
        if self._simulator.state.t > self._start_time() + 1e-12:
            segment = self._get_current_segment()
            segment.annotate(**(annotations or {}))
            self.cache.store(segment)
        self.clear_flag = False
        self._recording_start_time = 0.0 * pq.ms
        self.__dict__.get("_variable_start", {}).clear()  # a new segment records from t = 0

    def _local_count(self, variable, filter_ids=None):
        ids = sorted(self.filter_recorded(variable, filter_ids))
        counts = {int(i): 0 for i in ids}
        if variable.name == "spikes":
            neuron_ids, _ = self._spike_events(ids)
            found, n = np.unique(neuron_ids, return_counts=True)
            counts.update({int(i): int(c) for i, c in zip(found, n)})
        return counts

    def _clear_simulator(self):
        pass  # results stay in the state; _recording_start_time filters what is returned

    def _reset(self):
        # record(None): a variable recorded again starts at that time, as if new (nothing
        # from before the stop, nothing from the time it was off)
        self.__dict__.get("_variable_start", {}).clear()

    def get(self, variables, gather=False, filter_ids=None, clear=False,
            annotations=None, locations=None):
        """Recorded data as a neo Block; unlike the base class also works before run()."""
        data = neo.Block()
        localized = "all" if variables == "all" else self._localize_variables(variables, locations)
        data.segments = [filter_by_variables(segment, localized) for segment in self.cache]
        if self._simulator.state.running or not data.segments:
            data.segments.append(self._get_current_segment(
                filter_ids=filter_ids, variables=localized, clear=clear))
        for segment in data.segments:
            segment.block = data
        data.name = self.population.label
        data.description = self.population.describe()
        data.rec_datetime = data.segments[0].rec_datetime
        data.annotate(**self.metadata)
        if annotations:
            data.annotate(**annotations)
        if clear:
            self.clear()
        return data
