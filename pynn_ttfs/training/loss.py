"""The TTFS cross-entropy loss, predictions and accuracy (times in tau_s units).

    L = log sum_k exp(-t_k / (xi tau_s)) + t_y / (xi tau_s) + alpha exp(t_y / (beta tau_s))

cross-entropy of softmax(-t / xi) plus a regulariser that pushes the label neuron to fire
early. A silent label neuron (t_y = inf) gets the fixed loss ``silent_loss`` (no gradient).
The prediction is the earliest output neuron; a sample whose outputs are all silent counts
as wrong.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .recipe import SILENT_LOSS_MAX, _check


def _check_times(times: torch.Tensor, name: str = "times") -> None:
    """(batch, n_classes) first-spike times: finite or +inf (silent), never NaN or -inf,
    which would otherwise pass as silent or as the winning neuron."""
    if not isinstance(times, torch.Tensor) or times.dim() != 2:
        shape = tuple(times.shape) if isinstance(times, torch.Tensor) else type(times).__name__
        raise ValueError(f"{name} must be a tensor of shape (batch, n_classes), got {shape}")
    if not bool((times > -torch.inf).all()):  # one reduction: NaN > -inf is False
        if torch.isnan(times).any():
            raise ValueError(f"{name} contains NaN; use +inf for silent neurons")
        raise ValueError(f"{name} contains -inf; spike times must be finite or +inf")


def _check_labels(labels: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    labels = torch.as_tensor(labels, device=times.device)
    # bool is refused too: True would silently mean class 1
    if (labels.shape != times.shape[:1] or labels.is_floating_point() or labels.is_complex()
            or labels.dtype == torch.bool):
        raise ValueError(f"labels must be integers of shape (batch,) = ({times.shape[0]},), got "
                         f"{labels.dtype} of shape {tuple(labels.shape)}")
    labels = labels.to(torch.long)
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= times.shape[1]):
        raise ValueError(f"labels must lie in [0, {times.shape[1] - 1}] (one per output "
                         f"neuron), got [{int(labels.min())}, {int(labels.max())}]")
    return labels


@dataclass
class TTFSLoss:
    xi: float = 0.2
    alpha: float = 0.005
    beta: float = 1.0
    silent_loss: float = 100.0

    def __post_init__(self):
        # the same ranges as the Recipe's fields of these names
        _check("xi", self.xi, low=0.0, low_open=True)
        _check("alpha", self.alpha, low=0.0)
        _check("beta", self.beta, low=0.0, low_open=True)
        _check("silent_loss", self.silent_loss, 0.0, SILENT_LOSS_MAX)

    def per_sample(self, times: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Loss of each sample, shape (batch,); times (batch, n_classes) in tau_s, inf = silent."""
        _check_times(times)
        labels = _check_labels(labels, times)
        label_times = times.gather(1, labels[:, None]).squeeze(1)
        label_spikes = torch.isfinite(label_times)
        # every term below is evaluated on finite stand-ins, so silent samples give no NaN
        # in the (unused) branch of the backward pass
        safe = torch.where(label_spikes[:, None], times, torch.zeros_like(times))
        logits = torch.where(torch.isfinite(safe), -safe / self.xi,
                             torch.full_like(safe, -torch.inf))
        safe_label = torch.where(label_spikes, label_times, torch.zeros_like(label_times))
        cross_entropy = torch.logsumexp(logits, dim=1) + safe_label / self.xi
        regulariser = self.alpha * torch.exp(safe_label / self.beta)
        fixed = torch.full_like(cross_entropy, self.silent_loss)
        return torch.where(label_spikes, cross_entropy + regulariser, fixed)

    def __call__(self, times: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean loss over the batch."""
        if isinstance(times, torch.Tensor) and times.dim() == 2 and times.shape[0] == 0:
            raise ValueError("times holds no samples (batch 0): the mean loss is undefined")
        return self.per_sample(times, labels).mean()


def predict(times: torch.Tensor) -> torch.Tensor:
    """Index of the earliest output spike per sample; -1 if every output is silent."""
    _check_times(times)
    if times.shape[1] == 0:
        raise ValueError("times has no output neurons (shape (batch, 0)): nothing to predict")
    earliest = times.argmin(dim=1)
    any_spike = torch.isfinite(times).any(dim=1)
    return torch.where(any_spike, earliest, torch.full_like(earliest, -1))


def correct(times: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Boolean per sample (all-silent = wrong)."""
    return predict(times) == _check_labels(labels, times)
