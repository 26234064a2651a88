"""The emulated BrainScaleS-2 substrate: a NetworkGraph run on one seeded chip instance.

What happens to a network on its way through the chip (in this order):

1. Placement: LIF populations get consecutive logical neurons in topological order;
   every distinct presynaptic (neuron, delay) of a population gets one signed input (two
   synapse rows, excitatory and inhibitory, shared by the population's neurons; an
   excitatory and an inhibitory projection from the same neurons share them).
   Over-capacity raises ValueError naming the limit and the excess.
2. Weights: model weight = w_nA / c_target of the post neuron, stored as an integer in
   [-63, 63] (resolution 1/30) per synapse: the connections that meet on one synapse (the
   same signed input, neuron and sign: multiple synapses of a pair) add up first. The
   realised weight is integer / 30 (see ``weights.py``), then the analog path multiplies
   it with the neuron's input strength and the synapse's gain (fixed pattern). Weights
   beyond the range are clipped, with a warning.
3. Neurons: threshold, tau_syn and tau_mem are the targets times the chip's per-neuron
   factors (calibrated or not; see ``chip.py``), so tau_mem / tau_syn is no longer
   exactly 1 or 2 and the general first-crossing solver (``engine/general.py``) is used.
   Every trial draws threshold noise per (trial, neuron); every spike gets time jitter.
4. Time stamps: input spikes are released and output spikes recorded on the 8 ns FPGA
   clock (model time = chip time x acceleration; 1 model ms = 1 chip µs at 1000x).

With ``ChipConfig.ideal()`` (or ``ideal=True``) none of this changes anything and the
neurons go through the very same closed-form solver as the software substrate: the times
are bit-identical.

``TrialResult.info`` reports the emulated chip time (trial_duration_tau_s x tau_s per
trial plus the configured overheads) and spike counts.
"""
from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from pynn_ttfs.engine import membrane_potential, solve_first_spike_times
from pynn_ttfs.engine.general import solve_first_spike_times_general
from pynn_ttfs.engine.neuron import SUPPORTED_RATIOS, layer_parameters

from ..graph import LIF, SOURCE, NetworkGraph, PopulationSpec, TrialInput, TrialResult
from ..software.substrate import SoftwareSubstrate, compile_layer_inputs, source_events
from .calibration import Calibration, default_cache_dir, load_or_calibrate, needs_calibration
from .chip import ChipInstance
from .config import ChipConfig, make_config
from .weights import chip_to_model, model_to_chip


