"""The training loop: mini-batches, epochs, evaluation, checkpoints.

The forward pass is pluggable: :class:`EngineForward` runs the model on the engine directly
(software substrate, fast path), :class:`pynn_loop.PyNNForward` runs it through any PyNN
backend and reads the recorded first spikes back. Either way the step
(:class:`step.RecipeStep`) evaluates the exact gradients at the returned times.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

from .datasets import Split
from .loss import TTFSLoss, correct
from .model import TTFSModel, build_model
from .recipe import Recipe
from .step import RecipeStep

DTYPES = {"float64": torch.float64, "float32": torch.float32}
# what Trainer.state_dict() holds and load_state_dict() needs
STATE_KEYS = ("epoch", "recipe", "model", "step", "generator", "torch_rng", "numpy_rng", "history")


def missing_state_keys(state) -> List[str]:
    """The STATE_KEYS that ``state`` lacks (all of them if it is not a dict)."""
    return [k for k in STATE_KEYS if not isinstance(state, dict) or k not in state]


class EngineForward:
    """Forward pass on the engine (exact software substrate), no neo in between."""

    name = "engine"

    def __init__(self, model: TTFSModel):
        self.model = model

    def __call__(self, input_times: torch.Tensor) -> List[torch.Tensor]:
        return self.model.forward(input_times)

    def write_weights(self) -> None:
        """Nothing to do: the engine reads the model's weights directly."""


@dataclass
class EpochMetrics:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_accuracy: Optional[float]
    val_loss: Optional[float]
    seconds: float
    lr: float
    bumped_batches: int
    cut_gradients: int
    cpu_seconds: float = 0.0  # process CPU time of the epoch (all threads): robust to a busy machine


@dataclass
class Evaluation:
    accuracy: float
    loss: float
    layer_times: List[np.ndarray] = field(repr=False, default_factory=list)
    labels: Optional[np.ndarray] = field(repr=False, default=None)

    def summary(self) -> Dict[str, float]:
        """Time-to-solution figures: mean time of the first output spike (tau_s) over
        classified samples, and spikes per classification (all trained layers)."""
        out = self.layer_times[-1]
        earliest = out.min(axis=1)
        finite = np.isfinite(earliest)
        spikes = sum(np.isfinite(t).sum(axis=1) for t in self.layer_times)
        return {
            "accuracy": self.accuracy,
            "loss": self.loss,
            "mean_first_output_time": float(earliest[finite].mean()) if finite.any() else math.inf,
            "spikes_per_classification": float(np.mean(spikes)),
            "output_spikes_per_classification": float(np.isfinite(out).sum(axis=1).mean()),
            "all_silent_fraction": float(1.0 - finite.mean()),
        }


