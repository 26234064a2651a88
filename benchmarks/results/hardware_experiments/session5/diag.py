import sys, math, torch, numpy as np
sys.path.insert(0, "benchmarks")
import hardware as H
from pynn_ttfs.backends.bss2 import ChipConfig
from pynn_ttfs.training.datasets import load_dataset
from pynn_ttfs.training.recipe import published_recipe
from pynn_ttfs.training.trainer import Trainer
from pynn_ttfs.engine.neuron import psp_kernel_derivative
data = H.duplicate_inputs(load_dataset("yinyang"), 5)
k = 5; base = published_recipe("yinyang")
recipe = base.replace(weight_clip=2.1, weight_mean=[base.weight_mean[0]/k, base.weight_mean[1]], weight_std=[base.weight_std[0]/math.sqrt(k), base.weight_std[1]])
sw = Trainer.for_dataset(recipe, data.n_inputs, data.n_classes)
sw.model.load_state_dict(torch.load(sys.argv[1]))
model = sw.model
fwd, _ = H.chip_forward(model, int(sys.argv[2]), 180.0, "bss2_calibration", ChipConfig(trial_duration_tau_s=30.0))
x = torch.as_tensor(data.train.times[:1000], dtype=torch.float64)
chip_times = fwd(x)
soft_times = model.forward(x)
for name, times in (("chip", chip_times), ("soft", soft_times)):
    prev = x
    for li, layer in enumerate(model.layers):
        inp = model.layer_input(li, prev)
        T = times[li]
        lag = T.unsqueeze(1) - inp.unsqueeze(2)
        lag = torch.where(torch.isfinite(lag) & (lag > 0), lag, torch.full_like(lag, -1.0))
        slope = torch.einsum("bim,im->bm", psp_kernel_derivative(lag, layer.tau_syn, layer.tau_mem), layer.weights.detach().to(lag))
        fin = torch.isfinite(T)
        s = slope[fin]
        print(name, "layer", li, "spiking", fin.float().mean().item(), "slope quantiles", np.round(np.quantile(s.numpy(), [0.001, 0.01, 0.05, 0.25, 0.5]), 4), "frac<0.01", (s < 0.01).float().mean().item(), "frac<0.05", (s<0.05).float().mean().item())
        prev = T
