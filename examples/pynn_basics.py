"""A plain PyNN script: populations, connectors, recording, a PNG of spikes and membrane
traces. Runs on pynn_ttfs (default) or, changing only the import and the neuron model, on
pyNN.nest:

    python examples/pynn_basics.py                      # import pynn_ttfs as sim
    python examples/pynn_basics.py --simulator nest     # import pyNN.nest as sim

Three trials (samples) go through one run(): each trial is ``trial_duration`` ms long and
starts from rest (see pynn_ttfs.trials). On NEST, IF_curr_exp with v_reset = v_rest and a
refractory period covering the trial gives the same single first spike per trial.
"""
import argparse

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pynn_ttfs import trials  # noqa: E402  (backend-agnostic helpers)

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--simulator", choices=["ttfs", "nest"], default="ttfs")
parser.add_argument("--output", default=None, help="PNG path (default pynn_basics_<simulator>.png)")
args = parser.parse_args()

# --- the only two lines that differ between backends --------------------------------------
neuron = dict(tau_m=10.0, tau_syn_E=5.0, tau_syn_I=5.0, cm=1.0, v_rest=-65.0, v_thresh=-63.0)
active_window = 30.0  # ms: inputs and first spikes of interest
layout = trials.nest_trial_layout(active_window, tau_syn=5.0, tau_m=10.0)
trial_duration = layout["trial_duration"]
if args.simulator == "ttfs":
    import pynn_ttfs as sim
    sim.setup(timestep=0.01, min_delay=0.1, trial_duration=trial_duration)
    celltype = sim.IF_curr_exp_ttfs(**neuron)
else:
    import pyNN.nest as sim
    sim.setup(timestep=0.01, min_delay=0.1)
    celltype = sim.IF_curr_exp(**trials.nest_cell_parameters(neuron, active_window))

# --- network -----------------------------------------------------------------------------
rng = np.random.default_rng(1)
input_times = np.round(rng.uniform(0.0, 10.0, size=(3, 8)), 2)  # 3 trials x 8 inputs, ms
input_times[rng.uniform(size=input_times.shape) < 0.25] = np.inf  # some inputs stay silent
inputs = sim.Population(8, sim.SpikeSourceArray(
    spike_times=trials.spike_times_for_trials(input_times, trial_duration)), label="inputs")
hidden = sim.Population(10, celltype, label="hidden")
output = sim.Population(3, celltype, label="output")

sim.Projection(inputs, hidden, sim.FixedProbabilityConnector(0.7, rng=sim.NumpyRNG(seed=2)),
               sim.StaticSynapse(weight=sim.RandomDistribution("uniform", (0.2, 1.2), rng=sim.NumpyRNG(seed=3)),
                                 delay=0.5), receptor_type="excitatory")
sim.Projection(hidden, output, sim.AllToAllConnector(),
               sim.StaticSynapse(weight=np.linspace(0.2, 0.6, 30).reshape(10, 3), delay=0.2))
sim.Projection(inputs[0:3], output, sim.OneToOneConnector(),  # a skip connection, inhibitory
               sim.StaticSynapse(weight=-0.3, delay=0.1), receptor_type="inhibitory")

hidden.record("spikes")
output.record(["spikes", "v"])
sim.run(trial_duration * len(input_times))

# --- results ------------------------------------------------------------------------------
n_trials = len(input_times)
hidden_first = trials.first_spike_times(hidden.get_data("spikes"), n_trials, trial_duration, hidden.size)
output_data = output.get_data().segments[0]
output_first = trials.first_spike_times(output_data, n_trials, trial_duration, output.size)
np.set_printoptions(precision=3, suppress=True)
print(f"simulator: {args.simulator}; trial duration {trial_duration} ms")
print("output first-spike times per trial (ms from trial start, inf = silent):")
print(output_first)
print("hidden neurons firing per trial:", np.isfinite(hidden_first).sum(axis=1))

# one column per trial, zoomed on its active window (the gap after it is silent)
fig, axes = plt.subplots(2, n_trials, figsize=(4 * n_trials, 6), sharey="row", squeeze=False)
hidden_trains = hidden.get_data("spikes").segments[0].spiketrains
signal = output_data.analogsignals[0]
times = signal.times.rescale("ms").magnitude
for k in range(n_trials):
    start = k * trial_duration
    ax_spikes, ax_v = axes[0, k], axes[1, k]
    for row, train in enumerate(hidden_trains):
        ax_spikes.plot(train.magnitude - start, np.full(len(train), row), "|", color="tab:blue", markersize=8)
    for row, train in enumerate(output_data.spiketrains):
        ax_spikes.plot(train.magnitude - start, np.full(len(train), hidden.size + row), "|",
                       color="tab:red", markersize=8)
    window = (times >= start) & (times <= start + active_window)
    for column in range(signal.shape[1]):
        ax_v.plot(times[window] - start, signal.magnitude[window, column], label=f"output {column}")
    ax_v.axhline(neuron["v_thresh"], color="gray", linestyle="--", linewidth=0.8)
    ax_spikes.set_xlim(0, active_window)
    ax_v.set_xlim(0, active_window)
    ax_spikes.set_title(f"trial {k} ({args.simulator})")
    ax_v.set_xlabel("time from trial start (ms)")
axes[0, 0].set_ylabel("neuron (hidden blue, output red)")
axes[1, 0].set_ylabel("output v (mV)")
axes[1, -1].legend(loc="lower right")
output_path = args.output or f"pynn_basics_{args.simulator}.png"
fig.tight_layout()
fig.savefig(output_path, dpi=100)
print("saved", output_path)
sim.end()
