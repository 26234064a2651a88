"""Yin-Yang trained in the loop on the emulated BrainScaleS-2 chip, as a plain PyNN script.

The network is built with the PyNN API; the only BSS-2 specific line is ``sim.setup(...,
backend="bss2", chip_seed=...)`` — remove ``backend``/``chip_seed`` and the very same script
trains on the exact software substrate. Each training step runs the batch on the chip
(quantised weights, fixed-pattern variation, noise, 8 ns time stamps), reads the recorded
first spikes back through neo, computes the exact gradients at those times and writes the
updated weights back with ``Projection.set`` (the chip re-quantises them).

    python examples/bss2_yinyang.py --epochs 5 --train-subset 1000     # a few minutes on 2 cores
    python examples/bss2_yinyang.py --backend software                 # the same, in software
"""
import argparse
import time

import torch

import pynn_ttfs as sim
from pynn_ttfs.training.datasets import load_yinyang
from pynn_ttfs.training.model import build_model
from pynn_ttfs.training.pynn_loop import PyNNForward, PyNNNetwork, build_network
from pynn_ttfs.training.recipe import published_recipe
from pynn_ttfs.training.trainer import Trainer

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--backend", default="bss2", choices=["bss2", "software"])
parser.add_argument("--chip-seed", type=int, default=0, help="which emulated chip")
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--train-subset", type=int, default=1000, help="training samples (0 = all 5000)")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

TAU_SYN_MS = 6.0  # 6 µs of chip time at the chip's 1000x speed-up
TRIAL_MS = 30 * TAU_SYN_MS  # one sample occupies 30 tau_s

data = load_yinyang()
train = data.train.subset(args.train_subset) if args.train_subset else data.train
# weight_clip: the chip holds |w| <= 63/30; min_slope: no gradient where the model's membrane is
# flat or falling at a time the chip recorded (its neurons differ from the model; see Recipe)
recipe = published_recipe("yinyang", epochs=args.epochs, weight_clip=2.1, min_slope=0.1, seed=args.seed)
model = build_model([data.n_inputs, *recipe.hidden, data.n_classes], recipe.weight_mean, recipe.weight_std,
                    recipe.bias_times, torch.Generator().manual_seed(args.seed))

options = {"backend": "bss2", "chip_seed": args.chip_seed} if args.backend == "bss2" else {}
sim.setup(timestep=0.1, trial_duration=TRIAL_MS, **options)  # <- the one line that picks the chip
inputs, populations, projections, biases = build_network(sim, model, tau_syn_ms=TAU_SYN_MS, delay_ms=0.0,
                                                         trial_duration=TRIAL_MS)
network = PyNNNetwork(sim, inputs, projections, trial_duration=TRIAL_MS)
trainer = Trainer(model, recipe, forward=PyNNForward(network, model))

print(f"backend {args.backend}: test accuracy before training {trainer.evaluate(data.test).accuracy:.3f}")
for epoch in range(args.epochs):
    start = time.perf_counter()
    metrics = trainer.train_epoch(train)
    print(f"epoch {epoch + 1}: train loss {metrics.train_loss:.3f}, train accuracy "
          f"{metrics.train_accuracy:.3f} ({time.perf_counter() - start:.1f} s)")
evaluation = trainer.evaluate(data.test)
summary = evaluation.summary()
print(f"test accuracy {evaluation.accuracy:.3f}; {summary['spikes_per_classification']:.1f} spikes per "
      f"classification; decision after {summary['mean_first_output_time'] * TAU_SYN_MS:.1f} µs chip time")
substrate = sim.simulator.state.get_substrate()
if substrate.name == "bss2":
    print(f"chip {substrate.chip_seed}: {substrate.total_trials} trials, "
          f"{substrate.total_chip_time_s * 1e3:.1f} ms of emulated chip time in total")
sim.end()
