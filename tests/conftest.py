import os
import sys

import torch

# tests/ holds shared reference helpers (ode_reference.py)
sys.path.insert(0, os.path.dirname(__file__))
# deterministic and fair on the 2-core CI machine
torch.set_num_threads(min(2, torch.get_num_threads()))
