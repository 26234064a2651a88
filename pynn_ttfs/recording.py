"""Recorder of the pynn_ttfs backend: reads the segment results kept by the simulator
state and hands them to PyNN's neo output code.

* ``spikes``: absolute spike times (ms) -- a LIF neuron's first spike of every trial, a
  SpikeSourceArray's given times up to the current time.
* ``v``: membrane potential in mV on the sampling grid (default ``timestep``) including
  t = 0: the closed-form free potential before the neuron's spike, ``v_reset`` after it
  until the trial ends, ``v_rest`` at every trial start. Samples of time that was run
  before v was recorded (or before its sampling interval last changed) are NaN: nothing
  was computed for them.

Each cell's spikes and v start where recording of that variable started for that cell
(``record()`` after a run returns nothing from before; a spike train's ``t_start`` says
so), or where ``get_data(clear=True)`` last cleared, or at 0 in a segment after
``reset()``. ``record(None)`` stops recording and, as on NEST, drops what was recorded and
not yet retrieved: recording again starts afresh (v samples before it are NaN).

``get_data(clear=True)`` hides what it returned from later calls but frees no memory: the
simulator keeps every trial's first spikes (``trial_first_spike_times`` reads them) and v
until ``reset()``, so a long segment grows with its trials; ``reset()`` between batches, as
the training loop does, keeps the memory of each segment bounded.

``get_data()`` hands out copies: changing the returned block (``Assembly.get_data`` shifts
channel indices in place) never changes what a later call returns, and a view's block
holds only the view's cells in every segment, including those kept at ``reset()``.
"""
from __future__ import annotations

import copy
import importlib.util
import math
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Dict, Optional, Tuple

import neo
import numpy as np
import quantities as pq
from pyNN import errors, recording
from neo.core.spiketrainlist import SpikeTrainList
from pyNN.recording import Variable

from . import simulator


#: the file extensions pyNN.recording.get_io writes (at end()), and the package each needs
FILE_FORMATS = {".pkl": "neo", ".pickle": "neo", ".nix": "nixio", ".h5": "nixio",
                ".nwb": "pynwb", ".mat": "scipy"}


def check_to_file(to_file) -> None:
    """Refuse at record() time a file that end() could not write: PyNN's get_io fails only
    there, after the run, and the files after it in the list were not written either."""
    if not isinstance(to_file, str):
        return  # PyNN ignores anything else
    extension = os.path.splitext(to_file)[1]
    package = FILE_FORMATS.get(extension)
    if package is None:
        raise ValueError(f"to_file={to_file!r}: file extension {extension or '(none)'!r} is not "
                         f"supported; use one of {', '.join(FILE_FORMATS)}")
    if importlib.util.find_spec(package) is None:
        raise ValueError(f"to_file={to_file!r}: writing {extension} files needs the {package} "
                         f"package, which is not installed")


_V = Variable(name="v", location=None, label=None)
_SPIKES = Variable(name="spikes", location=None, label=None)
_RECORDABLE = ("spikes", "v")  # what any pynn_ttfs cell type records


