"""The network graph: what the PyNN layer compiles a script into, and what substrates run.

Plain data (numpy arrays, floats), no PyNN and no torch: the PyNN layer builds it, a
substrate executes it. Units are PyNN's: times and time constants in ms, weights
(synaptic current amplitudes) in nA, capacitance in nF, potentials in mV.

Every trial starts from rest; a LIF population fires at most once per trial, so a trial's
result is one first-spike time per neuron (``inf`` = silent).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

SOURCE = "source"
LIF = "lif"


@dataclass
class PopulationSpec:
    """One population.

    ``kind`` is ``SOURCE`` (spike times supplied per trial) or ``LIF`` (an analytic
    first-spike neuron). For ``LIF`` populations ``params`` holds per-neuron float64
    arrays of length ``size`` with the keys ``tau_syn`` (ms), ``tau_m`` (ms),
    ``cm`` (nF), ``v_rest`` (mV) and ``v_thresh`` (mV).
    """

    label: str
    size: int
    kind: str
    params: Dict[str, np.ndarray] = field(default_factory=dict)

    def threshold_current(self) -> np.ndarray:
        """c = g_L * (v_thresh - v_rest) in nA, with g_L = cm / tau_m (µS)."""
        g_leak = self.params["cm"] / self.params["tau_m"]
        return g_leak * (self.params["v_thresh"] - self.params["v_rest"])


@dataclass
class ProjectionSpec:
    """Connections from ``pre`` to ``post`` stored as parallel arrays (one entry each)."""

    label: str
    pre: str
    post: str
    pre_index: np.ndarray  # int64, index within pre population
    post_index: np.ndarray  # int64, index within post population
    weight: np.ndarray  # float64, nA, signed
    delay: np.ndarray  # float64, ms, >= 0


@dataclass
class NetworkGraph:
    populations: Dict[str, PopulationSpec] = field(default_factory=dict)
    projections: List[ProjectionSpec] = field(default_factory=list)

    def add_population(self, spec: PopulationSpec) -> None:
        if spec.label in self.populations:
            raise ValueError(f"population label {spec.label!r} is used twice")
        self.populations[spec.label] = spec

    def add_projection(self, spec: ProjectionSpec) -> None:
        for end in (spec.pre, spec.post):
            if end not in self.populations:
                raise ValueError(f"projection {spec.label!r} refers to unknown population {end!r}")
        self.projections.append(spec)

    def incoming(self, label: str) -> List[ProjectionSpec]:
        return [p for p in self.projections if p.post == label]

    def topological_order(self) -> List[str]:
        """Population labels so that every projection goes from an earlier to a later one.

        Raises ValueError naming the cycle's populations for a recurrent network.
        """
        indegree = {label: 0 for label in self.populations}
        edges: Dict[str, set] = {label: set() for label in self.populations}
        for proj in self.projections:
            if proj.pre == proj.post:
                raise ValueError(
                    f"projection {proj.label!r} connects population {proj.pre!r} to itself: "
                    "recurrent networks are not supported (feed-forward DAGs only)"
                )
            if proj.post not in edges[proj.pre]:
                edges[proj.pre].add(proj.post)
                indegree[proj.post] += 1
        ready = [label for label, d in indegree.items() if d == 0]
        order = []
        while ready:
            label = ready.pop(0)
            order.append(label)
            for nxt in sorted(edges[label]):
                indegree[nxt] -= 1
                if indegree[nxt] == 0:
                    ready.append(nxt)
        if len(order) != len(self.populations):
            cyclic = sorted(label for label, d in indegree.items() if d > 0)
            raise ValueError(
                f"the projections between populations {cyclic} form a cycle: recurrent "
                "networks are not supported (feed-forward DAGs only)"
            )
        for proj in self.projections:
            if self.populations[proj.post].kind == SOURCE:
                raise ValueError(
                    f"projection {proj.label!r} targets spike source population {proj.post!r}"
                )
        return order


@dataclass
class TrialInput:
    """Spike times of every SOURCE population for a batch of trials.

    ``spikes[label]`` has shape (n_trials, size, max_spikes_per_trial), in ms relative to
    the trial start, padded with +inf.
    """

    spikes: Dict[str, np.ndarray]

    @property
    def n_trials(self) -> int:
        return next(iter(self.spikes.values())).shape[0] if self.spikes else 0


@dataclass
class TrialResult:
    """What a substrate returns: first-spike times (ms, relative to the trial start, inf =
    silent) of every LIF population, shape (n_trials, size), and, if requested, membrane
    potentials in mV at the requested sample times, shape (n_trials, n_samples, size)."""

    first_spike_times: Dict[str, np.ndarray]
    membrane_potential: Optional[Dict[str, np.ndarray]] = None
    # Substrate-specific figures (e.g. emulated chip time); free-form.
    info: Dict[str, float] = field(default_factory=dict)
