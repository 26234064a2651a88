"""One training step of the published recipe, given every layer's first-spike times.

Shared by the direct engine path and the PyNN round trip: the times may come from the
engine or be recorded on any backend; the gradients are always the exact ones evaluated at
those times with the model's neuron parameters.

Mechanics (reference):
* TTFS cross-entropy loss (``loss.TTFSLoss``), mean over the batch;
* weight bumping: the first layer whose fraction of silent (sample, neuron) pairs exceeds
  its limit gets ``bump`` added to every incoming weight of each neuron silent in at least
  one sample; the bump doubles while the same layer keeps needing it and resets otherwise;
  a bumped batch takes no gradient step (``bump_skips_step=False``: it takes both, its
  gradient evaluated after the bump or, ``bump_gradient_weights="forward"``, before it);
* per-(sample, neuron) gradient cut-off (``gradients.layer_backward``);
* optional (not in the reference): no gradient through a (sample, neuron) pair whose model
  membrane slope at the recorded time is below ``recipe.min_slope`` (chip in the loop);
* optimizer (Adam or SGD) step, then optional weight clipping.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import torch

from .gradients import layer_backward
from .loss import TTFSLoss, correct
from .model import TTFSModel
from .recipe import Recipe


@dataclass
class StepResult:
    loss: float
    n_correct: int
    n_samples: int
    #: index of the layer whose weights were bumped (silent neurons), None if none was; with
    #: ``bump_skips_step`` a bumped batch takes no gradient step, otherwise it takes both
    bumped_layer: Optional[int]
    n_cut: int


def make_optimizer(model: TTFSModel, recipe: Recipe) -> torch.optim.Optimizer:
    if recipe.optimizer == "adam":
        return torch.optim.Adam(model.parameters, lr=recipe.lr)
    return torch.optim.SGD(model.parameters, lr=recipe.lr, momentum=recipe.momentum)


def make_scheduler(optimizer: torch.optim.Optimizer, recipe: Recipe):
    if recipe.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(recipe.epochs, 1),
                                                          eta_min=recipe.lr_min)
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=recipe.lr_step, gamma=recipe.lr_gamma)


class RecipeStep:
    """Holds the optimizer state and the bumping state; ``__call__`` trains on one batch."""

    def __init__(self, model: TTFSModel, recipe: Recipe):
        self.model = model
        self.recipe = recipe
        self.loss_fn = TTFSLoss(recipe.xi, recipe.alpha, recipe.beta, recipe.silent_loss)
        self.optimizer = make_optimizer(model, recipe)
        self.scheduler = make_scheduler(self.optimizer, recipe)
        self.bump = recipe.bump_value
        self.last_bumped: Optional[int] = None

    def gradients(self, input_times: torch.Tensor, layer_times: List[torch.Tensor],
                  labels: torch.Tensor):
        """(batch loss, per-layer dL/dW, number of cut (sample, neuron) pairs)."""
        out = layer_times[-1].detach().clone().requires_grad_(True)
        loss = self.loss_fn(out, labels)
        (grad_out,) = torch.autograd.grad(loss, out)
        grads = [None] * len(self.model.layers)
        n_cut = 0
        previous = [input_times] + [t.detach() for t in layer_times[:-1]]
        for index in reversed(range(len(self.model.layers))):
            layer = self.model.layers[index]
            result = layer_backward(
                self.model.layer_input(index, previous[index]), layer.weights.detach(),
                layer_times[index].detach(), grad_out, layer.tau_syn, layer.tau_mem,
                layer.threshold, max_weight_grad=self.recipe.max_weight_grad,
                need_input_grad=index > 0, min_slope=self.recipe.min_slope,
            )
            grads[index] = result.weights
            n_cut += result.n_cut
            if index > 0:
                grad_out = result.inputs[:, : layer.n_in]  # bias inputs are fixed
        return loss.detach(), grads, n_cut

    def _bump_layer(self, layer_times: List[torch.Tensor]) -> Optional[int]:
        for index, times in enumerate(layer_times):
            silent = ~torch.isfinite(times)
            if float(silent.float().mean()) > self.recipe.max_silent_fraction[index]:
                if self.last_bumped == index:
                    self.bump *= 2.0
                else:
                    self.bump = self.recipe.bump_value
                self.last_bumped = index
                layer = self.model.layers[index]
                needy = silent.any(dim=0).to(layer.weights.dtype)[None, :]
                if layer.mask is not None:
                    needy = needy * layer.mask
                with torch.no_grad():
                    layer.weights.add_(self.bump * needy)
                return index
        self.last_bumped = None
        self.bump = self.recipe.bump_value
        return None

    def __call__(self, input_times: torch.Tensor, layer_times: List[torch.Tensor],
                 labels: torch.Tensor) -> StepResult:
        n_correct = int(correct(layer_times[-1], labels).sum())
        gradient_first = (not self.recipe.bump_skips_step
                          and self.recipe.bump_gradient_weights == "forward")
        if gradient_first:  # at the weights that produced layer_times
            loss, grads, n_cut = self.gradients(input_times, layer_times, labels)
        bumped = self._bump_layer(layer_times) if self.recipe.bump_value > 0 else None
        if bumped is not None and self.recipe.bump_skips_step:
            with torch.no_grad():
                loss = self.loss_fn(layer_times[-1], labels)
            self._clip()
            return StepResult(float(loss), n_correct, len(labels), bumped, 0)
        if not gradient_first:
            loss, grads, n_cut = self.gradients(input_times, layer_times, labels)
        for layer, grad in zip(self.model.layers, grads):
            # absent connections (sparse PyNN projections) stay absent
            layer.weights.grad = grad if layer.mask is None else grad * layer.mask
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self._clip()
        return StepResult(float(loss), n_correct, len(labels), bumped, n_cut)

    def _clip(self) -> None:
        if self.recipe.weight_clip is not None:
            with torch.no_grad():
                for layer in self.model.layers:
                    layer.weights.clamp_(-self.recipe.weight_clip, self.recipe.weight_clip)

    def end_epoch(self) -> None:
        self.scheduler.step()

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "bump": self.bump, "last_bumped": self.last_bumped}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.bump = state["bump"]
        self.last_bumped = state["last_bumped"]
