"""Train a Yin-Yang classifier in the loop, as a plain PyNN script.

The network is built with the PyNN API; every training batch runs as trials through
``sim.run`` on the chosen backend, the recorded first spikes come back through
``get_data()``, exact gradients are evaluated at them and the new weights are written back
with ``Projection.set``. Change ONE line to change the substrate:

    sim.setup(..., backend="software")   # exact software substrate (default)
    sim.setup(..., backend="bss2")       # emulated BrainScaleS-2 chip
    import pyNN.nest as sim              # NEST: see yinyang_train_nest.py (its neuron model)

    python examples/yinyang_train.py --epochs 20
"""
import argparse

import numpy as np

import pynn_ttfs as sim
from pynn_ttfs.training import improved_recipe, load_dataset, pynn_trainer
from pynn_ttfs.training.cli import BSS2_MAX_WEIGHT, BSS2_MIN_SLOPE

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--epochs", type=int, default=20)
parser.add_argument("--backend", default="software", help="software or bss2")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

TAU = 5.0  # ms: tau_syn = tau_m, the model's time unit
TRIAL = 180.0  # ms per trial (one sample)
C = 1.0 / TAU * 15.0  # nA: threshold current c = cm / tau_m * (v_thresh - v_rest)

sim.setup(timestep=0.1, min_delay=0.1, trial_duration=TRIAL, backend=args.backend)
cell = sim.IF_curr_exp_ttfs(tau_m=TAU, tau_syn_E=TAU, tau_syn_I=TAU, cm=1.0, v_rest=-65.0,
                            v_thresh=-50.0)
inputs = sim.Population(4, sim.SpikeSourceArray(spike_times=[]), label="input")
hidden = sim.Population(120, cell, label="hidden")
output = sim.Population(3, cell, label="output")
# bias: one extra input spike at 0.9 tau_s in every trial, for each layer
bias = sim.Population(1, sim.SpikeSourceArray(spike_times=[0.9 * TAU]), label="bias")

rng = sim.NumpyRNG(seed=args.seed)


def normal(mean, std):  # initial weights in nA (the recipe gives them in units of c)
    return sim.RandomDistribution("normal", mu=mean * C, sigma=std * C, rng=rng)


synapse = dict(delay=0.1)
projections = [
    sim.Projection(inputs, hidden, sim.AllToAllConnector(), sim.StaticSynapse(weight=normal(1.5, 0.8), **synapse)),
    sim.Projection(bias, hidden, sim.AllToAllConnector(), sim.StaticSynapse(weight=normal(1.5, 0.8), **synapse)),
    sim.Projection(hidden, output, sim.AllToAllConnector(), sim.StaticSynapse(weight=normal(0.5, 0.8), **synapse)),
    sim.Projection(bias, output, sim.AllToAllConnector(), sim.StaticSynapse(weight=normal(0.5, 0.8), **synapse)),
]

data = load_dataset("yinyang")
chip = {}
if args.backend == "bss2":
    # the chip holds |w| <= 63/30 threshold currents: the float weights stay inside, from
    # the start; and no gradient where the model's membrane is flat or falling at a
    # recorded time (the chip's neurons differ from the model; see Recipe.min_slope)
    chip = {"weight_clip": BSS2_MAX_WEIGHT, "min_slope": BSS2_MIN_SLOPE}
    for projection in projections:
        limit = BSS2_MAX_WEIGHT * C
        projection.set(weight=np.clip(projection.get("weight", format="array"), -limit, limit))
trainer = pynn_trainer(sim, inputs, projections, improved_recipe("yinyang", epochs=args.epochs,
                                                                 seed=args.seed, **chip))
for epoch in range(args.epochs):
    metrics = trainer.train_epoch(data.train, val_split=data.val)
    print(f"epoch {metrics.epoch:3d}  loss {metrics.train_loss:.4f}  train {100 * metrics.train_accuracy:.1f} %"
          f"  validation {100 * metrics.val_accuracy:.1f} %  ({metrics.seconds:.1f} s)")
# the improved recipe tests the weights of the best validation epoch
tested = trainer.use_best_weights() if trainer.recipe.select_best_val else trainer.epoch
test = trainer.evaluate(data.test).summary()
print(f"test accuracy {100 * test['accuracy']:.2f} % (weights of epoch {tested}), first output spike after "
      f"{test['mean_first_output_time'] * TAU:.2f} ms on average")
print("trained hidden weights (nA), first row:",
      np.round(projections[0].get("weight", format="array")[0, :5], 3))
sim.end()
