"""Hardware results on the emulated BrainScaleS-2 chip (issue 5 "Results").

For each chip seed: a network trained in software (engine, exact) is deployed to the chip
(weights quantised, fixed pattern, noise) and evaluated there ("software-trained,
deployed"); then it is trained in the loop on that chip — the forward pass runs through the
PyNN API on ``backend="bss2"``, gradients come from the recorded times — and evaluated again
("in-the-loop"). Optional robustness sweeps vary one chip property at a time (weight bits,
spike jitter, threshold fixed-pattern spread, dead neurons) on chip seed 0.

Also reported: emulated chip time per classification, the images/s that implies, spikes
per classification, mean decision time (first output spike) and an energy estimate per
classification = power x chip time per classification, for the ASIC alone and for the whole
system. The powers default to ChipConfig's sourced figures (0.696 W ASIC = 192 µJ / 276 µs
and 5.6 W system, measured by Stradmann et al., IEEE OJCAS 2022, on the BrainScaleS-2
mobile system in analog-inference mode; see backends/bss2/config.py) and can be changed
with --chip-power-w / --system-power-w; the published anchors (ttfs-reference.md
section 4) are printed beside it.

Run short:  python benchmarks/hardware.py --short
Full:       python benchmarks/hardware.py --sw-recipe improved --hil-recipe published --sw-epochs 300 \
              --hil-epochs 60 --hil-lr 0.0007 --hil-schedule cosine --hil-set "max_silent_fraction=[0.3, 0.05]" \
              --hil-set min_slope=0.1 --select-on-val   (the README row)
Sweeps:     python benchmarks/hardware.py --no-chips --sweeps --reuse-software [--sweep-only "dead neuron fraction"]
MNIST:      python benchmarks/hardware.py --dataset mnist16 --data-dir DIR --sw-recipe improved (256-246-10)
Writes OUT/hardware.json, OUT/hardware.md (table) and, with --sweeps, OUT/robustness.png.
"""
from __future__ import annotations

import argparse
import math
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch

import pynn_ttfs as sim
from pynn_ttfs.backends.bss2 import ChipConfig
from pynn_ttfs.training.cli import json_text
from pynn_ttfs.training.datasets import Dataset, Split, load_dataset
from pynn_ttfs.training.model import TTFSModel
from pynn_ttfs.training.pynn_loop import PyNNForward, PyNNNetwork, build_network
from pynn_ttfs.training.recipe import improved_recipe, parse_overrides, published_recipe
from pynn_ttfs.training.trainer import DTYPES, Trainer

PUBLISHED = {
    "yinyang_hardware_accuracy": "95.0 +- 0.9 % (BSS-2, paper)",
    "yinyang_software_accuracy": "95.9 +- 0.7 % (paper)",
    "mnist16_hardware_accuracy": "96.9 +- 0.1 % (BSS-2, paper, 256-246-10)",
    "mnist16_software_accuracy": "97.2 +- 0.1 % (paper, 256-246-10)",
    "speed": "paper: tens of thousands of images/s at a few µJ per image (chip); later demo: "
             "10000 MNIST test images in 1.09 s end to end (~9.2 k images/s)",
}
POWER_SOURCE = ("Stradmann et al., IEEE OJCAS 3, 252 (2022), BrainScaleS-2 mobile system: "
                "192 µJ ASIC energy per 276 µs sample, 5.6 W system; analog-inference mode")
TAU_SYN_MS = 6.0  # model tau_s = 6 ms -> 6 µs of chip time at 1000x (published)


def duplicate_inputs(data, copies: int):
    """Each input feature repeated ``copies`` times (adjacent), as on the real chip, where one
    input's 6-bit weight (|w| <= 2.1) is too weak to drive a neuron alone."""
    if copies == 1:
        return data
    def split(s):
        return Split(np.repeat(s.values, copies, axis=1), np.repeat(s.times, copies, axis=1), s.labels)
    return Dataset(data.name, split(data.train), split(data.val), split(data.test), data.n_classes)


def log(*args):
    print(time.strftime("%H:%M:%S"), *args, flush=True)


