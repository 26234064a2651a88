"""HIL tuning experiments (session 5), run from the repository root:
    python benchmarks/results/hardware_experiments/session5/hilexp.py NAME "[CHIPS]" EPOCHS LR '["KEY=VALUE", ...]' SOFTWARE_MODEL.pt
one in-the-loop config (published mechanics, cosine lr) on the given chips; prints best val and test.
MIN_SLOPE=x in the environment patched the CPU gradient loops before recipe.min_slope existed
(patch_slope.py); the same rule is now the recipe field min_slope."""
import sys, json, math, time, copy
sys.path.insert(0, "benchmarks")
import torch, numpy as np
import hardware as H
sys.path.insert(0, "benchmarks/results/hardware_experiments/session5"); import patch_slope
from pynn_ttfs.backends.bss2 import ChipConfig
from pynn_ttfs.training.datasets import load_dataset
from pynn_ttfs.training.recipe import published_recipe, parse_overrides
from pynn_ttfs.training.trainer import Trainer

name, chips, epochs, lr, sets, sw = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), json.loads(sys.argv[5]), sys.argv[6]
torch.manual_seed(0)
data = H.duplicate_inputs(load_dataset("yinyang"), 5)
k = 5
base = published_recipe("yinyang")
recipe = base.replace(epochs=300, weight_clip=2.1, hidden=[120],
                      weight_mean=[base.weight_mean[0] / k, base.weight_mean[1]],
                      weight_std=[base.weight_std[0] / math.sqrt(k), base.weight_std[1]])
software = Trainer.for_dataset(recipe, data.n_inputs, data.n_classes)
software.model.load_state_dict(torch.load(sw))
hil = recipe.replace(lr=lr, lr_schedule="cosine", lr_min=0.0, epochs=epochs)
hil = hil.replace(**parse_overrides(sets))
cfg = ChipConfig(trial_duration_tau_s=30.0)
res = []
for chip in chips:
    t0 = time.time()
    dep, tr, _ = H.in_the_loop(software.model, hil, data, chip, epochs, 0, 180.0, "bss2_calibration", cfg,
                               label=name, select_on_val=True)
    res.append((chip, dep["accuracy"], tr["accuracy"]))
    print(f"RESULT {name} chip {chip} deployed {dep['accuracy']:.3f} test {tr['accuracy']:.3f} ({time.time()-t0:.0f}s)", flush=True)
print("slope-dropped pairs", patch_slope.COUNT, flush=True)
print(f"SUMMARY {name} test mean {np.mean([r[2] for r in res]):.4f} values {[r[2] for r in res]}", flush=True)
