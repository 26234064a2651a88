import sys, copy, math
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[3]))
import torch; torch.set_num_threads(1)
import hardware as hw
from pynn_ttfs.backends.bss2 import ChipConfig
from pynn_ttfs.training.datasets import load_yinyang
from pynn_ttfs.training.recipe import published_recipe
from pynn_ttfs.training.trainer import Trainer
chip_seed = int(sys.argv[1]); path = sys.argv[2]
data = hw.duplicate_inputs(load_yinyang(), 5); k = 5
base = published_recipe("yinyang")
recipe = base.replace(weight_clip=2.1, weight_mean=[base.weight_mean[0]/k, base.weight_mean[1]],
                      weight_std=[base.weight_std[0]/math.sqrt(k), base.weight_std[1]])
sw = Trainer.for_dataset(recipe, data.n_inputs, data.n_classes)
sw.model.load_state_dict(torch.load(path))
print(path, "software exact", sw.evaluate(data.test).accuracy, flush=True)
d = ChipConfig(trial_duration_tau_s=30)
ideal = ChipConfig.ideal(trial_duration_tau_s=30)
fp = {f: getattr(d, f) for f in ("threshold_spread","leak_spread","tau_mem_spread","tau_syn_spread","column_gain_spread","synapse_gain_spread","dc_gain_spread","calibrated_threshold_offset","calibrated_threshold_spread","calibrated_tau_spread")}
configs = {"ideal": ideal, "weights 6bit": ideal.replace(weight_resolution=30.0),
  "time stamps": ideal.replace(time_resolution_us=0.008), "trial noise": ideal.replace(noise=True),
  "fixed pattern (calibrated)": ideal.replace(**fp),
  "fixed pattern, synapse gain 0": ideal.replace(**dict(fp, synapse_gain_spread=0.0)),
  "fixed pattern, thr offset 0": ideal.replace(**dict(fp, calibrated_threshold_offset=0.0)),
  "full": d}
for name, cfg in configs.items():
    model = copy.deepcopy(sw.model)
    fwd, _ = hw.chip_forward(model, chip_seed, 180.0, "bss2_calibration", cfg)
    t = Trainer(model, recipe, forward=fwd)
    print(f"{name:32s} {t.evaluate(data.test, batch_size=1000).accuracy:.4f}", flush=True)