def chip_forward(model: TTFSModel, chip_seed: int, trial_duration: float, calibration_dir: str,
                 chip_config: ChipConfig, calibration: str = "auto"):
    """Set up pynn_ttfs on the emulated chip and build ``model``'s network there
    (``calibration``: "auto" = the chip's cached calibration, "none" = the raw chip)."""
    sim.setup(timestep=0.1, trial_duration=trial_duration, backend="bss2", chip_seed=chip_seed,
              calibration=calibration, calibration_dir=calibration_dir, chip_config=chip_config)
    inputs, _, projections, _ = build_network(sim, model, tau_syn_ms=TAU_SYN_MS, delay_ms=0.0,
                                              trial_duration=trial_duration)
    network = PyNNNetwork(sim, inputs, projections, trial_duration=trial_duration)
    return PyNNForward(network, model), network


def evaluate(trainer: Trainer, split, forward) -> dict:
    trainer.forward = forward
    substrate = sim.simulator.state.get_substrate() if forward is not None and hasattr(forward, "network") else None
    before = substrate.total_chip_time_s if substrate is not None else 0.0
    trials_before = substrate.total_trials if substrate is not None else 0
    evaluation = trainer.evaluate(split, batch_size=1000)
    out = evaluation.summary()
    if substrate is not None:
        n = substrate.total_trials - trials_before
        out["chip_time_per_classification_us"] = (substrate.total_chip_time_s - before) / max(n, 1) * 1e6
    return out


def train_software(recipe, data, epochs, log_every=25):
    trainer = Trainer.for_dataset(recipe, data.n_inputs, data.n_classes)
    train, val = data.training_splits(recipe.train_on_val)
    for epoch in range(epochs):
        metrics = trainer.train_epoch(train, val_split=val if recipe.select_best_val else None)
        if (epoch + 1) % log_every == 0 or epoch + 1 == epochs:
            log(f"software epoch {epoch + 1}/{epochs}: train acc {metrics.train_accuracy:.3f}")
    if recipe.select_best_val and epochs:  # the weights of the best validation epoch
        log(f"software: keeping epoch {trainer.use_best_weights()} (best validation accuracy)")
    return trainer


def in_the_loop(model: TTFSModel, recipe, data, chip_seed, epochs, train_subset, trial_duration,
                calibration_dir, chip_config, label="", select_on_val=False, average_from=0,
                calibration="auto"):
    """Deploy ``model`` (a copy) on the chip, evaluate, train in the loop, evaluate.

    ``average_from`` N > 0: the tested weights are the mean of the weights at the end of
    epochs N..last (stochastic weight averaging: on a noisy chip the iterates scatter
    around a plateau, and their mean sits nearer its centre than any one of them)."""
    model = model_as(model, DTYPES[recipe.dtype])
    forward, _ = chip_forward(model, chip_seed, trial_duration, calibration_dir, chip_config,
                              calibration)
    trainer = Trainer(model, recipe, forward=forward)
    deployed = evaluate(trainer, data.test, forward)
    train = data.train.subset(train_subset) if train_subset else data.train
    start = time.perf_counter()
    best = (trainer.evaluate(data.val).accuracy, copy.deepcopy(model.state_dict())) \
        if select_on_val else None
    averaged, n_averaged = None, 0
    for epoch in range(epochs):
        metrics = trainer.train_epoch(train)
        if average_from and epoch + 1 >= average_from:
            weights = [w.detach().clone() for w in model.parameters]
            averaged = weights if averaged is None else [a + w for a, w in zip(averaged, weights)]
            n_averaged += 1
        message = (f"{label} chip {chip_seed} in-the-loop epoch {epoch + 1}/{epochs}: train acc "
                   f"{metrics.train_accuracy:.3f} ({metrics.seconds:.1f} s, {metrics.bumped_batches} "
                   f"bumped batches)")
        if select_on_val:  # keep the weights with the best validation accuracy (on the chip)
            val = trainer.evaluate(data.val).accuracy
            message += f", val acc {val:.3f}"
            if val > best[0]:
                best = (val, copy.deepcopy(model.state_dict()))
        log(message)
    if averaged is not None:
        with torch.no_grad():
            for parameter, total in zip(model.parameters, averaged):
                parameter.copy_(total / n_averaged)
        forward.write_weights()
        log(f"{label} chip {chip_seed}: testing the mean weights of epochs {average_from}-{epochs}")
    elif select_on_val and epochs:
        model.load_state_dict(best[1])
        forward.write_weights()
    train_seconds = time.perf_counter() - start
    trained = evaluate(trainer, data.test, forward) if epochs else deployed
    return deployed, trained, train_seconds


