"""Train a Yin-Yang classifier in the loop with the forward pass on NEST.

The same script as yinyang_train.py with the import line changed to ``pyNN.nest`` and
NEST's ``IF_curr_exp`` in place of ``IF_curr_exp_ttfs``: NEST has no trial boundaries, so
the trial layout of :mod:`pynn_ttfs.trials` (a refractory period covering the trial, a
silent gap for the currents to decay) makes every trial start from rest with one spike
per neuron. The recorded (0.1 ms-grid) spike times drive the exact gradients.
NEST is slow for this (many short trials): a few epochs on a subset show it learning.

    python examples/yinyang_train_nest.py --epochs 3 --train-size 600
"""
import argparse

import numpy as np

import pyNN.nest as sim

from pynn_ttfs import trials
from pynn_ttfs.training import improved_recipe, load_dataset, pynn_trainer

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--train-size", type=int, default=600)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

TAU = 5.0  # ms: tau_syn = tau_m, the model's time unit
TRIAL = 180.0  # ms per trial (one sample)
C = 1.0 / TAU * 15.0  # nA: threshold current c = cm / tau_m * (v_thresh - v_rest)

GAP = trials.DECAY_GAP_TAUS * TAU  # silent gap: currents and membrane back at rest
WINDOW = (TRIAL - GAP) / 2  # every first spike of interest lies in this window

sim.setup(timestep=0.1, min_delay=0.1)
cell = sim.IF_curr_exp(**trials.nest_cell_parameters(
    dict(tau_m=TAU, tau_syn_E=TAU, tau_syn_I=TAU, cm=1.0, v_rest=-65.0, v_thresh=-50.0),
    WINDOW, gap=GAP))
inputs = sim.Population(4, sim.SpikeSourceArray(spike_times=[]), label="input")
hidden = sim.Population(120, cell, label="hidden")
output = sim.Population(3, cell, label="output")
# bias: one extra input spike at 0.9 tau_s in every trial, for each layer
bias = sim.Population(1, sim.SpikeSourceArray(spike_times=[0.9 * TAU]), label="bias")


def connect(pre, post, mean, std):
    """All-to-all, initial weights in nA (the recipe gives them in units of c). PyNN refuses
    mixed signs when connecting, so the signed weights are set right after."""
    projection = sim.Projection(pre, post, sim.AllToAllConnector(),
                                sim.StaticSynapse(weight=0.0, delay=0.1))
    projection.set(weight=rng.normal(mean * C, std * C, (pre.size, post.size)))
    return projection


rng = np.random.default_rng(args.seed)
projections = [connect(inputs, hidden, 1.5, 0.8), connect(bias, hidden, 1.5, 0.8),
               connect(hidden, output, 0.5, 0.8), connect(bias, output, 0.5, 0.8)]

data = load_dataset("yinyang", sizes={"train": args.train_size, "val": 200, "test": 500})
trainer = pynn_trainer(sim, inputs, projections,
                       improved_recipe("yinyang", epochs=args.epochs, seed=args.seed, lr=0.02),
                       trial_duration=TRIAL)
for epoch in range(args.epochs):
    metrics = trainer.train_epoch(data.train, val_split=data.val)
    print(f"epoch {metrics.epoch:3d}  loss {metrics.train_loss:.4f}  train {100 * metrics.train_accuracy:.1f} %"
          f"  validation {100 * metrics.val_accuracy:.1f} %  ({metrics.seconds:.1f} s)")
test = trainer.evaluate(data.test).summary()
print(f"test accuracy {100 * test['accuracy']:.2f} %, first output spike after "
      f"{test['mean_first_output_time'] * TAU:.2f} ms on average")
sim.end()
