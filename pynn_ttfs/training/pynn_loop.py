"""Training in the loop through ANY PyNN backend: the forward pass runs on the backend.

Given the ``sim`` module (``pynn_ttfs``, its BSS-2 emulation, ``pyNN.nest``...), the input
population (a ``SpikeSourceArray``) and the projections to train, :class:`PyNNNetwork`

* finds the layers from the projections' pre/post populations: a chain
  input -> layer 0 -> layer 1 -> ...; a size-1 ``SpikeSourceArray`` projecting into a layer
  is that layer's bias source (its spike time in each trial is the one set in the script);
  two projections between the same populations with receptor types "excitatory" and
  "inhibitory" are one signed weight matrix (positive part on the first, negative on the
  second), which is what backends with sign-bound receptors (NEST) need;
* reads the neuron parameters with ``Population.get`` and the weights and delays with
  ``Projection.get(format="array")``, and converts them to model units (time in tau_syn,
  weights in units of the layer's threshold current c = cm / tau_m (v_thresh - v_rest));
* runs a batch as consecutive trials of ``trial_duration`` ms in one ``sim.run`` (see
  :mod:`pynn_ttfs.trials`), reads each layer's first spike per trial from ``get_data()``;
  on pynn_ttfs the trials are the ones of ``sim.setup(trial_duration=...)``; on backends
  without trial boundaries (NEST) the cells must be ``IF_curr_exp`` in the single-spike
  trial layout of :mod:`pynn_ttfs.trials` (checked: tau_syn_I = tau_syn_E, i_offset = 0,
  v_reset = initial v = v_rest, tau_refrac and trial_duration), inputs must lie in the
  layout's active window, and a first spike after it is reported (its refractory period
  reaches into the next trial);
* after each optimizer step writes the weights back with ``Projection.set(weight=...)``.

The gradients are then evaluated at the recorded times by the same step as the direct
path. The float weights are kept here (the optimizer's state); a backend may store them
quantised (BSS-2): the recorded times then come from the quantised chip, the update from
the float model, as in the published hardware-in-the-loop training.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from .. import trials
from .model import Layer, TTFSModel


def _per_neuron(population, name: str) -> np.ndarray:
    value = population.get(name, gather=True)
    return np.broadcast_to(np.asarray(value, dtype=float), (population.size,)).copy()


def _first_spike_times_set(population) -> np.ndarray:
    """The spike_times set on a (size-1) SpikeSourceArray, as a flat float array (ms)."""
    value = population.get("spike_times", gather=True)
    if isinstance(value, np.ndarray) and value.dtype == object:
        value = value.ravel()[0]
    if hasattr(value, "value"):
        value = value.value
    return np.asarray(value, dtype=float).ravel()


def _projection_array(projection, name: str) -> np.ndarray:
    """Projection.get(name, format="array") as float (n_pre, n_post), NaN = no connection."""
    if hasattr(projection, "_connections") and hasattr(projection, "nest_connections"):
        # pyNN.nest caches each projection's connection handles behind ONE global "stale"
        # flag, so a projection read after another one was refreshed can return a stale
        # handle set (targets outside its post population); force a fresh query
        projection._connections = None
    return np.asarray(projection.get(name, format="array"), dtype=float)


class _NestWeightWriter:
    """Writes a pyNN.nest projection's weights straight into its NEST connections.

    Why: pyNN.nest's ``Projection.set`` loops over post-synaptic cells and, for sources,
    compares PyNN IDs with numpy integers, which makes numpy probe the ID for array
    attributes; each probe fetches every cell parameter from NEST. That costs about a
    second per projection and step. The NEST weight scale (pA per nA) and the
    connection -> (pre, post) index map are taken from PyNN's own ``get`` once.
    """

    def __init__(self, projection):
        projection._connections = None  # see _projection_array
        self.projection = projection
        self.connections = projection.nest_connections
        status = self.connections.get(["source", "target", "weight"])
        sources = np.atleast_1d(np.asarray(status["source"], dtype=np.int64))
        targets = np.atleast_1d(np.asarray(status["target"], dtype=np.int64))
        raw = np.atleast_1d(np.asarray(status["weight"], dtype=float))
        self.rows = sources - int(projection.pre.first_id)
        self.cols = targets - int(projection.post.first_id)
        pynn = _projection_array(projection, "weight")[self.rows, self.cols]
        usable = np.isfinite(pynn) & (np.abs(pynn) > 1e-12)
        if not usable.any():
            raise ValueError("no non-zero weight to calibrate the NEST weight scale")
        self.scale = float(np.median(raw[usable] / pynn[usable]))

    def write(self, weights: np.ndarray) -> None:
        self.connections.set(weight=(weights[self.rows, self.cols] * self.scale).tolist())


_NEST_WRITERS: Dict[int, _NestWeightWriter] = {}


def _set_weights(projection, weights: np.ndarray) -> None:
    if hasattr(projection, "_connections") and hasattr(projection, "nest_connections"):
        writer = _NEST_WRITERS.get(id(projection))
        if writer is None or writer.projection is not projection:
            try:
                writer = _NestWeightWriter(projection)
            except (ValueError, KeyError, IndexError):
                writer = None
        if writer is not None:
            _NEST_WRITERS[id(projection)] = writer
            writer.write(np.asarray(weights, dtype=float))
            return
        projection._connections = None  # see _projection_array
    projection.set(weight=weights)


def _is_spike_source(population) -> bool:
    return "spike_times" in getattr(population.celltype, "default_parameters", {})


def _receptor(projection) -> str:
    return getattr(projection, "receptor_type", "excitatory") or "excitatory"


@dataclass
class PyNNLayer:
    population: object
    pre: object  # input population or the previous layer's population
    projections: List[object]  # 1 signed, or [excitatory, inhibitory]
    bias_population: Optional[object] = None
    bias_projections: List[object] = field(default_factory=list)
    bias_emit_ms: Optional[float] = None  # bias spike time within a trial (ms)
    current_unit_na: float = 1.0  # c of the layer (mean over neurons), nA
    delay_ms: float = 0.0
    bias_delay_ms: float = 0.0
    mask: Optional[np.ndarray] = None  # (n_pre [+1], n_post) True where a connection exists


class PyNNNetwork:
    """Adapter between a PyNN network and the trainer's model (see module docstring)."""

    def __init__(self, sim, input_population, projections: Sequence[object],
                 trial_duration: Optional[float] = None, time_unit_ms: Optional[float] = None,
                 bias_times_ms: Optional[Dict[object, float]] = None):
        self.sim = sim
        self.input_population = input_population
        self.projections = list(projections)
        if not self.projections:
            raise ValueError("projections must name at least one projection to train")
        if not _is_spike_source(input_population):
            raise ValueError("input_population must be a SpikeSourceArray population, got "
                             f"{type(input_population.celltype).__name__}")
        # pynn_ttfs (software and bss2) starts every reset() segment from rest exactly;
        # other backends (NEST) simply run on, the trial layout keeps trials independent
        self.reset_between_batches = hasattr(sim, "IF_curr_exp_ttfs")
        if self.reset_between_batches:
            # pynn_ttfs computes separate trials only at its own boundaries: another value
            # here would lay samples over trials it computes as one
            state = getattr(getattr(sim, "simulator", None), "state", None)
            own = getattr(state, "trial_duration", None)
            if own is None:
                raise ValueError("trial_duration (ms) is needed: set it in "
                                 "sim.setup(trial_duration=...); without it pynn_ttfs "
                                 "computes the whole segment as one trial")
            if trial_duration is not None and not math.isclose(float(trial_duration), own,
                                                                rel_tol=1e-12):
                raise ValueError(f"trial_duration={trial_duration} ms differs from "
                                 f"sim.setup(trial_duration={own}) ms, where pynn_ttfs puts "
                                 "the trial boundaries: pass the same value or leave it out")
            trial_duration = own
        if trial_duration is None or not trial_duration > 0:
            raise ValueError("trial_duration (ms) is needed: pass trial_duration=... (> 0)")
        self.trial_duration = float(trial_duration)
        self.layers = self._find_layers(bias_times_ms or {})
        for layer in self.layers:
            recordable = getattr(layer.population.celltype, "recordable", ())
            if "spikes" not in recordable:
                raise ValueError(
                    f"population {layer.population.label!r} ({type(layer.population.celltype).__name__} "
                    f"on backend {getattr(sim, '__name__', sim)!s}) cannot record 'spikes': "
                    "in-the-loop training needs recorded spike times")
            layer.population.record("spikes")
        tau_syn_all = np.concatenate([_per_neuron(l.population, "tau_syn_E") for l in self.layers])
        self.time_unit_ms = float(time_unit_ms) if time_unit_ms else float(np.median(tau_syn_all))
        #: per trained population, the time (ms from the trial start) up to which inputs and
        #: first spikes keep the trials independent: the whole trial on pynn_ttfs, the
        #: active window of the trial layout (pynn_ttfs.trials) on other backends
        self.active_window_ms = [self.trial_duration] * len(self.layers)
        self._warned_late = False
        if not self.reset_between_batches:
            self.active_window_ms = [self._check_cells(layer.population) for layer in self.layers]
        self._read_parameters()

    # ------------------------------------------------------------------ structure
    def _check_cells(self, population) -> float:
        """On a backend without trial boundaries (NEST), whether ``population``'s cells are
        the model's current-based neuron in the single-spike trial layout of
        :mod:`pynn_ttfs.trials`; returns the layout's active window (ms)."""
        label, D = population.label, self.trial_duration
        cell = type(population.celltype).__name__
        if getattr(population, "conductance_based", False):
            raise ValueError(f"population {label!r}: {cell} is conductance-based; the TTFS "
                             "model is current-based (use IF_curr_exp)")
        names = set(population.celltype.get_parameter_names())
        missing = sorted({"tau_m", "tau_syn_E", "cm", "v_thresh", "v_rest", "tau_refrac"} - names)
        if missing:
            raise ValueError(f"population {label!r}: {cell} has no parameter(s) {missing}; "
                             "training needs a leaky integrate-and-fire cell with "
                             "exponential current synapses (IF_curr_exp)")
        value = {name: _per_neuron(population, name) for name in names
                 if name in ("tau_m", "tau_syn_E", "tau_syn_I", "v_rest", "v_reset", "i_offset",
                             "tau_refrac")}
        if "tau_syn_I" in value and not np.allclose(value["tau_syn_I"], value["tau_syn_E"],
                                                    rtol=1e-9, atol=0.0):
            raise ValueError(f"population {label!r}: tau_syn_I must equal tau_syn_E (the model "
                             "has one synaptic time constant), got "
                             f"{np.unique(value['tau_syn_I'])[:3]} and {np.unique(value['tau_syn_E'])[:3]} ms")
        if "i_offset" in value and np.any(value["i_offset"] != 0):
            raise ValueError(f"population {label!r}: i_offset must be 0 nA (the model has no "
                             f"bias current; use a bias spike source), got {np.unique(value['i_offset'])[:3]}")
        if "v_reset" in value and not np.allclose(value["v_reset"], value["v_rest"], rtol=0, atol=1e-9):
            raise ValueError(f"population {label!r}: v_reset must equal v_rest, or a neuron is "
                             "not at rest when the next trial starts (pynn_ttfs.trials."
                             "nest_cell_parameters)")
        try:
            initial_v = population.initial_values.get("v")
            if hasattr(initial_v, "evaluate"):
                initial_v = initial_v.evaluate(simplify=False)
        except (NotImplementedError, AttributeError, TypeError, ValueError):
            initial_v = None  # a view or a backend that cannot say: nothing to check
        if initial_v is not None and not np.allclose(
                np.broadcast_to(np.asarray(initial_v, dtype=float), (population.size,)),
                value["v_rest"], rtol=0, atol=1e-9):
            raise ValueError(f"population {label!r}: the initial v must equal v_rest (the model "
                             "starts every trial at rest): population.initialize(v=v_rest)")
        refrac = value["tau_refrac"]
        window = D - refrac  # trial_duration = 2 W + G, tau_refrac = W + G
        gap = refrac - window
        min_gap = trials.DECAY_GAP_TAUS * max(float(np.max(value["tau_m"])),
                                              float(np.max(value["tau_syn_E"])))
        if np.any(window <= 0) or np.any(gap < min_gap * (1 - 1e-9)):
            raise ValueError(
                f"population {label!r}: tau_refrac={np.unique(refrac)[:3]} ms does not fit "
                f"trial_duration={D} ms; trials stay independent and single-spike only with "
                f"tau_refrac = W + G and trial_duration = 2 W + G, active window W > 0 and gap "
                f"G >= {trials.DECAY_GAP_TAUS:g} max(tau_m, tau_syn) = {min_gap:g} ms "
                "(pynn_ttfs.trials.nest_trial_layout / nest_cell_parameters)")
        return float(np.min(window))

    def _find_layers(self, bias_times_ms) -> List[PyNNLayer]:
        posts = []
        for prj in self.projections:
            if prj.post not in posts:
                posts.append(prj.post)
        incoming = {id(p): [prj for prj in self.projections if prj.post is p] for p in posts}
        layers: Dict[int, PyNNLayer] = {}
        for post in posts:
            main, bias = [], []
            for prj in incoming[id(post)]:
                pre = prj.pre
                if pre is self.input_population or any(pre is p for p in posts):
                    main.append(prj)
                elif _is_spike_source(pre) and pre.size == 1:
                    bias.append(prj)
                else:
                    raise ValueError(
                        f"projection {prj.label!r} from {pre.label!r} to {post.label!r} is not "
                        "between trained populations: its pre-synaptic population is neither "
                        "the input population, a trained population, nor a size-1 "
                        "SpikeSourceArray bias source")
            pres = {id(prj.pre) for prj in main}
            if len(pres) != 1:
                raise ValueError(
                    f"population {post.label!r} must receive trained projections from exactly one "
                    f"population (the input or the previous layer), got {len(pres)}")
            bias_pres = {id(prj.pre) for prj in bias}
            if len(bias_pres) > 1:
                raise ValueError(f"population {post.label!r} has more than one bias source")
            for group in (main, bias):
                if len(group) > 2 or (len(group) == 2 and sorted(_receptor(p) for p in group)
                                      != ["excitatory", "inhibitory"]):
                    raise ValueError(
                        f"projections into {post.label!r}: use one signed projection per source, "
                        "or an excitatory/inhibitory pair")
            main.sort(key=lambda p: _receptor(p) != "excitatory")
            bias.sort(key=lambda p: _receptor(p) != "excitatory")
            layer = PyNNLayer(post, main[0].pre, main, bias[0].pre if bias else None, bias)
            if layer.bias_population is not None:
                emit = bias_times_ms.get(layer.bias_population)
                if emit is None:
                    times = _first_spike_times_set(layer.bias_population)
                    if times.size == 0:
                        raise ValueError(
                            f"bias source {layer.bias_population.label!r} has no spike time: set "
                            "spike_times=[t] (ms within a trial) or pass bias_times_ms")
                    emit = float(times[0])
                layer.bias_emit_ms = float(emit)
            layers[id(post)] = layer
        # order the chain from the input
        ordered: List[PyNNLayer] = []
        current = self.input_population
        while True:
            nxt = [l for l in layers.values() if l.pre is current]
            if not nxt:
                break
            if len(nxt) > 1:
                raise ValueError(f"population {current.label!r} feeds more than one trained "
                                 "population: only a chain of layers is supported")
            ordered.append(nxt[0])
            current = nxt[0].population
        if len(ordered) != len(layers):
            raise ValueError("the trained projections do not form one chain starting at the "
                             "input population")
        return ordered

    def _read_parameters(self) -> None:
        for layer in self.layers:
            for group, attr in ((layer.projections, "delay_ms"), (layer.bias_projections, "bias_delay_ms")):
                if not group:
                    continue
                arrays = [_projection_array(p, "delay") for p in group]  # one read each
                for prj, array in zip(group, arrays):
                    # get(format="array") sums the synapses of one (pre, post) pair
                    n_connections = int(prj.size(gather=True))
                    n_pairs = int(np.isfinite(array).sum())
                    if n_connections != n_pairs:
                        raise ValueError(
                            f"projection {prj.label!r} has {n_connections} connections on "
                            f"{n_pairs} (pre, post) pairs: training keeps one weight per pair, "
                            "so multiple synapses between one pair are not supported")
                delays = np.concatenate([array.ravel() for array in arrays])
                delays = delays[np.isfinite(delays)]
                if delays.size and np.ptp(delays) > 1e-9:
                    raise ValueError(f"projections into {layer.population.label!r} must have one "
                                     "delay (per-connection delays are not supported in training)")
                setattr(layer, attr, float(delays[0]) if delays.size else 0.0)
            c = self.threshold_current(layer.population)
            layer.current_unit_na = float(np.mean(c))

    @staticmethod
    def threshold_current(population) -> np.ndarray:
        cm, tau_m = _per_neuron(population, "cm"), _per_neuron(population, "tau_m")
        return cm / tau_m * (_per_neuron(population, "v_thresh") - _per_neuron(population, "v_rest"))

    # ------------------------------------------------------------------ weights
    def _signed_array(self, group) -> np.ndarray:
        """The group's weights as the backend applies them: signed as stored (PyNN's
        convention for current synapses, negative on the inhibitory receptor; pynn_ttfs
        applies either sign on either receptor). An excitatory/inhibitory pair must connect
        the same (pre, post) pairs: the model's one weight there is split between them."""
        arrays = [_projection_array(prj, "weight") for prj in group]
        if len(arrays) == 2:
            if not np.array_equal(np.isfinite(arrays[0]), np.isfinite(arrays[1])):
                raise ValueError(
                    f"projections {group[0].label!r} and {group[1].label!r}: an "
                    "excitatory/inhibitory pair must connect the same (pre, post) pairs")
            return np.nan_to_num(arrays[0]) + arrays[1]
        return arrays[0]

    def read_weights_na(self, layer: PyNNLayer) -> np.ndarray:
        """(n_pre [+1 bias], n_post) signed weights in nA, NaN where there is no connection."""
        w = self._signed_array(layer.projections)
        if layer.bias_population is not None:
            w = np.concatenate([w, self._signed_array(layer.bias_projections)], axis=0)
        return w

    def to_model(self, dtype=torch.float64, device="cpu") -> TTFSModel:
        """The trainer's model: weights and neuron parameters as the backend holds them."""
        layers = []
        tau = self.time_unit_ms
        for layer in self.layers:
            pop = layer.population
            w_na = self.read_weights_na(layer)
            layer.mask = np.isfinite(w_na)
            weights = np.nan_to_num(w_na) / layer.current_unit_na
            tau_syn = _per_neuron(pop, "tau_syn_E") / tau
            tau_mem = _per_neuron(pop, "tau_m") / tau
            threshold = self.threshold_current(pop) / layer.current_unit_na
            as_t = lambda a: torch.as_tensor(a, dtype=dtype, device=device)  # noqa: E731
            bias_time = None
            if layer.bias_population is not None:
                # the model's bias time is the arrival time within the trial
                bias_time = (layer.bias_emit_ms + layer.bias_delay_ms) / tau
            mask = None if layer.mask.all() else torch.as_tensor(layer.mask, device=device)
            layers.append(Layer(torch.nn.Parameter(as_t(weights)), as_t(tau_syn), as_t(tau_mem),
                                as_t(threshold), bias_time, delay=layer.delay_ms / tau,
                                mask=mask))
        return TTFSModel(layers)

    def write_weights(self, model: TTFSModel) -> None:
        for layer, model_layer in zip(self.layers, model.layers):
            w = model_layer.weights.detach().cpu().numpy().astype(float) * layer.current_unit_na
            n_pre = layer.pre.size
            groups = [(layer.projections, w[:n_pre])]
            if layer.bias_population is not None:
                groups.append((layer.bias_projections, w[n_pre:]))
            for group, values in groups:
                if len(group) == 1:
                    _set_weights(group[0], values)
                else:  # excitatory / inhibitory pair, PyNN's signs: >= 0 and <= 0
                    _set_weights(group[0], np.maximum(values, 0.0))
                    _set_weights(group[1], np.minimum(values, 0.0))

    # ------------------------------------------------------------------ running
    def run(self, input_times_model: torch.Tensor) -> List[np.ndarray]:
        """Run a batch (inputs in model time units) as trials; every layer's first-spike
        times per trial in model time units (relative to the trial start), inf = silent."""
        sim = self.sim
        tau = self.time_unit_ms
        x = np.asarray(input_times_model.detach().cpu().numpy(), dtype=float) * tau
        n_trials = x.shape[0]
        duration = self.trial_duration
        if self.reset_between_batches:
            # pynn_ttfs keeps a segment's trials and source spikes: a new segment per batch
            # keeps the cost of a batch independent of how many came before
            sim.reset()
            # align to the trial grid (pynn_ttfs counts trials from the segment start)
            t_offset = math.ceil(float(sim.get_current_time()) / duration - 1e-9) * duration
        else:
            # pyNN.nest sends a SpikeSourceArray's spikes through parrot neurons one
            # min_delay early and drops (or, at t = 0, refuses) any within two min_delays
            # of the present: the batch starts after that
            lead = 2.0 * float(sim.get_min_delay()) + float(sim.get_time_step())
            t_offset = float(sim.get_current_time()) + lead
        window = min(self.active_window_ms)
        finite = x[np.isfinite(x)]
        if finite.size and (finite.min() < 0 or finite.max() >= window):
            where = ("" if window == duration else
                     f" (the active window of the {duration:g} ms trial layout: later inputs "
                     "would reach into the next trial)")
            raise ValueError(f"input spike times must lie in [0, {window:g}) ms within a "
                             f"trial{where}, got [{finite.min():g}, {finite.max():g}] ms")
        self.input_population.set(spike_times=trials.spike_times_for_trials(x, duration, t_offset))
        done = []  # a bias source shared by several layers is set once (each set() is a
        # round trip to the simulator: slow on pyNN.nest)
        for layer in self.layers:
            if layer.bias_population is not None and not any(layer.bias_population is d for d in done):
                emit = np.full((n_trials, 1), layer.bias_emit_ms)
                layer.bias_population.set(
                    spike_times=trials.spike_times_for_trials(emit, duration, t_offset))
                done.append(layer.bias_population)
        sim.run(t_offset + n_trials * duration - float(sim.get_current_time()))
        outputs = []
        for layer, window in zip(self.layers, self.active_window_ms):
            data = layer.population.get_data("spikes", clear=True)
            times = trials.first_spike_times(data, n_trials, duration, layer.population.size,
                                             t_start=t_offset)
            late = np.isfinite(times) & (times >= window)
            if window < duration and late.any() and not self._warned_late:
                self._warned_late = True  # once: the count changes from batch to batch
                warnings.warn(
                    f"{int(late.sum())} first spike(s) of population {layer.population.label!r} "
                    f"came after the active window ({window:g} ms of each {duration:g} ms "
                    "trial): those neurons were still refractory when their next trial began, "
                    "so their next recorded spikes may differ from the model's; a longer "
                    "trial (active window) avoids this (reported once per network)",
                    RuntimeWarning, stacklevel=2)
            outputs.append(times / tau)
        return outputs