def model_as(model: TTFSModel, dtype: torch.dtype) -> TTFSModel:
    """A copy of ``model`` in ``dtype`` (the in-the-loop recipe's arithmetic may differ from
    the software network's, e.g. a float32-trained network fine-tuned in float64)."""
    state = model.state_dict()
    for key in ("weights", "tau_syn", "tau_mem", "threshold"):
        state[key] = [t.to(dtype) for t in state[key]]
    return TTFSModel.from_state_dict(state)


def parse_chip_changes(parser, items):
    """``KEY=VALUE`` texts -> ChipConfig field changes (values read as JSON numbers, booleans
    or lists); a malformed item or an unknown field is a command-line error naming it."""
    changes = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            parser.error(f"--chip-set needs KEY=VALUE, got {item!r}")
        try:
            changes[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            parser.error(f"--chip-set {key}: {text!r} is not a number, boolean or list")
    try:
        ChipConfig().replace(**changes)
    except (ValueError, TypeError) as error:
        parser.error(f"--chip-set: {error}")
    return changes


def summarise(values):
    """Mean and spread over chips; std is numpy's default (divides by n), as in every
    hardware.json written so far."""
    values = np.asarray(values, dtype=float)
    return {"mean": float(values.mean()), "std": float(values.std()), "values": values.tolist()}


SWEEP_PROPERTIES = ("weight bits", "spike jitter (tau_s)", "threshold spread (relative)",
                    "dead neuron fraction")


def sweep_configs(base: ChipConfig):
    """(property, x value, ChipConfig) for the robustness figure."""
    out = []
    for bits in (2, 3, 4, 6):  # magnitude bits; 6 = the chip's 0..63
        max_int = 2 ** bits - 1
        out.append(("weight bits", bits, base.replace(max_weight_int=max_int,
                                                      weight_resolution=max_int / base.max_weight_model)))
    for jitter in (0.0, 0.03, 0.1, 0.3):
        out.append(("spike jitter (tau_s)", jitter, base.replace(spike_jitter_tau_s=jitter)))
    for spread in (0.0, 0.031, 0.1, 0.2):
        out.append(("threshold spread (relative)", spread, base.replace(calibrated_threshold_spread=spread)))
    for dead in (0.0, 0.1, 0.2, 0.3):
        out.append(("dead neuron fraction", dead, base.replace(dead_fraction=dead)))
    return out


def plot_sweeps(records, path, title="Yin-Yang"):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(dict.fromkeys(r["property"] for r in records))
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.4))
    for ax, name in zip(np.atleast_1d(axes), names):
        rows = [r for r in records if r["property"] == name]
        x = [r["value"] for r in rows]
        ax.plot(x, [100 * r["deployed"] for r in rows], "o-", label="software-trained, deployed")
        ax.plot(x, [100 * r["in_the_loop"] for r in rows], "s-", label="in-the-loop")
        ax.set_xlabel(name)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.suptitle(f"{title} on the emulated BSS-2 (chip seed 0)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["yinyang", "mnist16"], default="yinyang",
                        help="yinyang: 4(x5)-120-3 with bias inputs; mnist16: 256-246-10 (the published chip network)")
    parser.add_argument("--data-dir", help="MNIST IDX directory (mnist16)")
    parser.add_argument("--hidden", type=int, help="hidden neurons (default 120 for yinyang, 246 for mnist16)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="chip seeds")
    parser.add_argument("--sw-epochs", type=int, help="software training epochs (default: the recipe's)")
    parser.add_argument("--sw-recipe", choices=["published", "improved"], default="published",
                        help="recipe of the software network (and of the in-the-loop steps unless --hil-recipe)")
    parser.add_argument("--hil-recipe", choices=["published", "improved"],
                        help="mechanics of the in-the-loop steps (bumping, arithmetic); default: "
                             "--sw-recipe's")
    parser.add_argument("--sw-weight-clip", type=float, default=2.1,
                        help="|w| limit during software training (the chip's range); 0 = none")
    parser.add_argument("--hil-epochs", type=int, default=20, help="in-the-loop epochs per chip")
    parser.add_argument("--hil-lr", type=float, default=0.002, help="in-the-loop learning rate")
    parser.add_argument("--hil-set", action="append", default=[], metavar="KEY=VALUE",
                        help="change a field of the in-the-loop recipe (repeatable), e.g. bump_skips_step=false")
    parser.add_argument("--hil-schedule", choices=["constant", "cosine"], default="constant",
                        help="in-the-loop learning rate: constant, or cosine decay to 0 over --hil-epochs")
    parser.add_argument("--train-subset", type=int, default=0, help="in-the-loop training samples (0 = all)")
    parser.add_argument("--duplicate", type=int,
                        help="copies of each input (default 5 for yinyang: the published chip runs "
                             "duplicated inputs; 1 for mnist16)")
    parser.add_argument("--trial-tau", type=float, default=30.0, help="trial duration in tau_s")
    parser.add_argument("--chip-power-w", type=float, default=ChipConfig.chip_power_w,
                        help="ASIC power (W) for the energy estimate (default: Stradmann et al. 2022)")
    parser.add_argument("--system-power-w", type=float, default=ChipConfig.system_power_w,
                        help="whole-system power (W) for the energy estimate (default: Stradmann et al. 2022)")
    parser.add_argument("--select-on-val", action="store_true",
                        help="in-the-loop (and control): keep the epoch with the best validation accuracy")
    parser.add_argument("--average-from", type=int, default=0, metavar="N",
                        help="in-the-loop: test the mean of the weights at the end of epochs N..last "
                             "(weight averaging; overrides --select-on-val)")
    parser.add_argument("--control", action="store_true",
                        help="also train the software network for --hil-epochs more epochs in software "
                             "and deploy it (the fair comparison for in-the-loop fine-tuning)")
    parser.add_argument("--sweeps", action="store_true", help="robustness sweeps on chip seed 0")
    parser.add_argument("--sweep-only", action="append", default=[], choices=SWEEP_PROPERTIES,
                        metavar="PROPERTY", help="rerun only this sweep (repeatable, e.g. 'dead neuron "
                        "fraction'); the other properties' points are kept from OUT/extra.json")
    parser.add_argument("--sweep-hil-epochs", type=int, default=3)
    parser.add_argument("--sweep-train-subset", type=int, default=1500)
    parser.add_argument("--reuse-software", action="store_true",
                        help="load OUT/software_model.pt instead of training the software network again")
    parser.add_argument("--no-chips", action="store_true", help="skip the per-chip rows (e.g. sweeps only)")
    parser.add_argument("--calibration-dir", default="bss2_calibration")
    parser.add_argument("--calibration", choices=["auto", "none"], default="auto",
                        help="the chips' per-chip calibration (auto: cached or measured) or none (raw chips)")
    parser.add_argument("--chip-set", action="append", default=[], metavar="KEY=VALUE",
                        help="change a ChipConfig field (repeatable), e.g. calibrated_tau_spread=0.15")
    parser.add_argument("--out", default="results/hardware")
    parser.add_argument("--short", action="store_true",
                        help="smoke run: 2 chips, 20 software epochs, 1 in-the-loop epoch on 600 samples")
    args = parser.parse_args(argv)
    if args.short:
        args.seeds, args.sw_epochs, args.hil_epochs, args.train_subset = args.seeds[:2], 20, 1, 600
        args.sweep_hil_epochs, args.sweep_train_subset = 1, 300
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    if args.duplicate is None:
        args.duplicate = 5 if args.dataset == "yinyang" else 1
    if args.hidden is None:
        args.hidden = 120 if args.dataset == "yinyang" else 246
    data = duplicate_inputs(load_dataset(args.dataset, data_dir=args.data_dir), args.duplicate)
    trial_duration = args.trial_tau * TAU_SYN_MS
    chip_config = ChipConfig(trial_duration_tau_s=args.trial_tau, **parse_chip_changes(parser, args.chip_set))
    clip = args.sw_weight_clip if args.sw_weight_clip > 0 else None
    recipes = {"improved": improved_recipe, "published": published_recipe}
    base = recipes[args.sw_recipe](args.dataset)
    if args.sw_epochs is None:
        args.sw_epochs = base.epochs
    if args.hil_recipe is None:
        args.hil_recipe = args.sw_recipe
    k = args.duplicate  # the k copies of an input together start like one published input

    def network_recipe(base):
        return base.replace(epochs=args.sw_epochs, weight_clip=clip, hidden=[args.hidden],
                            weight_mean=[base.weight_mean[0] / k, base.weight_mean[1]],
                            weight_std=[base.weight_std[0] / math.sqrt(k), base.weight_std[1]])
    recipe = network_recipe(base)
    log(f"software training: {args.sw_epochs} epochs, {args.sw_recipe} recipe (weight clip {clip})")
    start = time.perf_counter()
    saved = out_dir / "software_model.pt"
    if args.reuse_software and saved.exists():
        software = Trainer.for_dataset(recipe, data.n_inputs, data.n_classes)
        software.model.load_state_dict(torch.load(saved))
        log(f"software network loaded from {saved}")
        # loading took a moment; the training time is the one saved with this network
        software_timing = {"train_seconds": saved_train_seconds(saved),
                           "loaded_from": str(saved), "load_seconds": time.perf_counter() - start}
    else:
        software = train_software(recipe, data, args.sw_epochs)
        software_timing = {"train_seconds": time.perf_counter() - start}
        timing_path(saved).unlink(missing_ok=True)  # never left paired with another network
        torch.save(software.model.state_dict(), saved)
        # the training time travels with the network it belongs to (--reuse-software)
        timing_path(saved).write_text(json.dumps({"train_seconds": software_timing["train_seconds"]}))
    software_eval = software.evaluate(data.test).summary()
    log(f"software test accuracy {software_eval['accuracy']:.4f}")

    hil_base = network_recipe(recipes[args.hil_recipe](args.dataset))
    if args.hil_schedule == "cosine":  # decays over the in-the-loop epochs, to 0 at the last
        hil_recipe = hil_base.replace(lr=args.hil_lr, lr_schedule="cosine", lr_min=0.0,
                                      epochs=max(args.hil_epochs, 1))
    else:
        hil_recipe = hil_base.replace(lr=args.hil_lr, lr_step=10 ** 6)
    if args.hil_set:
        hil_recipe = hil_recipe.replace(**parse_overrides(args.hil_set))
    per_chip = []
    for seed in ([] if args.no_chips else args.seeds):
        deployed, trained, seconds = in_the_loop(
            software.model, hil_recipe, data, seed, args.hil_epochs, args.train_subset, trial_duration,
            args.calibration_dir, chip_config, select_on_val=args.select_on_val,
            average_from=args.average_from, calibration=args.calibration)
        log(f"chip {seed}: deployed {deployed['accuracy']:.4f} -> in-the-loop {trained['accuracy']:.4f}")
        per_chip.append({"chip_seed": seed, "deployed": deployed, "in_the_loop": trained,
                         "in_the_loop_train_seconds": seconds})

    results = {"setup": vars(args) | {"tau_syn_ms": TAU_SYN_MS, "chip_config": chip_config.to_dict(),
                                      "in_the_loop_recipe": hil_recipe.to_dict()},
               "software": {"test": software_eval, **software_timing},
               "published": PUBLISHED}
    if per_chip:
        results.update(chip_rows(per_chip, args))
        write_table(results, software_eval, args, out_dir)

    if args.control:
        # fair control: the software network gets the same extra epochs (same lr, data) in
        # software that the chips got in the loop, then is deployed to every chip
        control = Trainer(model_as(software.model, DTYPES[hil_recipe.dtype]), hil_recipe)
        train = data.train.subset(args.train_subset) if args.train_subset else data.train
        best = (control.evaluate(data.val).accuracy, copy.deepcopy(control.model.state_dict()))
        for epoch in range(args.hil_epochs):
            control.train_epoch(train)
            val = control.evaluate(data.val).accuracy
            if args.select_on_val and val > best[0]:
                best = (val, copy.deepcopy(control.model.state_dict()))
        if args.select_on_val:
            control.model.load_state_dict(best[1])
        control_software = control.evaluate(data.test).accuracy
        deployed_rows = []
        for seed in args.seeds:
            deployed, _, _ = in_the_loop(control.model, hil_recipe, data, seed, 0, args.train_subset,
                                         trial_duration, args.calibration_dir, chip_config,
                                         calibration=args.calibration)
            deployed_rows.append(deployed["accuracy"])
            log(f"control (software +{args.hil_epochs} epochs) deployed on chip {seed}: {deployed['accuracy']:.4f}")
        results["control"] = {"software_accuracy": control_software,
                              "deployed_accuracy": summarise(deployed_rows), "extra_epochs": args.hil_epochs}
        log(f"control: software {control_software:.4f}, deployed {np.mean(deployed_rows):.4f} "
            f"+- {np.std(deployed_rows):.4f}")

    if args.sweeps:
        records = []
        earlier = out_dir / "extra.json"
        if args.sweep_only and earlier.exists():
            records = [r for r in json.loads(earlier.read_text()).get("sweeps", [])
                       if r["property"] not in args.sweep_only]
        for name, value, config in sweep_configs(chip_config):
            if args.sweep_only and name not in args.sweep_only:
                continue
            deployed, trained, _ = in_the_loop(
                software.model, hil_recipe, data, args.seeds[0], args.sweep_hil_epochs,
                args.sweep_train_subset, trial_duration, args.calibration_dir, config, label=f"[{name}={value}]",
                calibration=args.calibration)
            records.append({"property": name, "value": value, "deployed": deployed["accuracy"],
                            "in_the_loop": trained["accuracy"]})
            log(f"sweep {name}={value}: deployed {deployed['accuracy']:.3f}, in-the-loop {trained['accuracy']:.3f}")
        records.sort(key=lambda r: SWEEP_PROPERTIES.index(r["property"]))  # stable: values stay in order
        results["sweeps"] = records
        plot_sweeps(records, out_dir / "robustness.png", "Yin-Yang" if args.dataset == "yinyang" else "MNIST 16x16")

    name = "hardware.json" if per_chip else "extra.json"
    (out_dir / name).write_text(json_text(results, indent=1))  # inf (all silent) -> null
    return results


def timing_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.stem + "_timing.json")


