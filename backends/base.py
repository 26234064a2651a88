"""The one small interface every substrate implements."""
from __future__ import annotations

import abc
from typing import Dict, Optional, Sequence

import numpy as np

from .graph import NetworkGraph, TrialInput, TrialResult


class Substrate(abc.ABC):
    """Executes a compiled feed-forward :class:`NetworkGraph` for a batch of trials.

    A substrate is stateless with respect to the graph: ``run`` receives the whole graph
    each time, so weights changed through PyNN between runs take effect. Substrates may
    cache per-graph preprocessing keyed on ``id(graph)`` plus a version counter.
    """

    #: short name, e.g. "software" or "bss2"
    name: str = "abstract"

    @abc.abstractmethod
    def run(
        self,
        graph: NetworkGraph,
        trial_input: TrialInput,
        sample_times_ms: Optional[np.ndarray] = None,
        record_v: Sequence[str] = (),
    ) -> TrialResult:
        """Run ``trial_input.n_trials`` independent trials, each starting from rest.

        ``sample_times_ms``: times (relative to the trial start) at which to return the
        membrane potential of the LIF populations named in ``record_v``.
        """

    def describe(self) -> Dict[str, object]:
        """Human-readable facts about the substrate (device, dtype, chip seed, ...)."""
        return {"name": self.name}

    def random_state(self) -> Optional[object]:
        """The state of the substrate's own random numbers (trial-to-trial noise), picklable,
        so that a checkpointed run continues with the same noise; None: it draws none."""
        return None

    def set_random_state(self, state: Optional[object]) -> None:
        """Restore what :meth:`random_state` returned."""
        if state is not None:
            raise ValueError(f"substrate {self.name!r} draws no random numbers, so it cannot "
                             f"take a random state (got one saved from another substrate?)")
