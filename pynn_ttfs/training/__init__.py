"""Training TTFS networks: datasets, the published recipe, and in-the-loop training through
any PyNN backend (``pynn_ttfs``, its BSS-2 emulation, ``pyNN.nest``)."""
from .datasets import DATASET_NAMES, load_dataset  # noqa: F401