def saved_train_seconds(model_path: Path):
    """The training time saved next to ``model_path`` by the run that trained it; None for
    a network saved before such files were written."""
    path = timing_path(model_path)
    return json.loads(path.read_text()).get("train_seconds") if path.exists() else None


def chip_rows(per_chip, args):
    trained_rows = [c["in_the_loop"] for c in per_chip]
    chip_us = float(np.mean([r["chip_time_per_classification_us"] for r in trained_rows]))
    decision_tau = float(np.mean([r["mean_first_output_time"] for r in trained_rows]))
    return {
        "per_chip": per_chip,
        "deployed_accuracy": summarise([c["deployed"]["accuracy"] for c in per_chip]),
        "in_the_loop_accuracy": summarise([c["in_the_loop"]["accuracy"] for c in per_chip]),
        "speed": {
            "chip_time_per_classification_us": chip_us,
            "images_per_second": 1e6 / chip_us,
            "decision_time_us": decision_tau * TAU_SYN_MS,
            "spikes_per_classification": float(np.mean([r["spikes_per_classification"] for r in trained_rows])),
            "chip_power_w": args.chip_power_w,
            "system_power_w": args.system_power_w,
            "power_source": POWER_SOURCE,
            "energy_per_classification_uj": args.chip_power_w * chip_us,
            "system_energy_per_classification_uj": args.system_power_w * chip_us,
        },
    }


