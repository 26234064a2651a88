"""A short in-the-loop Yin-Yang run on the emulated chip (PyNN API, backend="bss2") improves
accuracy, and the chip's trial facts reach the caller."""
import pytest
import torch

import pynn_ttfs as sim
from pynn_ttfs.backends.bss2 import ChipConfig
from pynn_ttfs.training.datasets import load_yinyang
from pynn_ttfs.training.model import build_model
from pynn_ttfs.training.pynn_loop import PyNNForward, PyNNNetwork, build_network
from pynn_ttfs.training.recipe import published_recipe
from pynn_ttfs.training.trainer import Trainer


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_short_in_the_loop_run_on_bss2_improves_accuracy(tmp_path):
    data = load_yinyang()
    train, test = data.train.subset(300), data.test.subset(200)
    recipe = published_recipe("yinyang", hidden=[40], lr=0.01, batch_size=50, epochs=3, weight_clip=2.1)
    model = build_model([4, 40, 3], recipe.weight_mean, recipe.weight_std, recipe.bias_times,
                        torch.Generator().manual_seed(3))
    duration = 30 * 6.0
    sim.setup(timestep=0.1, trial_duration=duration, backend="bss2", chip_seed=2,
              calibration_dir=str(tmp_path), chip_config=ChipConfig(n_neurons=64))
    inputs, _, projections, _ = build_network(sim, model, tau_syn_ms=6.0, delay_ms=0.0, trial_duration=duration)
    forward = PyNNForward(PyNNNetwork(sim, inputs, projections, trial_duration=duration), model)
    trainer = Trainer(model, recipe, forward=forward)
    before = trainer.evaluate(test).accuracy
    for _ in range(recipe.epochs):
        trainer.train_epoch(train)
    after = trainer.evaluate(test).accuracy
    print("accuracy before", before, "after", after)
    assert after > before + 0.1, (before, after)
    substrate = sim.simulator.state.get_substrate()
    assert substrate.name == "bss2" and substrate.chip.calibrated
    assert substrate.total_trials == 2 * 200 + recipe.epochs * 300
    assert substrate.total_chip_time_s == pytest.approx(substrate.total_trials * 30 * 6e-6)
    sim.end()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_hardware_benchmark_runs_mnist16_on_the_chip(tmp_path):
    """benchmarks/hardware.py --dataset mnist16: a 256-input network trained in software,
    deployed to the chip and trained in the loop there, with its table row."""
    import json

    import numpy as np

    from pynn_ttfs.training.datasets import write_idx

    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    write_idx(data / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (60, 28, 28)))
    write_idx(data / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, 60))
    write_idx(data / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (30, 28, 28)))
    write_idx(data / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, 30))
    hardware = _hardware_module()
    out = tmp_path / "out"
    results = hardware.main(["--dataset", "mnist16", "--data-dir", str(data), "--hidden", "12",
                             "--sw-epochs", "1", "--hil-epochs", "2", "--average-from", "1", "--seeds", "0",
                             "--calibration-dir", str(tmp_path / "cal"), "--out", str(out)])
    (chip,) = results["per_chip"]
    assert chip["chip_seed"] == 0
    for row in ("deployed", "in_the_loop"):
        assert 0.0 <= chip[row]["accuracy"] <= 1.0
        assert chip[row]["chip_time_per_classification_us"] == pytest.approx(180.0)
    assert results["setup"]["duplicate"] == 1 and results["setup"]["hidden"] == 12
    table = (out / "hardware.md").read_text()
    assert "MNIST 16x16 256-12-10" in table and "96.9" in table and "averaged over epochs 1-2" in table
    assert json.loads((out / "hardware.json").read_text())["in_the_loop_accuracy"]["values"]
    sim.end()


