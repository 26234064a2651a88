"""Train a 256-128-10 network on 16x16 MNIST in the loop, as a plain PyNN script.

Needs the four MNIST IDX files (``.gz`` or raw) in a directory: ``--data-dir DIR`` or the
environment variable PYNN_TTFS_MNIST_DIR (torchvision's ``DIR/MNIST/raw`` layout works too).
Pixels are inverted into spike times (bright = early); pure-black pixels do not spike.
The whole published run (200 epochs on 50000 images) is ``pynn-ttfs train mnist16
--recipe published``, the improved one (150 epochs, cosine schedule, loss xi 0.1, batch
100) ``pynn-ttfs train mnist16`` (both on the direct engine path); this script shows the
PyNN round trip on a subset:

    python examples/mnist16_train.py --data-dir ../shared/data/mnist --epochs 2 --train-size 5000
"""
import argparse

import numpy as np

import pynn_ttfs as sim
from pynn_ttfs.training import improved_recipe, load_dataset, pynn_trainer
from pynn_ttfs.training.cli import BSS2_MAX_WEIGHT, BSS2_MIN_SLOPE

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--data-dir")
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--train-size", type=int, default=5000)
parser.add_argument("--backend", default="software", help="software or bss2")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

TAU = 5.0  # ms: tau_syn = tau_m, the model's time unit
C = 1.0 / TAU * 15.0  # nA: threshold current c = cm / tau_m * (v_thresh - v_rest)

data = load_dataset("mnist16", data_dir=args.data_dir,
                    sizes={"train": args.train_size, "val": 2000, "test": 10000})
sim.setup(timestep=0.1, min_delay=0.1, trial_duration=180.0, backend=args.backend)
cell = sim.IF_curr_exp_ttfs(tau_m=TAU, tau_syn_E=TAU, tau_syn_I=TAU, cm=1.0, v_rest=-65.0,
                            v_thresh=-50.0)
pixels = sim.Population(256, sim.SpikeSourceArray(spike_times=[]), label="pixels")
hidden = sim.Population(128, cell, label="hidden")
digits = sim.Population(10, cell, label="digits")
rng = sim.NumpyRNG(seed=args.seed)


def normal(mean, std):  # initial weights in nA (recipe: units of the threshold current c)
    return sim.RandomDistribution("normal", mu=mean * C, sigma=std * C, rng=rng)


projections = [
    sim.Projection(pixels, hidden, sim.AllToAllConnector(),
                   sim.StaticSynapse(weight=normal(0.1, 0.4), delay=0.1)),
    sim.Projection(hidden, digits, sim.AllToAllConnector(),
                   sim.StaticSynapse(weight=normal(0.6, 0.8), delay=0.1)),
]
chip = {}
if args.backend == "bss2":  # the chip's weight range and the slope floor, as in the CLI
    chip = {"weight_clip": BSS2_MAX_WEIGHT, "min_slope": BSS2_MIN_SLOPE}
    for projection in projections:
        limit = BSS2_MAX_WEIGHT * C
        projection.set(weight=np.clip(projection.get("weight", format="array"), -limit, limit))
trainer = pynn_trainer(sim, pixels, projections,
                       improved_recipe("mnist16", epochs=args.epochs, seed=args.seed, **chip))
for epoch in range(args.epochs):
    metrics = trainer.train_epoch(data.train, val_split=data.val)
    print(f"epoch {metrics.epoch}  loss {metrics.train_loss:.4f}  train {100 * metrics.train_accuracy:.1f} %"
          f"  validation {100 * metrics.val_accuracy:.1f} %  ({metrics.seconds:.0f} s)")
# the improved recipe tests the weights of the best validation epoch
tested = trainer.use_best_weights() if trainer.recipe.select_best_val else trainer.epoch
test = trainer.evaluate(data.test).summary()
print(f"test accuracy {100 * test['accuracy']:.2f} % (weights of epoch {tested}), "
      f"{test['spikes_per_classification']:.0f} spikes "
      f"and {test['mean_first_output_time'] * TAU:.2f} ms to the first output spike per image")
sim.end()