class Trainer:
    """Trains ``model`` with ``recipe``; ``forward`` defaults to the engine."""

    def __init__(self, model: TTFSModel, recipe: Recipe, forward=None,
                 device: str = "cpu"):
        if len(model.layers) != recipe.n_layers:
            # the per-layer lists (max_silent_fraction above all: the bumping) would be
            # read out of range, or the hidden layer's applied to the output layer
            raise ValueError(
                f"the recipe describes {recipe.n_layers} layers (hidden={recipe.hidden!r}; "
                f"max_silent_fraction, bias_times, weight_mean and weight_std hold one entry "
                f"per layer) but the network has {len(model.layers)} (sizes {model.sizes}); "
                f"give the recipe one hidden size per hidden layer of the network")
        self.model = model
        self.recipe = recipe
        self.device = torch.device(device)
        self.dtype = DTYPES[recipe.dtype]
        self.forward = forward if forward is not None else EngineForward(model)
        self.step = RecipeStep(model, recipe)
        self.loss_fn = TTFSLoss(recipe.xi, recipe.alpha, recipe.beta, recipe.silent_loss)
        # one generator for shuffling and input noise: its state goes into checkpoints
        self.generator = torch.Generator().manual_seed(recipe.seed + 1)
        self.epoch = 0
        self.history: List[EpochMetrics] = []
        # best validation epoch so far and its weights (recipe.select_best_val)
        self.best_val_accuracy = -1.0
        self.best_epoch = 0
        self.best_weights: Optional[List[torch.Tensor]] = None

    @classmethod
    def for_dataset(cls, recipe: Recipe, n_inputs: int, n_classes: int, device: str = "cpu",
                    forward_factory: Optional[Callable[[TTFSModel], object]] = None) -> "Trainer":
        generator = torch.Generator().manual_seed(recipe.seed)
        model = build_model([n_inputs, *recipe.hidden, n_classes], recipe.weight_mean,
                            recipe.weight_std, recipe.bias_times, generator,
                            dtype=DTYPES[recipe.dtype], device=device, tau_ratio=recipe.tau_ratio)
        forward = forward_factory(model) if forward_factory is not None else None
        return cls(model, recipe, forward=forward, device=device)

    def _tensor(self, array) -> torch.Tensor:
        return torch.as_tensor(np.asarray(array), dtype=self.dtype).to(self.device)

    def _shifted(self, inputs: torch.Tensor, split: Split) -> torch.Tensor:
        """``inputs`` (images of ``split``, row by row) each moved by a random number of
        pixels in [-shift_pixels, shift_pixels] along each axis; pixels moved in from
        outside the image are blank (``split.blank_time``)."""
        shift = self.recipe.shift_pixels
        height, width = split.image_shape
        batch = inputs.shape[0]
        images = inputs.reshape(batch, height, width)
        padded = torch.nn.functional.pad(images, (shift, shift, shift, shift),
                                         value=float(split.blank_time))
        offsets = torch.randint(0, 2 * shift + 1, (2, batch), generator=self.generator)
        offsets = offsets.to(inputs.device)
        rows = offsets[0].unsqueeze(1) + torch.arange(height, device=inputs.device)
        cols = offsets[1].unsqueeze(1) + torch.arange(width, device=inputs.device)
        samples = torch.arange(batch, device=inputs.device)[:, None, None]
        return padded[samples, rows[:, :, None], cols[:, None, :]].reshape(batch, -1)

    def train_epoch(self, split: Split, progress: Optional[Callable[[dict], None]] = None,
                    val_split: Optional[Split] = None) -> EpochMetrics:
        if len(split) == 0:  # an epoch would pass, the schedule step, and nothing be learnt
            raise ValueError("cannot train on a split of 0 samples")
        if val_split is not None and len(val_split) == 0:
            raise ValueError("the validation split holds 0 samples: pass val_split=None "
                             "to train without validation")
        if self.recipe.shift_pixels and split.image_shape is None:
            raise ValueError(f"recipe shift_pixels={self.recipe.shift_pixels} needs image data "
                             f"(MNIST); this training split has no image_shape")
        if self.recipe.shift_pixels and self.recipe.shift_pixels >= min(split.image_shape):
            raise ValueError(f"recipe shift_pixels={self.recipe.shift_pixels} must be smaller "
                             f"than the image side ({min(split.image_shape)} pixels): a larger "
                             f"shift moves the whole image out of the frame")
        self._check_features(split)
        start = time.perf_counter()
        cpu_start = time.process_time()
        n = len(split)
        order = torch.randperm(n, generator=self.generator).numpy()
        times_all = self._tensor(split.times)
        labels_all = torch.as_tensor(split.labels, dtype=torch.long, device=self.device)
        total_loss = 0.0
        total_correct = 0
        bumped = 0
        n_cut = 0
        batch = self.recipe.batch_size
        for first in range(0, n, batch):
            index = torch.as_tensor(order[first:first + batch], device=self.device)
            inputs = times_all[index]
            labels = labels_all[index]
            if self.recipe.shift_pixels:
                inputs = self._shifted(inputs, split)
            if self.recipe.input_noise > 0:
                noise = torch.randn(inputs.shape, generator=self.generator, dtype=torch.float64)
                noisy = inputs + self.recipe.input_noise * noise.to(inputs)
                inputs = (noisy.abs() if self.recipe.input_noise_negative == "reflect"
                          else torch.clamp(noisy, min=0.0))
            layer_times = self.forward(inputs)
            result = self.step(inputs, layer_times, labels)
            self.forward.write_weights()
            total_loss += result.loss * result.n_samples
            total_correct += result.n_correct
            bumped += result.bumped_layer is not None
            n_cut += result.n_cut
            if progress is not None:
                progress({"loss": result.loss, "acc": result.n_correct / result.n_samples,
                          "samples": result.n_samples})
        lr = self.step.optimizer.param_groups[0]["lr"]
        self.step.end_epoch()
        train_seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu_start
        val = self.evaluate(val_split) if val_split is not None else None
        self.epoch += 1
        metrics = EpochMetrics(self.epoch, total_loss / max(n, 1), total_correct / max(n, 1),
                               val.accuracy if val else None, val.loss if val else None,
                               train_seconds, lr, bumped, n_cut, cpu_seconds)
        self.history.append(metrics)
        if val is not None and val.accuracy > self.best_val_accuracy:
            self.best_val_accuracy = val.accuracy
            self.best_epoch = self.epoch
            self.best_weights = [layer.weights.detach().clone() for layer in self.model.layers]
        return metrics

    def use_best_weights(self) -> int:
        """Load the weights of the best validation epoch (if any); returns that epoch."""
        if self.best_weights is None:
            return self.epoch
        with torch.no_grad():
            for layer, w in zip(self.model.layers, self.best_weights):
                layer.weights.copy_(w)
        self.forward.write_weights()
        return self.best_epoch

    @torch.no_grad()
    def _check_features(self, split: Split) -> None:
        n_inputs = self.model.layers[0].n_in  # the bias spike is the model's own
        if split.times.shape[1] != n_inputs:
            raise ValueError(f"the split has {split.times.shape[1]} input features per sample "
                             f"but the network takes {n_inputs}")

    def evaluate(self, split: Split, batch_size: int = 1000) -> Evaluation:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if len(split) == 0:  # an accuracy of 0 samples has no value (it read as 0 %)
            raise ValueError("cannot evaluate a split of 0 samples")
        self._check_features(split)
        all_times: List[List[np.ndarray]] = []
        total_loss = 0.0
        total_correct = 0
        for first in range(0, len(split), batch_size):
            inputs = self._tensor(split.times[first:first + batch_size])
            labels = torch.as_tensor(split.labels[first:first + batch_size], dtype=torch.long,
                                     device=self.device)
            layer_times = self.forward(inputs)
            total_loss += float(self.loss_fn.per_sample(layer_times[-1], labels).sum())
            total_correct += int(correct(layer_times[-1], labels).sum())
            all_times.append([t.cpu().numpy() for t in layer_times])
        n = max(len(split), 1)
        layers = [np.concatenate([chunk[i] for chunk in all_times]) for i in range(len(all_times[0]))] \
            if all_times else []
        return Evaluation(total_correct / n, total_loss / n, layers, np.asarray(split.labels))

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "recipe": self.recipe.to_dict(),
            "model": self.model.state_dict(),
            "step": self.step.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": np.random.get_state(),
            "history": [m.__dict__ for m in self.history],
            "best": {"accuracy": self.best_val_accuracy, "epoch": self.best_epoch,
                     "weights": self.best_weights},
            # the forward pass's own state (a PyNN backend's noise stream), where it has one
            "forward": self.forward.state_dict() if hasattr(self.forward, "state_dict") else {},
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state`` (:meth:`state_dict`). Its recipe must be this trainer's,
        except ``epochs`` (a longer or shorter run), which may change only where the
        learning-rate schedule does not depend on it (not with ``lr_schedule='cosine'``,
        whose decay is planned over the whole run)."""
        if not isinstance(state, dict):
            raise ValueError(f"a checkpoint is the dict Trainer.state_dict() returns, got "
                             f"{type(state).__name__}")
        missing = missing_state_keys(state)
        if missing:
            raise ValueError(f"the checkpoint lacks {', '.join(missing)}: not a Trainer state")
        if not isinstance(state["epoch"], int) or isinstance(state["epoch"], bool) or state["epoch"] < 0:
            raise ValueError(f"the checkpoint's epoch must be an integer >= 0, got {state['epoch']!r}")
        # read through Recipe: a field added since the checkpoint was written takes its default
        saved = Recipe.from_dict(state["recipe"]).to_dict()
        current = self.recipe.to_dict()
        changed = sorted(k for k in current if k != "epochs" and saved[k] != current[k])
        if changed:
            raise ValueError("the checkpoint was trained with another recipe: "
                             + ", ".join(f"{k} {saved[k]!r} (now {current[k]!r})" for k in changed))
        if saved["epochs"] != current["epochs"] and current["lr_schedule"] == "cosine":
            raise ValueError(f"epochs: the checkpoint's cosine schedule decays over "
                             f"{saved['epochs']} epochs; continuing it to {current['epochs']} "
                             f"would not match any run (start a new one instead)")
        # all or nothing: a part that fails (a damaged optimizer or RNG state) must not leave
        # this trainer half replaced
        backup = copy.deepcopy(self.state_dict())
        try:
            self._load_parts(state)
        except Exception as error:
            self._load_parts(backup)
            what = "" if isinstance(error, ValueError) else f"{type(error).__name__}: "
            raise ValueError(f"the checkpoint cannot be loaded ({what}{error}); the trainer "
                             f"is unchanged") from error

    def _load_parts(self, state: dict) -> None:
        history = [EpochMetrics(**m) for m in state["history"]]
        self.model.load_state_dict(state["model"])
        self.epoch = state["epoch"]
        self.step.load_state_dict(state["step"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        self.history = history
        best = state.get("best")
        if best is not None:
            self.best_val_accuracy, self.best_epoch = best["accuracy"], best["epoch"]
            self.best_weights = best["weights"]
        forward_state = state.get("forward") or {}  # absent in checkpoints from before
        if forward_state:
            if not hasattr(self.forward, "load_state_dict"):
                raise ValueError(f"the checkpoint holds forward-pass state {sorted(forward_state)} "
                                 f"(saved through a PyNN backend); this trainer's forward pass "
                                 f"({type(self.forward).__name__}) cannot take it")
            self.forward.load_state_dict(forward_state)
        self.forward.write_weights()