def _hardware_module():
    from _benchmark_scripts import load_benchmark
    return load_benchmark("hardware")


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_hardware_benchmark_chip_changes_and_raw_chips(tmp_path, capsys):
    """--chip-set changes ChipConfig fields (recorded with the results), --calibration none
    runs the raw chips; malformed or unknown fields are command-line errors naming them."""
    hardware = _hardware_module()
    common = ["--sw-epochs", "2", "--hil-epochs", "0", "--seeds", "1", "--train-subset", "100",
              "--calibration-dir", str(tmp_path / "cal")]
    raw = hardware.main(common + ["--calibration", "none", "--chip-set", "calibrated_tau_spread=0.2",
                                  "--chip-set", "noise=false", "--out", str(tmp_path / "raw")])
    assert raw["setup"]["chip_config"]["calibrated_tau_spread"] == 0.2
    assert raw["setup"]["chip_config"]["noise"] is False and raw["setup"]["calibration"] == "none"
    assert not (tmp_path / "cal").exists()  # raw chips: nothing calibrated or cached
    calibrated = hardware.main(common + ["--out", str(tmp_path / "cal_out")])
    assert any((tmp_path / "cal").iterdir())
    assert (raw["per_chip"][0]["deployed"]["accuracy"]
            != calibrated["per_chip"][0]["deployed"]["accuracy"])
    for bad, message in [("nonsense_field=1", "unknown ChipConfig fields"),
                         ("calibrated_tau_spread", "needs KEY=VALUE"),
                         ("calibrated_tau_spread=abc", "is not a number"),
                         ("calibrated_tau_spread=-1", "must be finite and >= 0")]:
        with pytest.raises(SystemExit):
            hardware.main(common + ["--chip-set", bad, "--out", str(tmp_path / "bad")])
        assert message in capsys.readouterr().err
    sim.end()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_hardware_benchmark_in_the_loop_recipe_can_differ_from_the_software_one(tmp_path):
    """--sw-recipe improved --hil-recipe published: a float32 software network is trained
    in the loop with the published mechanics in float64; the recipe used is recorded."""
    hardware = _hardware_module()
    results = hardware.main(["--sw-recipe", "improved", "--hil-recipe", "published", "--sw-epochs", "1",
                             "--hil-epochs", "1", "--seeds", "1", "--train-subset", "100",
                             "--hil-set", "min_slope=0.1",
                             "--calibration-dir", str(tmp_path / "cal"), "--out", str(tmp_path / "out")])
    used = results["setup"]["in_the_loop_recipe"]
    assert used["dtype"] == "float64" and used["bump_skips_step"] is True and used["min_slope"] == 0.1
    assert used["weight_clip"] == 2.1 and used["hidden"] == [120]
    assert 0.0 <= results["per_chip"][0]["in_the_loop"]["accuracy"] <= 1.0
    model = hardware.model_as(hardware.TTFSModel.from_state_dict(
        torch.load(tmp_path / "out" / "software_model.pt")), torch.float64)
    assert all(layer.weights.dtype == torch.float64 for layer in model.layers)
    sim.end()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_hardware_benchmark_reruns_one_sweep_and_keeps_the_others(tmp_path):
    """--sweeps --sweep-only PROPERTY: only that property's points are measured again; the
    other properties' points come from OUT/extra.json, in the figure's order."""
    import json
    hardware = _hardware_module()
    out = tmp_path / "out"
    out.mkdir()
    kept = {"property": "weight bits", "value": 2, "deployed": 0.5, "in_the_loop": 0.6}
    (out / "extra.json").write_text(json.dumps({"sweeps": [
        {"property": "dead neuron fraction", "value": 0.0, "deployed": -1.0, "in_the_loop": -1.0}, kept]}))
    results = hardware.main(["--sw-epochs", "1", "--no-chips", "--sweeps", "--sweep-only", "dead neuron fraction",
                             "--sweep-hil-epochs", "0", "--seeds", "0", "--hidden", "20", "--chip-set", "n_neurons=64",
                             "--calibration-dir", str(tmp_path / "cal"), "--out", str(out)])
    sweeps = results["sweeps"]
    assert sweeps[0] == kept
    dead = [r for r in sweeps if r["property"] == "dead neuron fraction"]
    assert [r["value"] for r in dead] == [0.0, 0.1, 0.2, 0.3]
    assert all(0.0 <= r["deployed"] <= 1.0 for r in dead)  # measured again, not the -1 placeholder
    assert json.loads((out / "extra.json").read_text())["sweeps"] == sweeps
    assert (out / "robustness.png").stat().st_size > 1000
    sim.end()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_hardware_benchmark_reuse_software_keeps_the_training_time(tmp_path):
    """--reuse-software loads OUT/software_model.pt: the results keep the training time of
    the run that trained it (not the moment loading took) and say where the network came from."""
    hardware = _hardware_module()
    common = ["--sw-epochs", "2", "--hil-epochs", "0", "--seeds", "1", "--train-subset", "100",
              "--calibration-dir", str(tmp_path / "cal"), "--out", str(tmp_path / "out")]
    trained = hardware.main(common)
    assert trained["software"]["train_seconds"] > 0 and "loaded_from" not in trained["software"]
    reused = hardware.main(common + ["--reuse-software"])
    software = reused["software"]
    assert software["train_seconds"] == trained["software"]["train_seconds"]
    assert software["loaded_from"] == str(tmp_path / "out" / "software_model.pt")
    assert 0 <= software["load_seconds"] < software["train_seconds"]
    assert software["test"]["accuracy"] == trained["software"]["test"]["accuracy"]
    # the time belongs to the saved network, not to whichever results file came last
    (tmp_path / "out" / "hardware.json").write_text('{"software": {"train_seconds": 12345.0}}')
    assert hardware.main(common + ["--reuse-software"])["software"]["train_seconds"] == \
        trained["software"]["train_seconds"]
    (tmp_path / "out" / "software_model_timing.json").unlink()  # a network saved before
    assert hardware.main(common + ["--reuse-software"])["software"]["train_seconds"] is None
    sim.end()