class PyNNForward:
    """The trainer's forward pass through a PyNN backend (see :class:`PyNNNetwork`)."""

    name = "pynn"

    def __init__(self, network: PyNNNetwork, model: TTFSModel):
        self.network = network
        self.model = model

    def __call__(self, input_times: torch.Tensor) -> List[torch.Tensor]:
        recorded = self.network.run(input_times)
        w = self.model.layers[0].weights
        return [torch.as_tensor(t, dtype=w.dtype, device=w.device) for t in recorded]

    def write_weights(self) -> None:
        self.network.write_weights(self.model)

    def state_dict(self) -> dict:
        """The backend's own random state where it exposes one (pynn_ttfs: the emulated
        chip's noise), so a resumed run draws the noise it would have drawn."""
        sim = self.network.sim
        return {"random_state": sim.get_random_state()} if hasattr(sim, "get_random_state") else {}

    def load_state_dict(self, state: dict) -> None:
        if "random_state" in state:
            sim = self.network.sim
            if not hasattr(sim, "set_random_state"):
                raise ValueError(f"the checkpoint holds a substrate random state, but "
                                 f"{sim.__name__} cannot take one")
            sim.set_random_state(state["random_state"])


def pynn_trainer(sim, input_population, projections: Sequence[object], recipe,
                 trial_duration: Optional[float] = None, device: str = "cpu",
                 bias_times_ms: Optional[Dict[object, float]] = None):
    """A :class:`~pynn_ttfs.training.trainer.Trainer` whose forward pass runs on ``sim``.

    The initial weights are the ones the script gave the projections; the trained ones are
    written back to them after every step.
    """
    from .trainer import DTYPES, Trainer
    network = PyNNNetwork(sim, input_population, projections, trial_duration=trial_duration,
                          bias_times_ms=bias_times_ms)
    model = network.to_model(dtype=DTYPES[recipe.dtype], device=device)
    return Trainer(model, recipe, forward=PyNNForward(network, model), device=device)


