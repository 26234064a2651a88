"""``pynn-ttfs``: train and evaluate TTFS networks from the command line.

    pynn-ttfs train {yinyang,mnist16,mnist} [--backend software|bss2|nest] [--epochs N]
        [--batch-size B] [--seed S] [--device cpu|cuda] [--data-dir D] [--out DIR] [--resume]
    pynn-ttfs evaluate DIR

``--backend software`` trains on the exact engine directly (fast path; ``--pynn`` sends
every batch through the pynn_ttfs PyNN round trip instead, same weights); ``bss2`` and
``nest`` run the forward pass of every batch on that PyNN backend and train in the loop.
DIR receives ``config.json``, ``checkpoint.pt`` (every epoch: model, optimizer, scheduler,
RNG states), ``metrics.json`` and PNG plots.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

from .datasets import DATASET_NAMES, Dataset, load_dataset, yinyang_features, encode_times
from .recipe import Recipe, improved_recipe, parse_overrides, published_recipe
from .trainer import DTYPES, Trainer, missing_state_keys

BACKENDS = ("software", "bss2", "nest")
#: what a run writes into its --out folder (--overwrite removes them first)
RUN_FILES = ("config.json", "checkpoint.pt", "metrics.json", "evaluation.json",
             "learning_curves.png", "spike_raster.png", "output_times.png", "yinyang_map.png")
RECIPES = ("improved", "published")
BSS2_MAX_WEIGHT = 63 / 30  # model units (weight / threshold current of the target neuron)
#: in the loop on the chip: no gradient through (sample, neuron) pairs where the model's
#: membrane slope at the recorded time is below this (threshold / tau_s); see Recipe.min_slope
BSS2_MIN_SLOPE = 0.1
TAU_SYN_MS = 5.0  # tau_s of the PyNN networks the CLI builds
NEST_ACTIVE_WINDOW_TAUS = 8.0  # first spikes of interest lie within this many tau_s


def make_recipe(dataset: str, variant: str = "improved", **overrides) -> Recipe:
    """The published recipe, or (``improved``, the default) :func:`recipe.improved_recipe`."""
    if variant not in RECIPES:
        raise ValueError(f"recipe must be one of {RECIPES}, got {variant!r}")
    recipe = improved_recipe(dataset) if variant == "improved" else published_recipe(dataset)
    # None is a value here (max_weight_grad=None: no cut-off), not "keep the default"
    return recipe.replace(**overrides) if overrides else recipe


def trial_duration_ms(tau_syn_ms: float = TAU_SYN_MS, tau_ratio: float = 1.0) -> float:
    from .. import trials
    window = NEST_ACTIVE_WINDOW_TAUS * tau_syn_ms
    return trials.nest_trial_layout(window, tau_syn_ms, tau_syn_ms * tau_ratio)["trial_duration"]


def check_device(device: str) -> None:
    """``cpu``, ``cuda`` or ``cuda:N``, and CUDA only where torch finds it."""
    if not (device == "cpu" or device == "cuda"
            or (device.startswith("cuda:") and device[5:].isdigit())):
        raise ValueError(f"--device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but torch finds no CUDA device")


def make_trainer(config: Dict, dataset: Dataset) -> Trainer:
    """A trainer for ``config`` (the CLI's settings) on ``dataset``'s shapes."""
    recipe = Recipe.from_dict(config["recipe"])
    backend = config.get("backend", "software")
    device = config.get("device", "cpu")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    check_device(device)
    if backend == "software" and not config.get("pynn", False):
        return Trainer.for_dataset(recipe, dataset.n_inputs, dataset.n_classes, device=device)
    from .model import build_model
    from .pynn_loop import PyNNForward, PyNNNetwork, build_network
    duration = trial_duration_ms(TAU_SYN_MS, recipe.tau_ratio)
    if backend == "nest":
        try:
            import pyNN.nest as sim
        except ImportError as error:  # pragma: no cover - depends on the installation
            raise ValueError(f"backend 'nest' needs pyNN.nest (nest-simulator): {error}") from error
        sim.setup(timestep=0.1, min_delay=0.1)
        cell_type = "IF_curr_exp"
    else:
        import pynn_ttfs as sim
        options = {"backend": backend, "trial_duration": duration, "device": device,
                   "dtype": recipe.dtype}
        if backend == "bss2":
            if config.get("chip_seed") is not None:
                options["chip_seed"] = config["chip_seed"]
            options["noise_seed"] = recipe.seed  # each seed its own trial-to-trial noise
        sim.setup(timestep=0.1, min_delay=0.1, **options)
        cell_type = "IF_curr_exp_ttfs"
    generator = torch.Generator().manual_seed(recipe.seed)
    initial = build_model([dataset.n_inputs, *recipe.hidden, dataset.n_classes], recipe.weight_mean,
                          recipe.weight_std, recipe.bias_times, generator,
                          tau_ratio=recipe.tau_ratio)
    input_population, _, projections, _ = build_network(
        sim, initial, tau_syn_ms=TAU_SYN_MS, trial_duration=duration, cell_type=cell_type)
    network = PyNNNetwork(sim, input_population, projections, trial_duration=duration)
    model = network.to_model(dtype=DTYPES[recipe.dtype], device=device)
    return Trainer(model, recipe, forward=PyNNForward(network, model), device=device)


def _sizes(config: Dict) -> Optional[Dict[str, int]]:
    sizes = {k: config.get(f"{k}_size") for k in ("train", "val", "test")}
    sizes = {k: v for k, v in sizes.items() if v is not None}
    return sizes or None


def _load(config: Dict) -> Dataset:
    recipe = config["recipe"]
    return load_dataset(config["dataset"], data_dir=config.get("data_dir"), sizes=_sizes(config),
                        t_early=recipe["t_early"], t_late=recipe["t_late"])


def _metrics(config: Dict, trainer: Trainer, test_summary: Optional[Dict]) -> Dict:
    history = [dict(m.__dict__) for m in trainer.history]
    out = {
        "dataset": config["dataset"],
        "backend": config["backend"],
        "recipe": config["recipe"],
        "epochs": history,
        "epochs_done": trainer.epoch,
        "seconds_per_epoch_mean": float(np.mean([h["seconds"] for h in history])) if history else None,
        "time_unit": "tau_s",
        "tau_s_ms": TAU_SYN_MS if config["backend"] != "software" or config.get("pynn") else None,
    }
    if test_summary is not None:
        out["test_accuracy"] = test_summary["accuracy"]
        out["test_loss"] = test_summary["loss"]
        out["mean_first_output_time"] = test_summary["mean_first_output_time"]
        out["spikes_per_classification"] = test_summary["spikes_per_classification"]
        out["output_spikes_per_classification"] = test_summary["output_spikes_per_classification"]
        out["all_silent_fraction"] = test_summary["all_silent_fraction"]
    return out


def json_ready(value):
    """``value`` with numpy/torch scalars as floats and inf/NaN as None (JSON ``null``).

    ``json.dumps`` would otherwise write ``Infinity`` (e.g. the mean first output spike
    time of an all-silent test set), which is not JSON and which strict readers refuse.
    """
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    number = float(value)
    return number if math.isfinite(number) else None


def json_text(data, indent: int = 2) -> str:
    """``data`` as strict JSON text (see :func:`json_ready`)."""
    return json.dumps(json_ready(data), indent=indent, allow_nan=False)


def _read_config(path: Path) -> Dict:
    try:
        config = json.loads(path.read_text())
    except ValueError as error:
        raise ValueError(f"{path} is not valid JSON ({error}): the run folder is damaged") from None
    missing = [k for k in ("dataset", "backend", "recipe") if not isinstance(config, dict) or k not in config]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}: not a pynn-ttfs run configuration")
    return config


def _read_checkpoint(path: Path) -> Dict:
    # on the CPU first: a run trained on a GPU resumes on a machine without one
    try:
        state = torch.load(path, weights_only=False, map_location="cpu")
    except Exception as error:  # truncated or foreign files fail in pickle/zip in many ways
        raise ValueError(f"{path} cannot be read ({type(error).__name__}: {error}): the file is "
                         f"damaged or not a pynn-ttfs checkpoint") from None
    missing = missing_state_keys(state)
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}: not a pynn-ttfs checkpoint")
    return state


def _write_json(path: Path, data) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json_text(data))
    os.replace(tmp, path)  # atomic: an interrupted run never leaves half a file


#: where --overwrite keeps the old run until the new one has saved its first checkpoint
SET_ASIDE = ".overwritten-run"


def _set_aside(out: Path) -> Optional[Path]:
    """Move the run files in ``out`` into ``out/SET_ASIDE`` (None: there were none)."""
    held = [name for name in RUN_FILES if (out / name).exists()]
    if not held:
        return None
    aside = out / SET_ASIDE
    if aside.exists():
        raise ValueError(f"{aside} holds a run that an interrupted --overwrite set aside: "
                         f"move it out of {out} (or delete it) first")
    aside.mkdir()
    for name in held:
        os.replace(out / name, aside / name)
    return aside


def _put_back(out: Path, aside: Path) -> None:
    """Undo :func:`_set_aside`: the new run's files go, the old run's come back."""
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    for path in aside.iterdir():
        os.replace(path, out / path.name)
    aside.rmdir()


def _save_checkpoint(out: Path, trainer: Trainer) -> None:
    tmp = out / "checkpoint.pt.tmp"
    torch.save(trainer.state_dict(), tmp)
    os.replace(tmp, out / "checkpoint.pt")


def make_plots(out: Path, config: Dict, trainer: Trainer, dataset: Dataset, evaluation) -> List[str]:
    from . import plots
    from .loss import predict
    written = []
    history = [dict(m.__dict__) for m in trainer.history]
    if history:
        plots.learning_curves(history, out / "learning_curves.png")
        written.append("learning_curves.png")
    plots.spike_raster(dataset.test.times, evaluation.layer_times, evaluation.labels,
                       out / "spike_raster.png")
    plots.output_time_distribution(evaluation.layer_times[-1], evaluation.labels,
                                   out / "output_times.png")
    written += ["spike_raster.png", "output_times.png"]
    if config["dataset"] == "yinyang":
        recipe = config["recipe"]

        def predict_points(points: np.ndarray) -> np.ndarray:
            times = encode_times(yinyang_features(points), recipe["t_early"], recipe["t_late"])
            result = []
            for first in range(0, len(times), 1000):
                chunk = torch.as_tensor(times[first:first + 1000], dtype=trainer.dtype).to(trainer.device)
                result.append(predict(trainer.forward(chunk)[-1]).cpu().numpy())
            return np.concatenate(result)

        resolution = 30 if config["backend"] == "nest" else 60
        plots.yinyang_map(predict_points, dataset.test.values[:, :2], dataset.test.labels,
                          out / "yinyang_map.png", resolution=resolution)
        written.append("yinyang_map.png")
    return written


def _check_sizes(args) -> None:
    for name in ("train_size", "val_size", "test_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1 samples, got {value}")


def _resume_conflicts(args, config: Dict, set_changes: Dict) -> List[str]:
    """What the flags given with --resume would change: a resumed run continues as it was
    configured (only --epochs, --data-dir and the run-time flags may differ)."""
    recipe = config["recipe"]
    conflicts = []
    given = {"dataset": (args.dataset, config["dataset"]),
             "--backend": (args.backend, config.get("backend", "software")),
             "--recipe": (args.recipe, config.get("recipe_variant", "improved")),
             "--chip-seed": (args.chip_seed, config.get("chip_seed")),
             "--pynn": (args.pynn or None, config.get("pynn", False) or None)}
    for flag in ("train", "val", "test"):
        given[f"--{flag}-size"] = (getattr(args, f"{flag}_size"), config.get(f"{flag}_size"))
    for flag, field in (("--batch-size", "batch_size"), ("--seed", "seed"), ("--dtype", "dtype")):
        given[flag] = (getattr(args, field), recipe.get(field))
    for flag, (value, saved) in given.items():  # None: the flag was not given
        if value is not None and value != saved:
            conflicts.append(f"{flag} {value!r} (the run has {saved!r})")
    for key, value in set_changes.items():  # here None is a value (KEY=null)
        if key != "epochs" and value != recipe.get(key):
            conflicts.append(f"--set {key} {value!r} (the run has {recipe.get(key)!r})")
    return conflicts


def train(args) -> Dict:
    set_changes = parse_overrides(args.set or [])  # --set KEY=VALUE, checked before any work
    _check_sizes(args)
    if "dataset" in set_changes and set_changes["dataset"] != args.dataset:
        raise ValueError(f"--set dataset={set_changes['dataset']} contradicts the dataset "
                         f"argument {args.dataset!r}")
    backend = args.backend or "software"
    # flags that would be stored in config.json but change nothing: say so, not silently
    if args.chip_seed is not None and backend != "bss2" and not args.resume:
        raise ValueError(f"--chip-seed chooses an emulated chip: it needs --backend bss2 "
                         f"(got --backend {backend})")
    if args.data_dir and args.dataset == "yinyang":
        print("pynn-ttfs: note: --data-dir is not used for yinyang (its data are embedded)",
              file=sys.stderr)
    if args.device is not None:
        check_device(args.device)  # before any file is touched
    seed = args.seed if args.seed is not None else set_changes.get("seed", 0)
    out = Path(args.out or f"runs/{args.dataset}-{backend}-seed{seed}")
    config_path = out / "config.json"
    if args.resume:
        if not (out / "checkpoint.pt").exists() or not config_path.exists():
            raise FileNotFoundError(f"--resume: no checkpoint.pt/config.json in {out}")
        config = _read_config(config_path)
        conflicts = _resume_conflicts(args, config, set_changes)
        if conflicts:
            raise ValueError("--resume continues the run as configured; these flags would "
                             "change it: " + "; ".join(conflicts)
                             + ". Start a new run (another --out) instead")
        saved_state = _read_checkpoint(out / "checkpoint.pt")
        epochs = args.epochs if args.epochs is not None else set_changes.get("epochs")
        if epochs is None:
            # the run's length as trained (a run resumed with --epochs by an earlier
            # version recorded it only in the checkpoint)
            epochs = saved_state["recipe"]["epochs"]
        if not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"--epochs must be an integer >= 0, got {epochs!r}")
        if epochs < saved_state["epoch"]:
            raise ValueError(f"--epochs {epochs}: the run has already trained "
                             f"{saved_state['epoch']} epochs")
        config["recipe"]["epochs"] = epochs
        if args.data_dir:
            config["data_dir"] = str(Path(args.data_dir).resolve())
        if args.device is not None:  # where it runs, not what it computes
            config["device"] = args.device
    else:
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} is a file, not a folder: choose another --out")
        held = [name for name in RUN_FILES if (out / name).exists()]
        if held and not args.overwrite:
            what = ("continue it with --resume, " if "checkpoint.pt" in held else "")
            raise ValueError(f"{out} already holds a run ({', '.join(held)}): {what}choose "
                             f"another --out, or pass --overwrite to replace it")
        # --set KEY=VALUE first; the dedicated flags (--epochs, ...) win where both are given
        changes = dict(set_changes)
        flags = dict(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                     dtype=args.dtype)
        if backend == "bss2" and "weight_clip" not in changes:
            # keep the float weights inside what the chip can hold (6 bit at resolution
            # 1/30: |w| <= 63/30 model units)
            flags["weight_clip"] = BSS2_MAX_WEIGHT
        if backend == "bss2" and "min_slope" not in changes:
            flags["min_slope"] = BSS2_MIN_SLOPE
        changes.update({k: v for k, v in flags.items() if v is not None})
        recipe = make_recipe(args.dataset, args.recipe or "improved", **changes)
        config = {
            "dataset": args.dataset, "backend": backend, "device": args.device or "cpu",
            # absolute: evaluate and --resume may run from another directory
            "data_dir": str(Path(args.data_dir).resolve()) if args.data_dir else None,
            "pynn": args.pynn,
            "recipe_variant": args.recipe or "improved", "recipe": recipe.to_dict(),
            "train_size": args.train_size, "val_size": args.val_size, "test_size": args.test_size,
            "chip_seed": args.chip_seed,
        }
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be an integer >= 1, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    elif config["dataset"] == "yinyang" and config.get("device", "cpu") == "cpu":
        # Yin-Yang's tensors are tiny: a second thread costs more in synchronisation
        # than it gains (and is much worse when the machine is busy)
        torch.set_num_threads(1)
    dataset = _load(config)
    trainer = make_trainer(config, dataset)
    if args.resume:
        trainer.load_state_dict(saved_state)
        _write_json(config_path, config)  # a changed --epochs or --data-dir, once accepted
        return _train_loop(args, config, out, dataset, trainer)
    # only now, with the settings, the data and the backend checked, the folder: a bad
    # flag leaves nothing behind. --overwrite sets the old run aside (as a whole, never
    # half of it beside the new) and deletes it only once the new one has saved its first
    # checkpoint: a new run that fails in its first epoch leaves the old one as it was
    out.mkdir(parents=True, exist_ok=True)
    aside = _set_aside(out) if args.overwrite else None
    try:
        _write_json(config_path, config)
        result = _train_loop(args, config, out, dataset, trainer, aside)
    except BaseException:
        if aside is not None and aside.exists():
            _put_back(out, aside)
        raise
    if aside is not None and aside.exists():  # --epochs 0: no checkpoint was saved
        shutil.rmtree(aside)
    return result


def _train_loop(args, config: Dict, out: Path, dataset: Dataset, trainer: Trainer,
                aside: Optional[Path] = None) -> Dict:
    """Train ``trainer`` to its recipe's epochs, checkpointing into ``out`` after every
    epoch (the old run set ``aside`` by --overwrite goes after the first), then test, write
    metrics.json and the plots."""
    epochs = trainer.recipe.epochs
    from tqdm import tqdm
    train_split, val_split = dataset.training_splits(trainer.recipe.train_on_val)
    n_batches = math.ceil(len(train_split) / trainer.recipe.batch_size)
    start = time.perf_counter()
    with tqdm(total=epochs, initial=trainer.epoch, desc=f"{config['dataset']} [{config['backend']}]",
              unit="epoch", disable=args.quiet) as epoch_bar:
        while trainer.epoch < epochs:
            with tqdm(total=n_batches, leave=False, unit="batch", disable=args.quiet) as batch_bar:
                running = {"loss": 0.0, "correct": 0.0, "n": 0}

                def progress(info):
                    running["loss"] += info["loss"] * info["samples"]
                    running["correct"] += info["acc"] * info["samples"]
                    running["n"] += info["samples"]
                    batch_bar.update(1)
                    batch_bar.set_postfix(loss=f"{running['loss'] / running['n']:.4f}",
                                          acc=f"{running['correct'] / running['n']:.3f}")

                metrics = trainer.train_epoch(train_split, progress=progress, val_split=val_split)
            _save_checkpoint(out, trainer)
            if aside is not None and aside.exists():  # the new run now stands on its own
                shutil.rmtree(aside)
            _write_json(out / "metrics.json", _metrics(config, trainer, None))
            epoch_bar.update(1)
            shown = dict(loss=f"{metrics.train_loss:.4f}", acc=f"{metrics.train_accuracy:.3f}")
            if metrics.val_accuracy is not None:
                shown["val"] = f"{metrics.val_accuracy:.3f}"
            epoch_bar.set_postfix(**shown, s=f"{metrics.seconds:.2f}")
    selected_epoch = trainer.epoch
    if trainer.recipe.select_best_val:
        selected_epoch = trainer.use_best_weights()
    evaluation = trainer.evaluate(dataset.test)
    summary = evaluation.summary()
    result = _metrics(config, trainer, summary)
    result["tested_epoch"] = selected_epoch
    result["wall_seconds_this_invocation"] = time.perf_counter() - start
    _write_json(out / "metrics.json", result)
    if not args.no_plots:
        result["plots"] = make_plots(out, config, trainer, dataset, evaluation)
        _write_json(out / "metrics.json", result)
    print(f"test accuracy {100 * summary['accuracy']:.2f} % | mean first output spike "
          f"{summary['mean_first_output_time']:.3f} tau_s | {summary['spikes_per_classification']:.1f} "
          f"spikes per classification | results in {out}")
    return result


def evaluate(args) -> Dict:
    out = Path(args.dir)
    if not (out / "checkpoint.pt").exists() or not (out / "config.json").exists():
        raise FileNotFoundError(f"no checkpoint.pt/config.json in {out}: train first "
                                "(pynn-ttfs train ... --out DIR)")
    config = _read_config(out / "config.json")
    if args.data_dir:
        config["data_dir"] = str(Path(args.data_dir).resolve())
    if args.device:
        check_device(args.device)
        config["device"] = args.device
    state = _read_checkpoint(out / "checkpoint.pt")
    # the run's length as trained (a run resumed with --epochs before config.json recorded it)
    config["recipe"]["epochs"] = state["recipe"]["epochs"]
    dataset = _load(config)
    trainer = make_trainer(config, dataset)
    trainer.load_state_dict(state)
    summary_epoch = trainer.use_best_weights() if trainer.recipe.select_best_val else trainer.epoch
    summary = trainer.evaluate(dataset.test).summary()
    summary["epochs_trained"] = trainer.epoch
    summary["tested_epoch"] = summary_epoch
    _write_json(out / "evaluation.json", summary)
    print(json_text(summary))
    return summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pynn-ttfs", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_train = sub.add_parser("train", help="train a network (defaults: the recipe for the dataset)")
    p_train.add_argument("dataset", choices=DATASET_NAMES)
    p_train.add_argument("--backend", choices=BACKENDS, help="default software")
    p_train.add_argument("--epochs", type=int)
    p_train.add_argument("--batch-size", type=int)
    p_train.add_argument("--seed", type=int, help="recipe seed (default 0)")
    p_train.add_argument("--device", help="cpu (default), cuda or cuda:N; with --resume it "
                         "may differ from the run's")
    p_train.add_argument("--data-dir", help="directory with the MNIST IDX files "
                         "(or set PYNN_TTFS_MNIST_DIR)")
    p_train.add_argument("--out", help="output directory (default runs/<dataset>-<backend>-seed<S>)")
    p_train.add_argument("--resume", action="store_true",
                         help="continue from DIR/checkpoint.pt (only --epochs may change, and not "
                              "for a cosine schedule)")
    p_train.add_argument("--overwrite", action="store_true",
                         help="start again in an --out directory that already holds a run")
    p_train.add_argument("--recipe", choices=RECIPES,
                         help="'published': the reference recipe exactly; 'improved' (default): "
                         "bumped batches also take their gradient step, float32, test the "
                         "best-validation epoch")
    p_train.add_argument("--dtype", choices=tuple(DTYPES))
    p_train.add_argument("--pynn", action="store_true",
                         help="software backend: go through the pynn_ttfs PyNN round trip")
    p_train.add_argument("--chip-seed", type=int, help="bss2: emulated chip instance")
    p_train.add_argument("--threads", type=int,
                         help="torch CPU threads (default: 1 for yinyang, torch's default otherwise)")
    p_train.add_argument("--train-size", type=int, help="use only the first N training samples")
    p_train.add_argument("--val-size", type=int)
    p_train.add_argument("--test-size", type=int)
    p_train.add_argument("--set", action="append", metavar="KEY=VALUE",
                         help="change one recipe field, e.g. --set lr_schedule=cosine "
                              "--set hidden=[246] (repeatable; see pynn_ttfs.training.Recipe)")
    p_train.add_argument("--no-plots", action="store_true")
    p_train.add_argument("--quiet", action="store_true", help="no progress bars")
    p_eval = sub.add_parser("evaluate", help="test accuracy of a trained run directory")
    p_eval.add_argument("dir")
    p_eval.add_argument("--data-dir")
    p_eval.add_argument("--device", help="cpu or cuda (default: the run's)")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            train(args)
        else:
            evaluate(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"pynn-ttfs: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
