import sys, copy, math
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[3]))
import torch; torch.set_num_threads(1)
import hardware as hw
from pynn_ttfs.backends.bss2 import ChipConfig
from pynn_ttfs.training.datasets import load_yinyang
from pynn_ttfs.training.recipe import published_recipe, parse_overrides
from pynn_ttfs.training.trainer import Trainer
chip_seed = int(sys.argv[1]); which = sys.argv[2]; epochs = int(sys.argv[3]); extra = sys.argv[4:]
data = hw.duplicate_inputs(load_yinyang(), 5); k = 5
base = published_recipe("yinyang")
recipe = base.replace(weight_clip=2.1, weight_mean=[base.weight_mean[0]/k, base.weight_mean[1]],
                      weight_std=[base.weight_std[0]/math.sqrt(k), base.weight_std[1]])
sw = Trainer.for_dataset(recipe, data.n_inputs, data.n_classes)
sw.model.load_state_dict(torch.load("benchmarks/results/hardware_sw300/software_model.pt"))
hil = recipe.replace(lr=0.002, lr_step=10**6)
if extra: hil = hil.replace(**parse_overrides(extra))
d = ChipConfig(trial_duration_tau_s=30)
ideal = ChipConfig.ideal(trial_duration_tau_s=30)
fp = {f: getattr(d, f) for f in ("threshold_spread","leak_spread","tau_mem_spread","tau_syn_spread","column_gain_spread","synapse_gain_spread","dc_gain_spread","calibrated_threshold_offset","calibrated_threshold_spread","calibrated_tau_spread")}
cfg = {"quant": ideal.replace(weight_resolution=30.0), "fp": ideal.replace(**fp), "noise": ideal.replace(noise=True),
       "full": d, "fp_quant": ideal.replace(weight_resolution=30.0, **fp)}[which]
model = copy.deepcopy(sw.model)
fwd, _ = hw.chip_forward(model, chip_seed, 180.0, "bss2_calibration", cfg)
tr = Trainer(model, hil, forward=fwd)
print(which, "deployed test", tr.evaluate(data.test, batch_size=1000).accuracy, flush=True)
for e in range(epochs):
    m = tr.train_epoch(data.train)
    print(which, e, "train", round(m.train_accuracy, 4), "val", round(tr.evaluate(data.val).accuracy, 4), m.bumped_batches, flush=True)
print(which, "final test", tr.evaluate(data.test, batch_size=1000).accuracy, flush=True)
