"""Recorder of the pynn_ttfs backend: reads the segment results kept by the simulator
state and hands them to PyNN's neo output code.

* ``spikes``: absolute spike times (ms) -- a LIF neuron's first spike of every trial, a
  SpikeSourceArray's given times up to the current time.
* ``v``: membrane potential in mV on the sampling grid (default ``timestep``) including
  t = 0: the closed-form free potential before the neuron's spike, ``v_reset`` after it
  until the trial ends, ``v_rest`` at every trial start.
"""
from __future__ import annotations

import neo
import numpy as np
import quantities as pq
from pyNN import recording
from pyNN.recording import filter_by_variables

from . import simulator


class Recorder(recording.Recorder):
    _simulator = simulator

    def _record(self, variable, new_ids, sampling_interval=None):
        if variable.location is not None:
            raise ValueError("pynn_ttfs neurons are single-compartment: record without locations")
        if variable.name != "spikes" and sampling_interval is not None:
            if not sampling_interval > 0:
                raise ValueError(f"sampling_interval must be > 0 ms, got {sampling_interval}")
            self.sampling_interval = float(sampling_interval)

    def _start_time(self) -> float:
        return float(pq.Quantity(self._recording_start_time, pq.ms).magnitude)

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
        t_start = self._start_time()
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
        first_row = int(round(self._start_time() / interval))
        n_rows = int(np.floor(state.t / interval + 1e-9)) + 1 - first_row
        if values is None:  # nothing computed yet (no run): the neurons rest
            v_rest = self.population._native_array("v_rest")[index]
            return np.tile(v_rest, (max(n_rows, 1), 1)), None
        rows = values[first_row:first_row + n_rows]
        return rows[:, index], None

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
        pass

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