class Recorder(recording.Recorder):
    _simulator = simulator

    def record(self, variables, ids, sampling_interval=None, locations=None):
        # checked before PyNN marks the variables as recorded, so a refused interval
        # leaves the recording as it was
        if sampling_interval is not None and not (
                isinstance(sampling_interval, (int, float, np.integer, np.floating))
                and not isinstance(sampling_interval, (bool, np.bool_))
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
        # a cell recorded from now on has no data from before now
        starts = self._cell_starts().setdefault(variable.name, {})
        now = float(self._simulator.state.t)
        for cell in new_ids:
            starts.setdefault(int(cell), now)

    def _cell_starts(self) -> Dict[str, Dict[int, float]]:
        """variable name -> {cell id: time (ms) its recording started in this segment}; a
        cell not listed records from the segment's start."""
        return self.__dict__.setdefault("_cell_start", {})

    def filter_recorded(self, variable, filter_ids):
        # PyNN's version indexes the defaultdict, marking an unrecorded variable as recorded
        recorded = self.recorded.get(variable, set())
        return recorded if filter_ids is None else set(filter_ids).intersection(recorded)

    def _start_time(self) -> float:
        """Where the segment's returned data start (ms): the recording start."""
        return float(pq.Quantity(self._recording_start_time, pq.ms).magnitude)

    def _cell_start_times(self, variable_name: str, ids) -> np.ndarray:
        """Per id, where its returned data of ``variable_name`` start (ms)."""
        start = self._start_time()
        starts = self._cell_starts().get(variable_name, {})
        return np.array([max(start, starts.get(int(i), start)) for i in ids], dtype=float)

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
        t_start = self._cell_start_times("spikes", ids)  # per id
        if pop._parameters.get("spike_times") is not None:  # SpikeSourceArray
            neuron, times = state.results.source_spikes.get(pop, (np.zeros(0, np.int64), np.zeros(0)))
            start_of = np.full(pop.size, np.inf)  # cells not asked for: nothing
            start_of[index] = t_start
            keep = times >= start_of[neuron] - 1e-9
            neuron, times = neuron[keep], times[keep]
        else:
            spikes = state.results.spike_times.get(pop)
            if spikes is None:
                return np.zeros(0, dtype=np.int64), np.zeros(0)
            block = spikes[:, index]  # (trials, n_ids)
            trial, column = np.nonzero(np.isfinite(block) & (block >= t_start[None, :] - 1e-9))
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
        rows = rows[:, index]
        # samples from before a cell's v was recorded were not computed for this recording
        grid = (first_row + np.arange(n_rows)) * interval
        rows[grid[:, None] < self._cell_start_times("v", ids)[None, :] - 1e-9] = np.nan
        return rows, None

    def _get_current_segment(self, filter_ids=None, variables="all", clear=False):
        names = None if variables == "all" else {v.name for v in variables}
        return self._segment(self._snapshot(names), filter_ids, variables)

    def _snapshot(self, names=None) -> "_Snapshot":
        """What the current segment recorded so far of the variables ``names`` (None: all),
        as plain arrays (ms, mV)."""
        state = self._simulator.state

        def recorded_ids(variable):
            if names is not None and variable.name not in names:
                return np.zeros(0, np.int64)  # not asked for: not computed
            return np.array(sorted(int(i) for i in self.filter_recorded(variable, None)), np.int64)

        spike_ids, v_ids = recorded_ids(_SPIKES), recorded_ids(_V)
        v_rows = self._get_all_signals(_V, v_ids)[0] if v_ids.size else None
        return _Snapshot(
            name="segment%03d" % state.segment_counter,
            rec_datetime=datetime.now(),
            t_stop=float(state.t),
            spike_ids=spike_ids,
            spike_starts=self._cell_start_times("spikes", spike_ids),
            spike_events=self._spike_events(spike_ids),
            v_ids=v_ids,
            v_rows=v_rows,
            # the first v sample is the grid point at or after the recording start
            v_t_start=self._first_v_row() * float(self.sampling_interval),
            v_interval=float(self.sampling_interval),
        )

    def _segment(self, snapshot: "_Snapshot", filter_ids, variables) -> neo.Segment:
        """A new neo Segment of ``snapshot``: only the cells ``filter_ids`` (all if None) and
        the ``variables`` ("all" or PyNN Variables); every call builds fresh objects, so a
        caller may change them (Assembly.get_data shifts channel indices in place)."""
        pop = self.population
        names = None if variables == "all" else {v.name for v in variables}
        wanted = None if filter_ids is None else np.array(sorted(int(i) for i in filter_ids), np.int64)
        segment = neo.Segment(name=snapshot.name, description=pop.describe(),
                              rec_datetime=snapshot.rec_datetime)
        segment.annotate(**copy.deepcopy(snapshot.annotations))
        def kept(ids):
            return np.ones(ids.size, bool) if wanted is None else np.isin(ids, wanted)

        if snapshot.spike_ids.size and (names is None or "spikes" in names):
            keep = kept(snapshot.spike_ids)
            ids, starts = snapshot.spike_ids[keep], snapshot.spike_starts[keep]
            if ids.size:
                event_ids, times = snapshot.spike_events
                chosen = np.isin(event_ids, ids) & (times <= snapshot.t_stop + 1e-9)
                segment_start = float(starts.min())
                trains = SpikeTrainList.from_spike_time_array(
                    pq.Quantity(times[chosen].copy(), pq.ms), event_ids[chosen].copy(), ids,
                    t_stop=snapshot.t_stop * pq.ms, units="ms",
                    t_start=min(segment_start, float(times[chosen].min()) if chosen.any()
                                else segment_start) * pq.ms,
                    source_population=pop.label, source_index=pop.id_to_index(ids))
                if np.any(starts > segment_start + 1e-12):
                    # a cell recorded later than others: its train starts where it was
                    items = list(trains)
                    for train, start in zip(items, starts):
                        first = float(train.magnitude.min()) if len(train) else np.inf
                        train.t_start = min(start, first) * pq.ms
                    trains = SpikeTrainList(items=items)
                segment.spiketrains = trains
                trains.segment = segment
        if snapshot.v_ids.size and (names is None or "v" in names):
            keep = kept(snapshot.v_ids)
            if keep.any():
                ids = snapshot.v_ids[keep]
                signal = neo.AnalogSignal(
                    snapshot.v_rows[:, keep].copy(), units=pop.find_units(_V),
                    t_start=snapshot.v_t_start * pq.ms,
                    sampling_period=snapshot.v_interval * pq.ms, name="v", channel_ids=ids,
                    source_population=pop.label,
                    array_annotations={"channel_index": np.asarray(pop.id_to_index(ids))})
                signal.segment = segment
                segment.analogsignals.append(signal)
        return segment

    def store_to_cache(self, annotations=None):
        """Keep the segment at reset(). PyNN's version drops it whenever get(clear=True)
        came since the last reset, losing what was recorded after that call; here it is kept
        whenever time has passed since the recording (re)started."""
        if self._simulator.state.t > self._start_time() + 1e-12:
            snapshot = self._snapshot()
            snapshot.annotations = dict(annotations or {})
            self.cache.store(snapshot)
        self.clear_flag = False
        self._recording_start_time = 0.0 * pq.ms
        self._cell_starts().clear()  # a new segment records every recorded cell from t = 0

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
        # record(None): a cell recorded again starts at that time, as if new (nothing
        # from before the stop, nothing from the time it was off)
        self._cell_starts().clear()

    def get(self, variables, gather=False, filter_ids=None, clear=False,
            annotations=None, locations=None):
        """Recorded data as a neo Block; unlike the base class also works before run()."""
        data = neo.Block()
        localized = "all" if variables == "all" else self._localize_variables(variables, locations)
        for variable in ([] if localized == "all" else localized):
            # a typo ("spike", "V") would return nothing; a variable another of this
            # backend's cell types records (v of an Assembly's source) returns no data
            if variable.name not in _RECORDABLE:
                raise errors.RecordingError(variable.name, self.population.celltype)
        # built afresh from the stored arrays: the caller may change them (Assembly.get_data
        # does) without touching what a later call returns
        data.segments = [self._segment(snapshot, filter_ids, localized) for snapshot in self.cache]
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



@dataclass
class _Snapshot:
    """A segment's recorded data as arrays: spikes of ``spike_ids`` (their recording start
    per cell, events as (id array, time array)), v rows (samples, ``v_ids``)."""
    name: str
    rec_datetime: datetime
    t_stop: float
    spike_ids: np.ndarray
    spike_starts: np.ndarray
    spike_events: Tuple[np.ndarray, np.ndarray]
    v_ids: np.ndarray
    v_rows: Optional[np.ndarray]
    v_t_start: float
    v_interval: float
    annotations: Dict = field(default_factory=dict)
