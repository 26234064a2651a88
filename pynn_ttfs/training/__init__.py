"""Training TTFS networks: datasets, the published recipe, and in-the-loop training through
any PyNN backend (``pynn_ttfs``, its BSS-2 emulation, ``pyNN.nest``).

    from pynn_ttfs.training import load_dataset, improved_recipe, pynn_trainer
    trainer = pynn_trainer(sim, input_population, projections, improved_recipe("yinyang"))
    for epoch in range(n): trainer.train_epoch(data.train, val_split=data.val)
"""
from .datasets import DATASET_NAMES, load_dataset  # noqa: F401
from .loss import TTFSLoss, predict  # noqa: F401
from .recipe import Recipe, improved_recipe, published_recipe  # noqa: F401
from .trainer import Trainer  # noqa: F401
from .pynn_loop import PyNNNetwork, PyNNForward, build_network, pynn_trainer  # noqa: F401

__all__ = ["DATASET_NAMES", "load_dataset", "TTFSLoss", "predict", "Recipe", "improved_recipe",
           "published_recipe", "Trainer", "PyNNNetwork", "PyNNForward", "build_network",
           "pynn_trainer"]