class BSS2Substrate(SoftwareSubstrate):
    """An emulated BrainScaleS-2 chip.

    chip_seed: which chip (fixed pattern). calibration: "auto" (load this chip's cached
    calibration or measure and cache it), "fresh", "none" (raw chip) or a path to a
    calibration file. calibration_dir: cache folder (default ``$PYNN_TTFS_BSS2_CALIBRATION_DIR``
    or ~/.cache/pynn_ttfs/bss2). noise: trial-to-trial noise on/off (None = config).
    noise_seed: seeds the noise stream (with the chip seed). ideal: start from
    ``ChipConfig.ideal()``. chip_config: a ChipConfig or dict of its fields; the remaining
    keyword arguments override single fields.
    """

    name = "bss2"

    def __init__(
        self,
        chip_seed: int = 0,
        calibration="auto",
        calibration_dir=None,
        noise: Optional[bool] = None,
        noise_seed: int = 0,
        ideal: bool = False,
        chip_config=None,
        weight_resolution="default",
        time_resolution_us: Optional[float] = None,
        threshold_noise: Optional[float] = None,
        spike_jitter_tau_s: Optional[float] = None,
        dead_fraction: Optional[float] = None,
        overhead_per_trial_us: Optional[float] = None,
        chip_power_w: Optional[float] = None,
        device: str = "cpu",
        dtype="float64",
    ):
        super().__init__(device=device, dtype=dtype)
        # strings such as "off" would read as True
        if noise is not None and not isinstance(noise, (bool, np.bool_)):
            raise ValueError(f"noise must be True, False or None (the chip config's), got {noise!r}")
        if not isinstance(ideal, (bool, np.bool_)):
            raise ValueError(f"ideal must be True or False, got {ideal!r}")
        if isinstance(noise_seed, (bool, np.bool_)) or not isinstance(noise_seed, (int, np.integer)) \
                or noise_seed < 0:
            raise ValueError(f"noise_seed must be an integer >= 0, got {noise_seed!r}")
        if isinstance(calibration, str) and calibration not in ("auto", "fresh", "none") \
                and not Path(calibration).is_file():
            raise ValueError(f"calibration must be 'auto', 'fresh', 'none' or the path of a "
                             f"calibration file, got {calibration!r} (no such file)")
        base = chip_config if chip_config is not None else (ChipConfig.ideal() if ideal else None)
        changes = dict(noise=noise, time_resolution_us=time_resolution_us, threshold_noise=threshold_noise,
                       spike_jitter_tau_s=spike_jitter_tau_s, dead_fraction=dead_fraction,
                       overhead_per_trial_us=overhead_per_trial_us, chip_power_w=chip_power_w)
        self.config = make_config(base, **changes)
        if weight_resolution != "default":  # None means infinite resolution, so not a "keep" marker
            self.config = self.config.replace(weight_resolution=weight_resolution)
        self.chip = ChipInstance(chip_seed, self.config)
        self.chip_seed = self.chip.chip_seed
        self.calibration: Optional[Calibration] = None
        if needs_calibration(self.config):
            self.calibration = load_or_calibrate(self.chip, calibration_dir or default_cache_dir(), calibration)
        self.circuits = self._working_circuits()
        self._noise_rng = np.random.default_rng([self.chip_seed, 0x5EED, int(noise_seed)])
        self.total_chip_time_s = 0.0
        self.total_trials = 0
        self._warned_clipping = False

    # ------------------------------------------------------------------ random state
    def random_state(self):
        return {"chip_seed": self.chip_seed, "noise": self._noise_rng.bit_generator.state}

    def set_random_state(self, state) -> None:
        if not isinstance(state, dict) or "noise" not in state:
            raise ValueError(f"not a random state of the bss2 substrate: {state!r}")
        if state.get("chip_seed") != self.chip_seed:
            raise ValueError(f"the random state was saved on chip_seed {state.get('chip_seed')}, "
                             f"this chip has chip_seed {self.chip_seed}")
        self._noise_rng.bit_generator.state = state["noise"]

    # ------------------------------------------------------------------ facts
    def describe(self):
        facts = super().describe()
        facts.update({"name": self.name, "chip_seed": self.chip_seed, "calibrated": self.chip.calibrated,
                      "noise": self.config.noise, "weight_resolution": self.config.weight_resolution,
                      "total_chip_time_s": self.total_chip_time_s, "total_trials": self.total_trials})
        return facts

    # ------------------------------------------------------------- placement
    def _working_circuits(self) -> np.ndarray:
        """The neuron circuits logical neurons are placed on, in order: all of them, less
        those the calibration could not measure through their spikes (dead or far off), as
        a real chip's placement avoids circuits its calibration flagged. An uncalibrated
        chip knows nothing of its circuits and uses all."""
        n = self.config.n_neurons
        measured = self.calibration.measured_before if self.calibration is not None else None
        if not measured:
            return np.arange(n)
        ok = np.ones(n, dtype=bool)
        for values in measured.values():
            ok &= np.isfinite(np.asarray(values, dtype=np.float64))
        return np.flatnonzero(ok)

    def placement(self, graph: NetworkGraph) -> Dict[str, int]:
        """Logical neuron offset of every LIF population (logical neuron i sits on circuit
        ``self.circuits[i]``); checks the capacity limits."""
        offsets, used = {}, 0
        for label in graph.topological_order():
            pop = graph.populations[label]
            if pop.kind != LIF:
                continue
            offsets[label] = used
            used += pop.size
        available = len(self.circuits)
        if used > available:
            sizes = ", ".join(f"{k}={graph.populations[k].size}" for k in offsets)
            failed = self.config.n_neurons - available
            where = (f"{available} working logical neurons ({failed} of {self.config.n_neurons} "
                     f"circuits failed calibration)" if failed else f"{available} logical neurons")
            raise ValueError(
                f"the network needs {used} LIF neurons ({sizes}) but the chip has {where}: "
                f"{used - available} too many"
            )
        for label in offsets:
            _, n_inputs = self._input_slots(graph, label)
            if n_inputs > self.config.max_inputs:
                raise ValueError(
                    f"population {label!r} needs {n_inputs} signed inputs (its distinct "
                    f"presynaptic neurons and delays; the synapse rows are shared by its "
                    f"neurons) but the chip has {self.config.max_inputs} (two synapse rows "
                    f"each): {n_inputs - self.config.max_inputs} too many"
                )
        self._warn_about_flagged_circuits(offsets, graph)
        return offsets

    def _warn_about_flagged_circuits(self, offsets: Dict[str, int], graph: NetworkGraph) -> None:
        """Circuits the calibration could measure but not trim into range are still used
        (a network may need every circuit); say which logical neurons sit on them."""
        if self.calibration is None:
            return
        flagged = ~np.asarray(self.calibration.calibratable, dtype=bool)
        used = []
        for label, offset in offsets.items():
            circuits = self.circuits[offset:offset + graph.populations[label].size]
            used += [f"{label}[{i}] (circuit {c})" for i, c in enumerate(circuits) if flagged[c]]
        if used:
            warnings.warn(f"chip {self.chip_seed}: {', '.join(used)} sit on circuits whose "
                          "calibration could not reach its targets; they deviate more than the "
                          "rest (training in the loop adapts to them)", RuntimeWarning, stacklevel=3)

    @staticmethod
    def _input_slots(graph: NetworkGraph, label: str) -> Tuple[Dict[int, np.ndarray], int]:
        """The signed input (pair of synapse rows) of every connection into ``label``, per
        projection (by id), and how many there are: one per distinct (presynaptic
        population, delay, presynaptic neuron), numbered in order of first appearance
        (projections in graph order, delays and neurons ascending)."""
        slot_of_key: Dict[tuple, int] = {}
        slots_of: Dict[int, np.ndarray] = {}
        for proj in graph.incoming(label):
            slots = np.zeros(proj.weight.size, dtype=np.int64)
            for delay in np.unique(proj.delay) if proj.weight.size else []:
                in_group = proj.delay == delay
                used = np.unique(proj.pre_index[in_group])
                numbers = np.array([slot_of_key.setdefault((proj.pre, float(delay), int(i)),
                                                           len(slot_of_key)) for i in used],
                                   dtype=np.int64)
                slots[in_group] = numbers[np.searchsorted(used, proj.pre_index[in_group])]
            slots_of[id(proj)] = slots
        return slots_of, len(slot_of_key)

    def _check_time_constants(self, label: str, pop: PopulationSpec) -> None:
        scale = 1000.0 / self.config.acceleration  # model ms -> chip µs
        for key, (low, high), name in (("tau_syn", self.config.tau_syn_range_us, "tau_syn"),
                                       ("tau_m", self.config.tau_mem_range_us, "tau_m")):
            chip_us = np.asarray(pop.params[key], dtype=np.float64) * scale
            if np.any(chip_us < low) or np.any(chip_us > high):
                bad = chip_us[(chip_us < low) | (chip_us > high)][0]
                raise ValueError(
                    f"population {label!r}: {name} = {bad / scale:g} ms is {bad:g} µs on the chip "
                    f"(acceleration {self.config.acceleration:g}x), outside the calibratable range "
                    f"{low:g}-{high:g} µs ({low / scale:g}-{high / scale:g} ms)"
                )

    # ---------------------------------------------------------------- weights
    @staticmethod
    def _projection_keys(graph: NetworkGraph) -> List[str]:
        """A name per graph projection: its label, with "#k" where labels repeat (PyNN's
        default "pre→post" is the same for an excitatory/inhibitory pair)."""
        keys, seen = [], {}
        for proj in graph.projections:
            n = seen.get(proj.label, 0)
            seen[proj.label] = n + 1
            keys.append(proj.label if n == 0 else f"{proj.label}#{n}")
        return keys

    def chip_weights(self, graph: NetworkGraph) -> Dict[str, np.ndarray]:
        """Per projection the integer each connection's weight maps to on its own (signed;
        with infinite resolution the unrounded model weight), keyed by projection label
        ("label#k" for the k-th repeat of a label). Where several connections meet on one
        synapse (multiple synapses of a pair) the chip holds the integer of their sum
        instead (``_effective_graph``)."""
        out = {}
        for key, proj in zip(self._projection_keys(graph), graph.projections):
            post = graph.populations[proj.post]
            c_target = post.threshold_current()[proj.post_index]
            out[key] = model_to_chip(proj.weight / c_target, self.config)
        return out

    def realised_weights(self, graph: NetworkGraph) -> Dict[str, np.ndarray]:
        """Per projection the weights (nA, one per connection) the chip realises in model
        terms: chip integer / resolution x the post neuron's target threshold current.
        This is what ``Projection.get("weight")`` should return on this backend (for
        connections that meet on one synapse, see :meth:`chip_weights`). Keys as in
        :meth:`chip_weights`."""
        out = {}
        for key, proj in zip(self._projection_keys(graph), graph.projections):
            post = graph.populations[proj.post]
            c_target = post.threshold_current()[proj.post_index]
            out[key] = chip_to_model(model_to_chip(proj.weight / c_target, self.config),
                                     self.config) * c_target
        return out

    def realise_weight_array(self, weight_nA: np.ndarray, threshold_current_nA: np.ndarray) -> np.ndarray:
        """Elementwise version for the PyNN layer: weights (nA) onto neurons with the given
        target threshold currents (nA, broadcastable) -> realised weights (nA)."""
        c = np.asarray(threshold_current_nA, dtype=np.float64)
        w = np.asarray(weight_nA, dtype=np.float64)
        return chip_to_model(model_to_chip(w / c, self.config), self.config) * c

    def _effective_graph(self, graph: NetworkGraph, offsets: Dict[str, int]) -> Tuple[NetworkGraph, int]:
        """A copy of the graph whose weights are what the analog chip applies (nA)."""
        factors = self.chip.neuron_factors()
        eff = copy.copy(graph)
        clipped = 0
        resolution = self.config.weight_resolution
        new_of: Dict[int, object] = {}
        for label in offsets:
            slots_of, _ = self._input_slots(graph, label)
            projections = list(graph.incoming(label))
            post = graph.populations[label]
            sizes = [p.weight.size for p in projections]
            slot = np.concatenate([slots_of[id(p)] for p in projections] + [np.zeros(0, np.int64)])
            post_index = np.concatenate([p.post_index for p in projections] + [np.zeros(0, np.int64)])
            c_target = post.threshold_current()[post_index]
            weight_na = np.concatenate([p.weight for p in projections] + [np.zeros(0)])
            model = weight_na / c_target
            negative = model < 0
            if resolution is None:
                ints = model_to_chip(model, self.config)
                realised = weight_na  # infinite resolution: the requested weight bit for bit
            else:
                # one synapse per (signed input, neuron, sign): what meets there adds up
                # before it is stored in 6 bits; the group's first connection carries it
                synapse = (slot * post.size + post_index) * 2 + negative
                unique, inverse = np.unique(synapse, return_inverse=True)
                total = np.zeros(unique.size)
                np.add.at(total, inverse, model)
                clipped += int(np.sum(np.abs(total * resolution) > self.config.max_weight_int + 0.5))
                first = np.full(unique.size, model.size, dtype=np.int64)
                np.minimum.at(first, inverse, np.arange(model.size))
                carries = np.zeros(model.size, dtype=bool)
                carries[first] = True
                ints = np.where(carries, model_to_chip(total, self.config)[inverse], 0.0)
                realised = chip_to_model(ints, self.config) * c_target
            neuron = self.circuits[offsets[label] + post_index]
            rows = 2 * slot + (ints < 0)
            gain = factors["column_gain"][neuron] * self.chip.synapse_gain(rows, neuron)
            weights = realised * gain
            start = 0
            for proj, size in zip(projections, sizes):
                new = copy.copy(proj)
                new.weight = weights[start:start + size]
                start += size
                new_of[id(proj)] = new
        eff.projections = [new_of.get(id(p), p) for p in graph.projections]
        if clipped and not self._warned_clipping:  # once: the count changes from run to run
            self._warned_clipping = True
            warnings.warn(
                f"{clipped} chip synapse weight(s) exceed the 6-bit range (|w| <= "
                f"{self.config.max_weight_int / resolution:g} threshold currents of the target "
                f"neuron) and were clipped to +-{self.config.max_weight_int} (reported once; "
                f"TrialResult.info['clipped_weights'] counts them per run)", RuntimeWarning,
                stacklevel=3)
        return eff, clipped

    # ---------------------------------------------------------------- running
    def _neuron_parameters(self, pop: PopulationSpec, offset: int):
        f = self.chip.neuron_factors()
        idx = self.circuits[offset:offset + pop.size]
        as_t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=self.dtype, device=self.device)
        tau_syn = as_t(pop.params["tau_syn"] * f["tau_syn"][idx])
        tau_mem = as_t(pop.params["tau_m"] * f["tau_mem"][idx])
        threshold = as_t(pop.threshold_current() * f["threshold"][idx])
        return tau_syn, tau_mem, threshold, f["dead"][idx]

    def run(
        self,
        graph: NetworkGraph,
        trial_input: TrialInput,
        sample_times_ms: Optional[np.ndarray] = None,
        record_v: Sequence[str] = (),
    ) -> TrialResult:
        order = graph.topological_order()
        offsets = self.placement(graph)
        for label in offsets:
            self._check_time_constants(label, graph.populations[label])
        eff, clipped = self._effective_graph(graph, offsets)
        n_trials = trial_input.n_trials
        events: Dict[str, torch.Tensor] = {}
        first_spikes: Dict[str, np.ndarray] = {}
        potentials: Dict[str, np.ndarray] = {}
        input_spikes = 0
        for label in order:
            pop = graph.populations[label]
            if pop.kind == SOURCE:
                spikes = source_events(trial_input, pop, self.dtype, self.device)
                input_spikes += int(torch.isfinite(spikes).sum())
                # the FPGA releases input events on its clock
                events[label] = self.chip.timestamp(spikes)
                continue
            if pop.kind != LIF:
                raise ValueError(f"population {label!r} has unknown kind {pop.kind!r}")
            times, weights = compile_layer_inputs(eff, label, events, self.dtype, self.device)
            tau_syn, tau_mem, threshold, dead = self._neuron_parameters(pop, offsets[label])
            ratio = (tau_mem / tau_syn).double()
            closed_form = (not self.config.noise) and bool(
                torch.stack([(ratio - r).abs() <= 1e-9 * r for r in SUPPORTED_RATIOS]).any(0).all())
            if closed_form:
                # the software substrate's own solver: bit-identical when nothing deviates
                like = torch.zeros((), dtype=self.dtype, device=self.device)
                params = layer_parameters(tau_syn, tau_mem, threshold, pop.size, like)
                out = solve_first_spike_times(times, weights, params)
            else:
                per_trial = self.chip.noisy_threshold(threshold, n_trials, self._noise_rng)
                out = solve_first_spike_times_general(times, weights, tau_syn, tau_mem, per_trial)
                out = self.chip.add_output_noise(out, tau_syn, self._noise_rng)
            if dead.any():
                out[:, torch.as_tensor(dead, device=out.device)] = float("inf")
            events[label] = out.unsqueeze(2)
            first_spikes[label] = self.chip.timestamp(out).double().cpu().numpy()
            if label in record_v and sample_times_ms is not None:
                v = membrane_potential(
                    times, weights,
                    torch.as_tensor(sample_times_ms, dtype=self.dtype, device=self.device),
                    tau_syn, tau_mem,
                ).double().cpu().numpy()
                # scaled so that the chip's own threshold reads as v_thresh
                swing = pop.params["v_thresh"] - pop.params["v_rest"]
                potentials[label] = pop.params["v_rest"] + v / threshold.double().cpu().numpy() * swing
        info = self._chip_time(graph, offsets, n_trials)
        lif_spikes = int(sum(np.isfinite(t).sum() for t in first_spikes.values()))
        info.update({
            "n_trials": float(n_trials),
            "lif_spikes": float(lif_spikes),
            "input_spikes": float(input_spikes),
            "spikes_per_trial": lif_spikes / n_trials if n_trials else 0.0,
            "clipped_weights": float(clipped),
            "chip_seed": float(self.chip_seed),
            "calibrated": float(self.chip.calibrated),
        })
        return TrialResult(first_spikes, potentials if record_v else None, info)

    def _chip_time(self, graph: NetworkGraph, offsets: Dict[str, int], n_trials: int) -> Dict[str, float]:
        scale = 1000.0 / self.config.acceleration
        tau_s_us = max((float(np.max(graph.populations[k].params["tau_syn"])) * scale for k in offsets),
                       default=0.0)
        trial_us = self.config.trial_duration_tau_s * tau_s_us
        per_trial_us = trial_us + self.config.overhead_per_trial_us
        total_us = n_trials * per_trial_us + self.config.overhead_per_run_us
        self.total_chip_time_s += total_us * 1e-6
        self.total_trials += n_trials
        return {
            "chip_time_per_trial_us": per_trial_us,
            "chip_time_s": total_us * 1e-6,
            "emulated_wall_time_s": total_us * 1e-6,
            "total_chip_time_s": self.total_chip_time_s,
            # energy = power x chip time (ChipConfig.chip_power_w / system_power_w, sourced)
            "chip_energy_per_trial_uj": self.config.chip_power_w * per_trial_us,
            "system_energy_per_trial_uj": self.config.system_power_w * per_trial_us,
        }
