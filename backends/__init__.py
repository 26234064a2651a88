"""Substrates that execute a compiled network: software (exact) and bss2 (chip emulation).

``get_substrate(name, **options)`` is how the PyNN layer picks one (``sim.setup(backend=...)``).
"""
from __future__ import annotations

import inspect

from .base import Substrate
from .graph import LIF, SOURCE, NetworkGraph, PopulationSpec, ProjectionSpec, TrialInput, TrialResult

SUBSTRATE_NAMES = ("software", "bss2")


def substrate_class(name: str):
    if name == "software":
        from .software import SoftwareSubstrate
        return SoftwareSubstrate
    if name == "bss2":
        from .bss2 import BSS2Substrate
        return BSS2Substrate
    raise ValueError(f"backend must be one of {SUBSTRATE_NAMES}, got {name!r}")


def get_substrate(name: str = "software", **options) -> Substrate:
    """Build a substrate; options its constructor does not accept are ignored."""
    cls = substrate_class(name)
    accepted = inspect.signature(cls.__init__).parameters
    if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        return cls(**options)
    return cls(**{k: v for k, v in options.items() if k in accepted})


__all__ = [
    "Substrate", "NetworkGraph", "PopulationSpec", "ProjectionSpec", "TrialInput", "TrialResult",
    "LIF", "SOURCE", "get_substrate", "substrate_class", "SUBSTRATE_NAMES",
]