# ---------------------------------------------------------------------- network builder

def build_network(sim, model: TTFSModel, tau_syn_ms: float = 5.0, cm_nf: float = 1.0,
                  v_rest_mv: float = -65.0, v_thresh_mv: float = -50.0,
                  delay_ms: float = 0.1, trial_duration: Optional[float] = None,
                  cell_type: Optional[str] = None, labels: Sequence[str] = ()):
    """Build ``model``'s network with the PyNN API of ``sim``; returns
    (input population, list of trained populations, list of projections, bias populations).

    Time constants tau_m = tau_syn * (model tau ratio); weights = model weights x the layer
    threshold current c = cm / tau_m (v_thresh - v_rest). ``cell_type``: "IF_curr_exp_ttfs"
    (default when ``sim`` has it) or "IF_curr_exp" (e.g. pyNN.nest; then ``trial_duration``
    is needed and the refractory period follows :func:`pynn_ttfs.trials.nest_trial_layout`).
    """
    if cell_type is None:
        cell_type = "IF_curr_exp_ttfs" if hasattr(sim, "IF_curr_exp_ttfs") else "IF_curr_exp"
    input_population = sim.Population(model.layers[0].n_in, sim.SpikeSourceArray(spike_times=[]),
                                      label="input")
    populations, projections, biases = [], [], []
    bias_by_time = {}  # one bias source per distinct bias time, shared by layers
    pre = input_population
    for index, layer in enumerate(model.layers):
        ratio = float(layer.tau_mem[0] / layer.tau_syn[0])
        tau_m = tau_syn_ms * ratio
        params = dict(tau_m=tau_m, tau_syn_E=tau_syn_ms, tau_syn_I=tau_syn_ms, cm=cm_nf,
                      v_rest=v_rest_mv, v_thresh=v_thresh_mv)
        if cell_type == "IF_curr_exp":
            if trial_duration is None:
                raise ValueError("cell_type IF_curr_exp needs trial_duration (ms)")
            gap = trials.DECAY_GAP_TAUS * max(tau_syn_ms, tau_m)
            window = (trial_duration - gap) / 2.0
            params = trials.nest_cell_parameters(params, window, gap=gap)
        cell = getattr(sim, cell_type)(**params)
        label = labels[index] if index < len(labels) else f"layer{index}"
        population = sim.Population(layer.n_out, cell, label=label)
        c_na = cm_nf / tau_m * (v_thresh_mv - v_rest_mv)
        w = layer.weights.detach().cpu().numpy().astype(float) * c_na
        n_pre = layer.n_in
        # created with weight 0 and then set: PyNN refuses mixed signs at connect time
        main = sim.Projection(pre, population, sim.AllToAllConnector(),
                              sim.StaticSynapse(weight=0.0, delay=delay_ms),
                              label=f"{label}.weights")
        _set_weights(main, w[:n_pre])
        projections.append(main)
        if layer.bias_time is not None:
            bias = bias_by_time.get(layer.bias_time)
            if bias is None:
                bias = sim.Population(1, sim.SpikeSourceArray(
                    spike_times=[layer.bias_time * tau_syn_ms]), label=f"bias{len(bias_by_time)}")
                bias_by_time[layer.bias_time] = bias
                biases.append(bias)
            bias_projection = sim.Projection(bias, population, sim.AllToAllConnector(),
                                             sim.StaticSynapse(weight=0.0, delay=delay_ms),
                                             label=f"{label}.bias_weights")
            _set_weights(bias_projection, w[n_pre:])
            projections.append(bias_projection)
        populations.append(population)
        pre = population
    return input_population, populations, projections, biases