def write_table(results, software_eval, args, out_dir):
    d, h, s = results["deployed_accuracy"], results["in_the_loop_accuracy"], results["speed"]
    table = "\n".join([
        (f"Yin-Yang {4 * args.duplicate}(+1)-{args.hidden}(+1)-3 (inputs x{args.duplicate})" if args.dataset == "yinyang"
         else f"MNIST 16x16 {256 * args.duplicate}-{args.hidden}-10") +
        f" on the emulated BSS-2, {len(args.seeds)} chip seeds {args.seeds}",
        "",
        "| | test accuracy (mean ± std over chips) |",
        "|---|---|",
        f"| software (engine, exact) | {100 * software_eval['accuracy']:.1f} % (one network) |",
        f"| software-trained, deployed to chip | {100 * d['mean']:.1f} ± {100 * d['std']:.1f} % |",
        f"| in-the-loop on chip ({args.hil_epochs} epochs from the software network, lr {args.hil_lr:g} "
        f"{args.hil_schedule}{f', weights averaged over epochs {args.average_from}-{args.hil_epochs}' if args.average_from else ''}) | "
        f"{100 * h['mean']:.1f} ± {100 * h['std']:.1f} % |",
        f"| published BSS-2 (paper) | {PUBLISHED[args.dataset + '_hardware_accuracy']} |",
        "",
        f"chip time per classification {s['chip_time_per_classification_us']:.0f} µs "
        f"({args.trial_tau:g} tau_s of {TAU_SYN_MS:g} µs) -> {s['images_per_second']:.0f} images/s; "
        f"decision (first output spike) after {s['decision_time_us']:.1f} µs; "
        f"{s['spikes_per_classification']:.1f} spikes per classification; "
        f"energy {s['energy_per_classification_uj']:.0f} µJ for the ASIC at {args.chip_power_w:.3g} W, "
        f"{s['system_energy_per_classification_uj']:.0f} µJ for the system at {args.system_power_w:g} W "
        f"(powers: {POWER_SOURCE}). "
        f"Published: {PUBLISHED['speed']}.",
    ])
    (out_dir / "hardware.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
