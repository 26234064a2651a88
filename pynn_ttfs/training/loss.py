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


@dataclass
class TTFSLoss:
    xi: float = 0.2
    alpha: float = 0.005
    beta: float = 1.0
    silent_loss: float = 100.0

    def __post_init__(self):
        if not self.xi > 0:
            raise ValueError(f"xi must be > 0, got {self.xi}")
        if not self.beta > 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")
        if self.alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")

    def per_sample(self, times: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Loss of each sample, shape (batch,); times (batch, n_classes) in tau_s, inf = silent."""
        if times.dim() != 2:
            raise ValueError(f"times must have shape (batch, n_classes), got {tuple(times.shape)}")
        labels = labels.to(torch.long)
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
        return self.per_sample(times, labels).mean()


def predict(times: torch.Tensor) -> torch.Tensor:
    """Index of the earliest output spike per sample; -1 if every output is silent."""
    earliest = times.argmin(dim=1)
    any_spike = torch.isfinite(times).any(dim=1)
    return torch.where(any_spike, earliest, torch.full_like(earliest, -1))


def correct(times: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Boolean per sample (all-silent = wrong)."""
    return predict(times) == labels.to(torch.long)
