"""Test accuracy, mean ± std over seeds, of the training recipes (software substrate).

    python benchmarks/accuracy.py --dataset yinyang --seeds 0 1 2 3 4 --json acc.json
    python benchmarks/accuracy.py --dataset mnist16 --data-dir ../shared/data/mnist --epochs 20
    python benchmarks/accuracy.py --dataset mnist16 --set lr_schedule=cosine --set lr=0.005

``--set KEY=VALUE`` changes one recipe field (any field of ``pynn_ttfs.training.Recipe``);
the changed fields are recorded with the results.

Each seed trains from scratch (direct engine path, one torch thread per run; ``--jobs``
runs seeds in parallel processes) and is tested on the test split. Prints a table and
writes JSON: one record per (dataset, recipe) with the per-seed results, mean, std,
seconds per epoch, mean first-output-spike time and spikes per classification.

Seeds of one setup can be spread over several invocations (a 5-seed MNIST benchmark is
hours of CPU time): seeds whose runs ``--json`` already holds for the same setup (dataset,
recipe, changed fields, epochs, training-set size) are kept and not trained again, and
``--merge FILE ...`` takes runs from other files (``--fresh`` retrains everything):

    python benchmarks/accuracy.py --dataset mnist --seeds 2 --json part.json ...
    python benchmarks/accuracy.py --dataset mnist --seeds 0 1 2 3 4 --merge part.json --json all.json ...

A seed itself can span invocations: with ``--checkpoint-dir DIR`` every seed saves its
whole training state (weights, optimizer, schedule, RNGs, history) to DIR after every
epoch, and a later invocation of the same setup continues from there, bit-identically to
an uninterrupted run (the CLI's ``--resume`` mechanism, ``Trainer.state_dict``).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import statistics
import sys
import time
from typing import Dict, List


def run_seed(task: Dict) -> Dict:
    import torch
    torch.set_num_threads(1)
    from pynn_ttfs.training.cli import make_recipe
    from pynn_ttfs.training.datasets import load_dataset
    from pynn_ttfs.training.recipe import Recipe
    from pynn_ttfs.training.trainer import Trainer

    overrides = dict(task.get("overrides") or {}, seed=task["seed"])
    if task.get("epochs") is not None:  # --epochs 0 too
        overrides["epochs"] = task["epochs"]
    recipe = make_recipe(task["dataset"], task["recipe"], **overrides)
    sizes = {"train": task["train_size"]} if task.get("train_size") else None
    data = load_dataset(task["dataset"], data_dir=task.get("data_dir"), sizes=sizes)
    train, val = data.training_splits(recipe.train_on_val)
    trainer = Trainer.for_dataset(recipe, data.n_inputs, data.n_classes,
                                  device=task.get("device") or "cpu")
    checkpoint = task.get("checkpoint")
    if checkpoint and os.path.exists(checkpoint):
        state = torch.load(checkpoint, weights_only=False)
        # read through Recipe: a field added since the checkpoint was written takes its default
        if Recipe.from_dict(state["recipe"]).to_dict() != recipe.to_dict():
            raise ValueError(f"checkpoint {checkpoint} holds another recipe; remove it or use "
                             f"another --checkpoint-dir")
        trainer.load_state_dict(state)
        print(f"[{task['dataset']} {task['recipe']} seed {task['seed']}] resumed from "
              f"{checkpoint} after epoch {trainer.epoch}", file=sys.stderr, flush=True)
    while trainer.epoch < recipe.epochs:
        m = trainer.train_epoch(train, val_split=val)
        if checkpoint:  # written whole, then renamed: an interruption never leaves half a file
            torch.save(trainer.state_dict(), checkpoint + ".tmp")
            os.replace(checkpoint + ".tmp", checkpoint)
        if task.get("progress"):  # long runs: one line per epoch, so progress can be followed
            val_text = f"val acc {100 * m.val_accuracy:.2f} %" if val is not None else "no validation"
            print(f"[{task['dataset']} {task['recipe']} seed {task['seed']}] epoch {m.epoch}: "
                  f"train acc {100 * m.train_accuracy:.2f} %, {val_text}, "
                  f"{m.seconds:.1f} s", file=sys.stderr, flush=True)
    last = trainer.evaluate(data.test).summary()
    tested_epoch = trainer.epoch
    summary = last
    if recipe.select_best_val:
        tested_epoch = trainer.use_best_weights()
        summary = trainer.evaluate(data.test).summary()
    return {
        "seed": task["seed"], "device": str(trainer.device), "test_accuracy": summary["accuracy"],
        "test_accuracy_last_epoch": last["accuracy"], "tested_epoch": tested_epoch,
        "epochs": recipe.epochs,
        "seconds_per_epoch": statistics.mean(m.seconds for m in trainer.history),
        "cpu_seconds_per_epoch": statistics.mean(m.cpu_seconds for m in trainer.history),
        "seconds_total_training": sum(m.seconds for m in trainer.history),
        "mean_first_output_time": summary["mean_first_output_time"],
        "spikes_per_classification": summary["spikes_per_classification"],
        "history": [dataclasses.asdict(m) for m in trainer.history],
    }


def checkpoint_path(directory: str, dataset: str, recipe: str, overrides: Dict, epochs,
                    train_size, seed: int) -> str:
    """DIR/<dataset>-<recipe>-<digest of the setup>-seed<seed>.pt: one file per seed of
    one setup (the digest covers the changed recipe fields, epochs and training-set size)."""
    import hashlib
    key = json.dumps({"overrides": overrides, "epochs": epochs, "train_size": train_size},
                     sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    return os.path.join(directory, f"{dataset}-{recipe}-{digest}-seed{seed}.pt")


def summarise(dataset: str, recipe: str, overrides: Dict, runs: List[Dict], n_seeds: int,
              train_size=None) -> Dict:
    """One table row: the seeds run so far (``complete`` once all ``n_seeds`` are in)."""
    runs = sorted(runs, key=lambda r: r["seed"])
    accs = [100 * r["test_accuracy"] for r in runs]
    return {
        "dataset": dataset, "recipe": recipe, "recipe_changes": overrides, "train_size": train_size,
        "substrate": "software", "device": runs[0].get("device", "cpu"), "complete": len(runs) == n_seeds,
        "epochs": runs[0]["epochs"], "seeds": [r["seed"] for r in runs], "runs": runs,
        "test_accuracy_mean": statistics.mean(accs),
        "test_accuracy_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
        "seconds_per_epoch_mean": statistics.mean(r["seconds_per_epoch"] for r in runs),
        # runs from before CPU time was recorded have none
        "cpu_seconds_per_epoch_mean": (statistics.mean(cpu) if (cpu := [
            r["cpu_seconds_per_epoch"] for r in runs if r.get("cpu_seconds_per_epoch") is not None])
            else None),
        "mean_first_output_time": statistics.mean(r["mean_first_output_time"] for r in runs),
        "spikes_per_classification": statistics.mean(r["spikes_per_classification"] for r in runs),
    }


def write_json(path: str, records: List[Dict]) -> None:
    """Write whole, then rename: a run stopped mid-write keeps the seeds the file held."""
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "w") as handle:
            json.dump(records, handle, indent=2)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def same_setup(record: Dict, dataset: str, recipe: str, overrides: Dict, epochs: int,
               train_size) -> bool:
    """Whether ``record`` (a table row of an earlier JSON) measured the same thing: runs of
    one setup can be pooled across invocations, one seed at a time. ``epochs``: the run
    length (the recipe's when --epochs is not given: a 70-epoch row is another setup)."""
    return (record.get("dataset") == dataset and record.get("recipe") == recipe
            and record.get("recipe_changes", {}) == overrides
            and record.get("epochs") == epochs
            and record.get("train_size") == train_size)


def run_length(dataset: str, recipe: str, overrides: Dict, epochs) -> int:
    """Epochs a seed of this setup trains: --epochs, else the recipe's (with --set)."""
    if epochs is not None:
        return int(epochs)
    from pynn_ttfs.training.cli import make_recipe
    return make_recipe(dataset, recipe, **overrides).epochs


def with_other_setups(path: str, records: List[Dict]) -> List[Dict]:
    """``records`` after the rows of other setups that ``path`` already holds: writing one
    setup into a shared results file keeps the others."""
    if not os.path.exists(path):
        return records
    try:
        with open(path) as handle:
            existing = json.load(handle)
    except (OSError, ValueError):
        return records
    others = [old for old in existing if not any(
        same_setup(old, new["dataset"], new["recipe"], new["recipe_changes"], new["epochs"],
                   new["train_size"]) for new in records)]
    return others + records


def earlier_runs(paths: List[str], dataset: str, recipe: str, overrides: Dict, epochs,
                 train_size) -> Dict[int, Dict]:
    """Per-seed runs of the same setup found in the JSON files ``paths`` (missing files are
    skipped), the first file's run winning for a seed."""
    runs: Dict[int, Dict] = {}
    for path in paths:
        if not os.path.exists(path):
            continue
        with open(path) as handle:
            for record in json.load(handle):
                if same_setup(record, dataset, recipe, overrides, epochs, train_size):
                    for run in record["runs"]:
                        runs.setdefault(run["seed"], run)
    return runs


def main(argv=None) -> List[Dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", nargs="+", default=["yinyang"],
                        choices=["yinyang", "mnist16", "mnist"])
    parser.add_argument("--recipe", nargs="+", default=["improved"], choices=["improved", "published"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, help="shorter runs (default: the recipe's)")
    parser.add_argument("--train-size", type=int, help="use only the first N training samples")
    parser.add_argument("--data-dir", help="MNIST IDX directory")
    parser.add_argument("--jobs", type=int, default=1, help="seeds trained in parallel")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                        help="cpu or cuda (parallel jobs share the GPU)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change a recipe field, e.g. lr_schedule=cosine (repeatable)")
    parser.add_argument("--progress", action="store_true", help="print one line per epoch")
    parser.add_argument("--json", help="write the records to this file; the runs of seeds it "
                        "already holds for the same setup are kept, not trained again")
    parser.add_argument("--merge", nargs="+", default=[], metavar="FILE",
                        help="also take the runs of the same setup from these JSON files")
    parser.add_argument("--fresh", action="store_true",
                        help="train every seed again, ignoring the runs in --json")
    parser.add_argument("--checkpoint-dir", metavar="DIR",
                        help="save every seed's training state here after every epoch and "
                             "continue from it when the same setup runs again")
    args = parser.parse_args(argv)
    from pynn_ttfs.training.recipe import parse_overrides
    overrides = parse_overrides(args.set)
    if args.checkpoint_dir:
        os.makedirs(args.checkpoint_dir, exist_ok=True)
    if args.device == "cuda":
        import torch
        if not torch.cuda.is_available():
            parser.error("--device cuda: torch finds no CUDA device (use --device cpu)")

    records = []
    for dataset in args.dataset:
        for recipe in args.recipe:
            sources = ([] if args.fresh or not args.json else [args.json]) + args.merge
            length = run_length(dataset, recipe, overrides, args.epochs)
            found = earlier_runs(sources, dataset, recipe, overrides, length, args.train_size)
            runs = [found[s] for s in args.seeds if s in found]
            if runs:
                print(f"{dataset} {recipe}: seeds {[r['seed'] for r in runs]} taken from "
                      f"{', '.join(sources)}", file=sys.stderr)
            tasks = [dict(dataset=dataset, recipe=recipe, seed=s, epochs=args.epochs,
                          train_size=args.train_size, data_dir=args.data_dir,
                          overrides=overrides, progress=args.progress, device=args.device,
                          checkpoint=checkpoint_path(args.checkpoint_dir, dataset, recipe, overrides,
                                                     args.epochs, args.train_size, s)
                          if args.checkpoint_dir else None)
                     for s in args.seeds if s not in found]
            n_seeds = len(args.seeds)
            pool = (multiprocessing.get_context("spawn").Pool(args.jobs)
                    if args.jobs > 1 and len(tasks) > 1 else None)
            results = pool.imap(run_seed, tasks) if pool else map(run_seed, tasks)
            for run in results:
                runs.append(run)
                if args.json:  # after every seed, so a long benchmark keeps what it has
                    write_json(args.json, with_other_setups(args.json, records + [summarise(
                        dataset, recipe, overrides, runs, n_seeds, args.train_size)]))
            if pool:
                pool.close()
            records.append(summarise(dataset, recipe, overrides, runs, n_seeds, args.train_size))
            if args.json:
                write_json(args.json, with_other_setups(args.json, records))

    print(f"{'dataset':9s} {'recipe':9s} {'epochs':>6s} {'seeds':>5s} {'test accuracy (%)':>18s} "
          f"{'s/epoch':>8s} {'t_first (tau_s)':>15s} {'spikes/class.':>13s}")
    for r in records:
        print(f"{r['dataset']:9s} {r['recipe']:9s} {r['epochs']:6d} {len(r['seeds']):5d} "
              f"{r['test_accuracy_mean']:8.2f} ± {r['test_accuracy_std']:5.2f}   "
              f"{r['seconds_per_epoch_mean']:8.3f} {r['mean_first_output_time']:15.3f} "
              f"{r['spikes_per_classification']:13.1f}")
        if r["recipe_changes"]:
            print(f"{'':9s} changes: " + ", ".join(f"{k}={v}" for k, v in r["recipe_changes"].items()))
    return records


if __name__ == "__main__":
    main()
