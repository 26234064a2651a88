"""Runs a NetworkGraph on the exact closed-form engine, all trials of a batch at once."""
from __future__ import annotations

import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from pynn_ttfs.engine import membrane_potential, solve_first_spike_times
from pynn_ttfs.engine.neuron import layer_parameters

from ..base import Substrate
from ..graph import LIF, SOURCE, NetworkGraph, PopulationSpec, TrialInput, TrialResult

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_device(device: str) -> torch.device:
    if device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but torch sees no CUDA device")
    return torch.device(device)


def resolve_dtype(dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype) and dtype in _DTYPES.values():
        return dtype
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return _DTYPES[dtype]


#: more distinct delays than this in one projection get a warning (see compile_layer_inputs)
MANY_DELAYS = 64


def compile_layer_inputs(
    graph: NetworkGraph,
    label: str,
    event_times: Dict[str, torch.Tensor],
    dtype: torch.dtype,
    device: torch.device,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """The input events of population ``label`` as one layer: times (trials, n_events) and
    weights (n_events, size).

    ``event_times[pre]`` holds each presynaptic neuron's spikes (trials, n_pre, k), +inf
    padded. A delay shifts the arrival exactly: connections are grouped by delay value and
    each group becomes its own block of input columns (t + delay) with a dense weight block.
    Several connections between the same pair with the same delay add up.
    """
    post = graph.populations[label]
    time_blocks: List[torch.Tensor] = []
    weight_blocks: List[torch.Tensor] = []
    for proj in graph.incoming(label):
        pre_times = event_times[proj.pre]  # (trials, n_pre, k)
        if proj.weight.size == 0:
            continue
        delays = np.unique(proj.delay)
        if delays.size > MANY_DELAYS:
            warnings.warn(
                f"projection {proj.label!r} has {delays.size} distinct delays: each becomes its "
                f"own block of input events with a dense weight block over the {post.size} "
                "target neurons, so time and memory grow with their number; delays rounded "
                "to a grid (e.g. the timestep) share blocks", RuntimeWarning, stacklevel=2)
        for delay in delays:
            in_group = proj.delay == delay
            pre_index = proj.pre_index[in_group]
            used_pre, local_pre = np.unique(pre_index, return_inverse=True)
            dense = np.zeros((used_pre.size, post.size), dtype=np.float64)
            np.add.at(dense, (local_pre, proj.post_index[in_group]), proj.weight[in_group])
            times = pre_times[:, torch.as_tensor(used_pre, device=device)] + float(delay)
            spikes_per_neuron = times.shape[2]
            # (trials, used_pre, k) -> (trials, used_pre * k); each spike gets its neuron's row
            time_blocks.append(times.reshape(times.shape[0], -1))
            w = torch.as_tensor(dense, dtype=dtype, device=device)
            weight_blocks.append(w.repeat_interleave(spikes_per_neuron, dim=0))
    n_trials = next(iter(event_times.values())).shape[0] if event_times else 0
    if not time_blocks:
        return (torch.full((n_trials, 0), float("inf"), dtype=dtype, device=device),
                torch.zeros((0, post.size), dtype=dtype, device=device))
    return torch.cat(time_blocks, dim=1), torch.cat(weight_blocks, dim=0)


def source_events(trial_input: TrialInput, pop: PopulationSpec, dtype: torch.dtype,
                  device: torch.device) -> torch.Tensor:
    """A SOURCE population's spikes (trials, size, k) as a tensor; +inf if none supplied."""
    spikes = trial_input.spikes.get(pop.label)
    if spikes is None:
        spikes = np.full((trial_input.n_trials, pop.size, 1), np.inf)
    return torch.as_tensor(spikes, dtype=dtype, device=device)


class SoftwareSubstrate(Substrate):
    """Exact closed-form first-spike times; float64 by default."""

    name = "software"

    def __init__(self, device: str = "cpu", dtype="float64"):
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype)

    def describe(self):
        return {"name": self.name, "device": str(self.device), "dtype": str(self.dtype).replace("torch.", "")}

    # Hooks a derived substrate (the BSS-2 emulation) may override.
    def layer_parameters(self, pop: PopulationSpec):
        like = torch.zeros((), dtype=self.dtype, device=self.device)
        return layer_parameters(
            torch.as_tensor(pop.params["tau_syn"], dtype=self.dtype),
            torch.as_tensor(pop.params["tau_m"], dtype=self.dtype),
            torch.as_tensor(pop.threshold_current(), dtype=self.dtype),
            pop.size, like,
        )

    def run(
        self,
        graph: NetworkGraph,
        trial_input: TrialInput,
        sample_times_ms: Optional[np.ndarray] = None,
        record_v: Sequence[str] = (),
    ) -> TrialResult:
        order = graph.topological_order()
        events: Dict[str, torch.Tensor] = {}
        first_spikes: Dict[str, np.ndarray] = {}
        potentials: Dict[str, np.ndarray] = {}
        for label in order:
            pop = graph.populations[label]
            if pop.kind == SOURCE:
                events[label] = source_events(trial_input, pop, self.dtype, self.device)
                continue
            if pop.kind != LIF:
                raise ValueError(f"population {label!r} has unknown kind {pop.kind!r}")
            times, weights = compile_layer_inputs(graph, label, events, self.dtype, self.device)
            params = self.layer_parameters(pop)
            out = solve_first_spike_times(times, weights, params)
            events[label] = out.unsqueeze(2)
            first_spikes[label] = out.double().cpu().numpy()
            if label in record_v and sample_times_ms is not None:
                v = membrane_potential(
                    times, weights,
                    torch.as_tensor(sample_times_ms, dtype=self.dtype, device=self.device),
                    params.tau_syn, params.tau_mem,
                )
                g_leak = pop.params["cm"] / pop.params["tau_m"]
                potentials[label] = pop.params["v_rest"] + v.double().cpu().numpy() / g_leak
        return TrialResult(first_spikes, potentials if record_v else None)
