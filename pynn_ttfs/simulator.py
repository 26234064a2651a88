"""Simulator state of the pynn_ttfs backend: compiles the PyNN network into a
``NetworkGraph``, runs it on the substrate trial by trial, and keeps the results of the
current segment for the recorders.

Time model (see :mod:`pynn_ttfs.trials`): a segment (from t = 0 to the next ``reset()``)
is cut into trials of ``trial_duration`` ms (``None``: the whole segment is one trial).
Each trial starts from rest; its result is the closed-form first-spike time of every
neuron given the source spikes inside that trial. ``run_until(t)`` computes only the
trials that overlap the new interval ``[t_old, t)``, so results already recorded never
change (``run(x + y)`` equals ``run(x); run(y)``). Weights or parameters changed between
two runs inside one trial apply to the rest of that trial as if they had held since its
start; spikes already recorded stay. SpikeSourceArray spikes are delivered (and
recorded) when a run covers them; setting new ``spike_times`` changes only the future.
Populations are the nodes of the graph: a projection between two views of the same
population counts as recurrent (use separate populations for layers).
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional

import numpy as np
from pyNN import common

from .backends.graph import LIF, SOURCE, NetworkGraph, TrialInput

name = "pynn_ttfs"

# Tolerance (ms) when comparing times with trial boundaries and sample grids.
_TIME_EPS = 1e-9
#: guards against runs whose arrays could not be allocated (a typo in a duration or a
#: sampling interval): ~1.6 GB of float64 v samples, 10^7 trials per run() call
MAX_V_SAMPLES_PER_RUN = 2 * 10 ** 8
MAX_TRIALS_PER_RUN = 10 ** 7


class ID(int, common.IDMixin):
    def __init__(self, n):
        int.__init__(n)
        common.IDMixin.__init__(self)


class SegmentResults:
    """What has been computed in the current segment, up to ``t_done`` (ms)."""

    def __init__(self):
        self.t_done = 0.0
        # population -> (n_trials, size) absolute first-spike times (ms), inf = none yet
        self.spike_times: Dict[object, np.ndarray] = {}
        # population -> (n_trials, size) the same, relative to each trial's start, as computed
        self.trial_spike_times: Dict[object, np.ndarray] = {}
        # population -> (n_samples, size) membrane potential (mV) on its sampling grid
        self.v: Dict[object, np.ndarray] = {}
        self.v_interval: Dict[object, float] = {}
        # spike source -> (neuron index array, time array) of the spikes delivered so far
        self.source_spikes: Dict[object, tuple] = {}

    _FIELDS = ("spike_times", "trial_spike_times", "v", "v_interval", "source_spikes")

    def snapshot(self) -> dict:
        """The stored results, to restore after a failed run (the values are replaced,
        never changed in place, so shallow copies suffice)."""
        return {name: dict(getattr(self, name)) for name in self._FIELDS} | {"t_done": self.t_done}

    def restore(self, saved: dict) -> None:
        for name in self._FIELDS:
            setattr(self, name, dict(saved[name]))
        self.t_done = saved["t_done"]

    def deliver_source_spikes(self, pop, t_old: float, tstop: float) -> None:
        """Commit the source's current spike times in [t_old, tstop): later changes of
        spike_times affect only the future."""
        index, times = pop._spike_arrays()
        keep = (times >= t_old - _TIME_EPS) & (times < tstop - _TIME_EPS)
        old_index, old_times = self.source_spikes.get(pop, (np.zeros(0, np.int64), np.zeros(0)))
        self.source_spikes[pop] = (np.concatenate([old_index, index[keep]]),
                                   np.concatenate([old_times, times[keep]]))


class State(common.control.BaseState):
    def __init__(self):
        common.control.BaseState.__init__(self)
        self.mpi_rank = 0
        self.num_processes = 1
        self.dt = 0.1
        self.min_delay = 0.1
        self.max_delay = math.inf
        self.min_delay_auto = False
        self.trial_duration: Optional[float] = None
        self.substrate = None
        self.substrate_name = "software"
        self.substrate_options: Dict[str, object] = {"device": "cpu", "dtype": "float64"}
        self.clear()

    # -- network bookkeeping -------------------------------------------------------
    def clear(self):
        self.recorders = set()
        self.populations: List[object] = []  # top-level Population objects, creation order
        self.projections: List[object] = []
        self.id_counter = 0
        self.segment_counter = -1
        self.write_on_end = []
        self.reset()

    def reset(self):
        """Back to t = 0 and a new segment; network and parameters are kept."""
        self.running = False
        self.t = 0.0
        self.t_start = 0.0
        self.segment_counter += 1
        self.results = SegmentResults()

    def register_population(self, population) -> None:
        self.populations.append(population)

    def register_projection(self, projection) -> None:
        self.projections.append(projection)

    def get_substrate(self):
        if self.substrate is None:
            from .backends import get_substrate
            self.substrate = get_substrate(self.substrate_name, **self.substrate_options)
        return self.substrate

    # -- index mapping -------------------------------------------------------------
    def locate_ids(self, ids: np.ndarray):
        """Global cell IDs -> (population position in self.populations, index within it)."""
        firsts = np.array([int(p.first_id) for p in self.populations], dtype=np.int64)
        order = np.argsort(firsts)
        ids = np.asarray(ids, dtype=np.int64)
        slot = np.searchsorted(firsts[order], ids, side="right") - 1
        pop_pos = order[slot]
        return pop_pos, ids - firsts[pop_pos]

    # -- graph -----------------------------------------------------------------------
    def graph_labels(self) -> Dict[object, str]:
        labels, used = {}, set()
        for i, pop in enumerate(self.populations):
            label, k = pop.label, i
            while label in used:  # a duplicate label gets a suffix no population uses
                label, k = f"{pop.label}#{k}", k + 1
            used.add(label)
            labels[pop] = label
        return labels

    def build_graph(self) -> NetworkGraph:
        """The network as a NetworkGraph (ms, nA, nF, mV); raises ValueError for cycles."""
        labels = self.graph_labels()
        graph = NetworkGraph()
        for pop in self.populations:
            graph.add_population(pop._population_spec(labels[pop]))
        for prj in self.projections:
            for spec in prj._projection_specs(labels):
                graph.add_projection(spec)
        graph.topological_order()  # a recurrent network fails here, before any work
        return graph

    # -- running -----------------------------------------------------------------------
    def run(self, simtime):
        self.run_until(self.t + simtime)

    def run_until(self, tstop):
        tstop = float(tstop)
        if not math.isfinite(tstop):  # NaN would pass every comparison and poison the clock
            raise ValueError(f"run time must be a finite number of ms, got tstop={tstop} "
                             f"(now t={self.t} ms)")
        if tstop < self.t:
            tstop = self.t  # build_run already rejected real steps back in time
        if self.trial_duration is not None and not self.trial_duration > 0:
            raise ValueError(f"trial_duration must be > 0 ms or None, got {self.trial_duration}")
        saved = self.results.snapshot()
        try:
            self._compute(self.t, tstop)
        except BaseException:
            # a run that fails (a chip over capacity, Ctrl-C) leaves the segment as it was,
            # so a retry delivers each input spike once
            self.results.restore(saved)
            raise
        if self.min_delay_auto:  # like NEST: the smallest delay in the network
            delays = [prj._delay[:len(prj)].min() for prj in self.projections if len(prj)]
            if delays:
                self.min_delay = float(min(delays))
        self.t = tstop
        self.results.t_done = tstop
        self.running = True

    def _trial_index(self, times: np.ndarray) -> np.ndarray:
        if self.trial_duration is None:
            return np.zeros(np.shape(times), dtype=np.int64)
        return np.floor(np.asarray(times) / self.trial_duration + _TIME_EPS).astype(np.int64)

    def _compute(self, t_old: float, tstop: float) -> None:
        graph = self.build_graph()  # checked also for run(0): a recurrent network fails
        if not tstop > t_old:
            # nothing to compute; v samples at t are added by the next run, which computes
            # them (stored now, they would stay v_rest)
            return
        labels = self.graph_labels()
        D = self.trial_duration
        if D is None:
            first, last = 0, 0
        else:
            first = int(math.floor(t_old / D + _TIME_EPS))
            last = max(int(math.ceil(tstop / D - _TIME_EPS)) - 1, first)
        n_new = last - first + 1
        if n_new > MAX_TRIALS_PER_RUN:  # before any allocation: it would not fit in memory
            raise ValueError(
                f"run to {tstop:g} ms would compute {n_new} trials of trial_duration {D:g} ms "
                f"at once, more than {MAX_TRIALS_PER_RUN}: run in shorter pieces "
                f"(results are the same), or lengthen trial_duration")
        trial_starts = np.zeros(1) if D is None else (np.arange(first, last + 1) * D)
        lif_pops = [p for p in self.populations if graph.populations[labels[p]].kind == LIF]
        v_pops = [p for p in lif_pops if p._records_v()]

        # v sample grid of this run, per recorded population
        samples = {}
        for pop in v_pops:
            interval = float(pop.recorder.sampling_interval)
            if pop in self.results.v and not math.isclose(self.results.v_interval[pop], interval):
                # the sampling interval changed: rows on the old grid cannot be continued
                # (the time already run on the new grid is NaN, like time run unrecorded)
                del self.results.v[pop]
            stored = self.results.v.get(pop)
            n_done = 0 if stored is None else stored.shape[0]
            n_total = int(math.floor(tstop / interval + _TIME_EPS)) + 1
            if (n_total - n_done) * pop.size > MAX_V_SAMPLES_PER_RUN:
                raise ValueError(
                    f"population {pop.label!r}: recording v every {interval:g} ms "
                    f"(sampling_interval) for {tstop - n_done * interval:g} ms would store "
                    f"{(n_total - n_done) * pop.size} values in this run, more than "
                    f"{MAX_V_SAMPLES_PER_RUN}: use a larger sampling_interval, record fewer "
                    f"cells or run in shorter pieces")
            abs_times = np.arange(n_done, n_total) * interval
            trial = self._trial_index(abs_times)
            rel = abs_times - (0.0 if D is None else trial * D)
            samples[pop] = (n_done, n_total, interval, trial, np.round(rel, 9))

        spikes_new: Dict[object, np.ndarray] = {}
        v_free: Dict[object, np.ndarray] = {}
        sources = [p for p in self.populations if graph.populations[labels[p]].kind == SOURCE]
        for pop in sources:
            self.results.deliver_source_spikes(pop, t_old, tstop)
        if lif_pops and tstop > t_old:
            if sources:
                trial_input = TrialInput({
                    labels[p]: p._trial_spikes(*self.results.source_spikes[p], first, n_new, D)
                    for p in sources})
                rel_all = (np.unique(np.concatenate([s[4] for s in samples.values()]))
                           if samples else None)
                result = self.get_substrate().run(
                    graph, trial_input,
                    sample_times_ms=rel_all,
                    record_v=[labels[p] for p in v_pops],
                )
                for pop in lif_pops:
                    spikes_new[pop] = np.asarray(result.first_spike_times[labels[pop]], dtype=float)
                    if pop in samples:
                        v_free[pop] = (rel_all, np.asarray(result.membrane_potential[labels[pop]]))
            else:  # no input can ever arrive: every neuron stays at rest, silent
                for pop in lif_pops:
                    spikes_new[pop] = np.full((n_new, pop.size), np.inf)

        for pop in lif_pops if tstop > t_old else []:
            self._merge_spikes(pop, first, spikes_new[pop], trial_starts, t_old, tstop, D)
        for pop in v_pops:
            self._append_v(pop, first, samples[pop], v_free.get(pop))

    def _merge_spikes(self, pop, first, new_rel, trial_starts, t_old, tstop, D) -> None:
        """Store the new trials' first spikes (relative to the trial start as computed, and
        absolute); a spike outside its trial or not before ``tstop`` is dropped."""
        new_rel = np.array(new_rel, dtype=float)
        new_abs = new_rel + trial_starts[:, None]
        drop = new_abs >= tstop - _TIME_EPS  # not yet: run_until(t) covers [t_old, t)
        if D is not None:
            drop |= new_rel >= D - _TIME_EPS  # after its trial's end
        n_new = new_rel.shape[0]
        stored_abs = self.results.spike_times.get(pop, np.full((0, pop.size), np.inf))
        stored_rel = self.results.trial_spike_times.get(pop, np.full((0, pop.size), np.inf))
        # the trial that straddles t_old: the past is fixed, and a spike before t_old is not
        # new (also for a population created since, which has no stored row to keep)
        drop[0] |= new_abs[0] < t_old - _TIME_EPS
        if stored_abs.shape[0] > first:
            old = np.isfinite(stored_abs[first])
            drop[0] |= old
        new_abs[drop] = np.inf
        new_rel[drop] = np.inf
        if stored_abs.shape[0] > first:
            new_abs[0] = np.where(old, stored_abs[first], new_abs[0])
            new_rel[0] = np.where(old, stored_rel[first], new_rel[0])
        keep = min(stored_abs.shape[0], first)
        merged_abs = np.full((first + n_new, pop.size), np.inf)
        merged_rel = np.full((first + n_new, pop.size), np.inf)
        merged_abs[:keep], merged_rel[:keep] = stored_abs[:keep], stored_rel[:keep]
        merged_abs[first:], merged_rel[first:] = new_abs, new_rel
        self.results.spike_times[pop] = merged_abs
        self.results.trial_spike_times[pop] = merged_rel

    def _append_v(self, pop, first, sample_info, free) -> None:
        """Append the new v samples (mV) of ``pop``: free potential before the spike,
        v_reset from the spike to the trial end, v_rest at trial starts. Samples of trials
        computed before v was recorded are NaN."""
        n_done, n_total, interval, trial, rel = sample_info
        params = pop._parameters
        v_rest = np.broadcast_to(np.asarray(params["v_rest"], float), (pop.size,))
        v_reset = np.broadcast_to(np.asarray(params["v_reset"], float), (pop.size,))
        new = np.empty((n_total - n_done, pop.size))
        new[:] = v_rest
        spikes = self.results.spike_times.get(pop, np.full((0, pop.size), np.inf))
        if new.shape[0] and free is not None:
            rel_all, potentials = free
            local_trial = trial - first
            inside = (local_trial >= 0) & (local_trial < potentials.shape[0])
            column = np.searchsorted(rel_all, rel)
            new[inside] = potentials[local_trial[inside], column[inside]]
            new[local_trial < 0] = np.nan
        if new.shape[0] and spikes.shape[0]:
            in_trial = trial < spikes.shape[0]  # a sample at tstop may open a new trial
            spike_abs = spikes[np.minimum(trial, spikes.shape[0] - 1)]  # (samples, size)
            abs_times = np.arange(n_done, n_total) * interval
            after = (abs_times[:, None] >= spike_abs - _TIME_EPS) & in_trial[:, None]
            new = np.where(after, v_reset[None, :], new)
        if new.shape[0] and self.trial_duration is not None:  # every trial starts at rest
            new[np.isclose(rel, 0.0, atol=_TIME_EPS)] = v_rest
        stored = self.results.v.get(pop)
        self.results.v[pop] = new if stored is None else np.concatenate([stored, new])
        self.results.v_interval[pop] = interval


def trial_first_spike_times(population) -> np.ndarray:
    """(n_trials, size) first-spike times (ms, relative to each trial's start, inf =
    silent) of IF_curr_exp_ttfs cells in the current segment, exactly as the substrate
    computed them (no absolute-time round trip): a Population, a PopulationView (its
    cells' columns) or an Assembly of them (its members' columns in the Assembly's order;
    a member created after the last run has silent rows)."""
    if isinstance(population, common.Assembly):
        parts = [_trial_columns(part) for part in population.populations]
        if not parts:
            return np.full((0, 0), np.inf)
        n_trials = max(part.shape[0] for part in parts)
        return np.concatenate([np.vstack([part, np.full((n_trials - part.shape[0], part.shape[1]),
                                                        np.inf)]) for part in parts], axis=1)
    return _trial_columns(population)


def _trial_columns(population) -> np.ndarray:
    from .standardmodels import IF_curr_exp_ttfs  # standardmodels imports this module
    accepted = ("trial_first_spike_times() takes a Population, PopulationView or Assembly of "
                "IF_curr_exp_ttfs cells")
    if not isinstance(population, (common.Population, common.PopulationView)):
        raise TypeError(f"{accepted}, got {type(population).__name__}")
    if not isinstance(population.celltype, IF_curr_exp_ttfs):
        raise TypeError(
            f"{accepted}; {population.label!r} has {type(population.celltype).__name__} cells "
            f"(a source's spikes: get_data('spikes'))")
    if isinstance(population, common.PopulationView):  # results are kept per Population
        root = population.grandparent
        columns = population.index_in_grandparent(np.arange(population.size))
    else:
        root, columns = population, slice(None)
    stored = state.results.trial_spike_times.get(root, np.full((0, root.size), np.inf))
    return stored[:, columns].copy()


state = State()
