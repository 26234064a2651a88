"""The exact software substrate (PyTorch, CPU or CUDA)."""
from .substrate import SoftwareSubstrate, compile_layer_inputs

__all__ = ["SoftwareSubstrate", "compile_layer_inputs"]
