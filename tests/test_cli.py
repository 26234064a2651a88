"""The pynn-ttfs command line: train, metrics, plots, resume, evaluate, errors."""
import json
import re

import numpy as np
import pytest
import torch

from pynn_ttfs.training import cli
from pynn_ttfs.training.trainer import Trainer
from pynn_ttfs.training.datasets import write_idx

SMALL = ["--train-size", "300", "--val-size", "60", "--test-size", "90", "--batch-size", "50",
         "--quiet", "--threads", "1"]


def _train(out, *extra):
    return cli.main(["train", "yinyang", "--out", str(out), *SMALL, *extra])


def test_train_writes_metrics_checkpoint_and_plots(tmp_path):
    assert _train(tmp_path, "--epochs", "2") == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert len(metrics["epochs"]) == 2 and metrics["epochs_done"] == 2
    for key in ("train_loss", "train_accuracy", "val_accuracy", "seconds"):
        assert key in metrics["epochs"][0]
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert metrics["mean_first_output_time"] > 0
    assert metrics["spikes_per_classification"] > 0
    for name in ("learning_curves.png", "spike_raster.png", "output_times.png", "yinyang_map.png"):
        assert (tmp_path / name).stat().st_size > 1000
    assert (tmp_path / "checkpoint.pt").exists()
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["recipe"]["batch_size"] == 50 and config["recipe"]["epochs"] == 2


def test_resume_continues_bit_identically(tmp_path):
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    assert _train(straight, "--epochs", "4", "--no-plots") == 0
    assert _train(interrupted, "--epochs", "2", "--no-plots") == 0
    assert cli.main(["train", "yinyang", "--out", str(interrupted), "--resume", "--epochs", "4",
                     "--quiet", "--no-plots", "--threads", "1"]) == 0
    a = json.loads((straight / "metrics.json").read_text())
    b = json.loads((interrupted / "metrics.json").read_text())
    assert [e["train_loss"] for e in a["epochs"]] == [e["train_loss"] for e in b["epochs"]]
    assert [e["val_accuracy"] for e in a["epochs"]] == [e["val_accuracy"] for e in b["epochs"]]
    assert a["test_accuracy"] == b["test_accuracy"]
    wa = torch.load(straight / "checkpoint.pt", weights_only=False)["model"]["weights"]
    wb = torch.load(interrupted / "checkpoint.pt", weights_only=False)["model"]["weights"]
    for x, y in zip(wa, wb):
        assert torch.equal(x, y)


def test_same_seed_same_result_and_training_helps(tmp_path):
    assert _train(tmp_path / "a", "--epochs", "3", "--no-plots", "--seed", "3") == 0
    assert _train(tmp_path / "b", "--epochs", "3", "--no-plots", "--seed", "3") == 0
    a = json.loads((tmp_path / "a" / "metrics.json").read_text())
    b = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert a["epochs"][-1]["train_loss"] == b["epochs"][-1]["train_loss"]
    assert a["epochs"][-1]["train_loss"] < a["epochs"][0]["train_loss"]


def test_evaluate_reads_a_run_directory(tmp_path, capsys):
    assert _train(tmp_path, "--epochs", "1", "--no-plots") == 0
    trained = json.loads((tmp_path / "metrics.json").read_text())["test_accuracy"]
    capsys.readouterr()
    assert cli.main(["evaluate", str(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["accuracy"] == pytest.approx(trained)
    assert json.loads((tmp_path / "evaluation.json").read_text())["epochs_trained"] == 1


def test_errors_unknown_dataset_missing_data_missing_run(tmp_path, capsys, monkeypatch):
    with pytest.raises(SystemExit):
        cli.main(["train", "cifar10"])
    assert "invalid choice" in capsys.readouterr().err
    monkeypatch.delenv("PYNN_TTFS_MNIST_DIR", raising=False)
    assert cli.main(["train", "mnist16", "--data-dir", str(tmp_path), "--quiet",
                     "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte" in err and str(tmp_path) in err
    assert cli.main(["evaluate", str(tmp_path / "nothing")]) == 2
    assert "no checkpoint.pt" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", "yinyang", "--backend", "loihi"])


def test_mnist16_from_tiny_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    write_idx(data / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (40, 28, 28)))
    write_idx(data / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, 40))
    write_idx(data / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (20, 28, 28)))
    write_idx(data / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, 20))
    assert cli.main(["train", "mnist16", "--data-dir", str(data), "--epochs", "1", "--quiet",
                     "--batch-size", "20", "--out", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["recipe"]["hidden"] == [128] and "test_accuracy" in metrics
    assert (tmp_path / "run" / "output_times.png").exists()


def test_software_pynn_round_trip_from_the_cli(tmp_path):
    assert _train(tmp_path / "direct", "--epochs", "4", "--no-plots", "--dtype", "float64") == 0
    assert _train(tmp_path / "pynn", "--epochs", "4", "--no-plots", "--dtype", "float64",
                  "--pynn") == 0
    a = json.loads((tmp_path / "direct" / "metrics.json").read_text())
    b = json.loads((tmp_path / "pynn" / "metrics.json").read_text())
    # the PyNN network has 0.1 ms synaptic delays, the direct model none: close, not equal
    assert abs(a["epochs"][0]["train_loss"] - b["epochs"][0]["train_loss"]) < 0.1
    assert a["test_accuracy"] > 0.5 and b["test_accuracy"] > 0.5


def test_set_changes_recipe_fields_and_flags_win(tmp_path, capsys):
    assert _train(tmp_path, "--epochs", "1", "--set", "lr_schedule=cosine", "--set", "lr=0.01",
                  "--set", "hidden=[17]", "--set", "epochs=5", "--no-plots") == 0
    recipe = json.loads((tmp_path / "config.json").read_text())["recipe"]
    assert recipe["lr_schedule"] == "cosine" and recipe["lr"] == 0.01
    assert recipe["hidden"] == [17] and recipe["epochs"] == 1  # --epochs beats --set epochs
    assert cli.main(["train", "yinyang", "--out", str(tmp_path / "bad"), *SMALL,
                     "--set", "learning_rate=0.1"]) == 2
    err = capsys.readouterr().err
    assert "unknown recipe field 'learning_rate'" in err and "lr_schedule" in err
    assert cli.main(["train", "yinyang", "--out", str(tmp_path / "bad2"), *SMALL,
                     "--set", "lr=fast"]) == 2
    assert "recipe field 'lr' needs a float" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_bss2_backend_defaults_clip_and_min_slope(tmp_path, monkeypatch):
    """--backend bss2 keeps the float weights in the chip's range and drops gradients where
    the model's membrane slope at the recorded time is below BSS2_MIN_SLOPE; --set wins."""
    monkeypatch.setenv("PYNN_TTFS_BSS2_CALIBRATION_DIR", str(tmp_path / "cal"))
    tiny = ["--train-size", "100", "--val-size", "30", "--test-size", "30", "--batch-size", "50",
            "--quiet", "--threads", "1", "--epochs", "1", "--no-plots", "--backend", "bss2"]
    assert cli.main(["train", "yinyang", "--out", str(tmp_path / "a"), *tiny]) == 0
    recipe = json.loads((tmp_path / "a" / "config.json").read_text())["recipe"]
    assert recipe["weight_clip"] == cli.BSS2_MAX_WEIGHT and recipe["min_slope"] == cli.BSS2_MIN_SLOPE
    assert 0.0 <= json.loads((tmp_path / "a" / "metrics.json").read_text())["test_accuracy"] <= 1.0
    assert cli.main(["train", "yinyang", "--out", str(tmp_path / "b"), *tiny, "--set", "min_slope=null"]) == 0
    assert json.loads((tmp_path / "b" / "config.json").read_text())["recipe"]["min_slope"] is None
    software = tmp_path / "c"
    assert _train(software, "--epochs", "1", "--no-plots") == 0
    assert json.loads((software / "config.json").read_text())["recipe"]["min_slope"] is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_accuracy_benchmark_names_a_missing_gpu():
    import subprocess
    import sys
    from pathlib import Path
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "accuracy.py"
    result = subprocess.run([sys.executable, str(script), "--device", "cuda", "--epochs", "1"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "--device cuda: torch finds no CUDA device" in result.stderr


def test_train_on_val_trains_on_both_splits_without_validation(tmp_path, capsys):
    """--set train_on_val=true --set select_best_val=false: 300 + 60 training samples per
    epoch (8 batches of 50), no validation accuracy, the last epoch tested, plots drawn."""
    assert _train(tmp_path, "--epochs", "2", "--set", "train_on_val=true",
                  "--set", "select_best_val=false") == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert [e["val_accuracy"] for e in metrics["epochs"]] == [None, None]
    assert metrics["tested_epoch"] == 2 and 0.0 <= metrics["test_accuracy"] <= 1.0
    assert (tmp_path / "learning_curves.png").stat().st_size > 1000
    adam = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["step"]["optimizer"]["state"]
    assert all(float(s["step"]) == 2 * 8 for s in adam.values())  # 360 samples = 8 batches
    assert _train(tmp_path / "bad", "--epochs", "1", "--set", "train_on_val=true") == 2
    assert "set select_best_val=False" in capsys.readouterr().err


def test_set_null_switches_a_field_off(tmp_path):
    """--set KEY=null is a value (None = off), not 'keep the default'."""
    assert _train(tmp_path, "--epochs", "1", "--no-plots", "--set", "max_weight_grad=null") == 0
    recipe = json.loads((tmp_path / "config.json").read_text())["recipe"]
    assert recipe["max_weight_grad"] is None


def test_a_saved_run_is_never_overwritten_without_asking(tmp_path, capsys):
    assert _train(tmp_path, "--epochs", "1", "--no-plots") == 0
    saved = {name: (tmp_path / name).read_bytes() for name in ("checkpoint.pt", "config.json")}
    assert _train(tmp_path, "--epochs", "1", "--no-plots", "--set", "lr=0.01") == 2
    assert "already holds a run" in capsys.readouterr().err
    assert {name: (tmp_path / name).read_bytes() for name in saved} == saved
    (tmp_path / "evaluation.json").write_text("{}")  # as `pynn-ttfs evaluate` leaves it
    # --overwrite replaces the run as a whole: nothing of the old one stays beside the new
    assert _train(tmp_path, "--epochs", "0", "--no-plots", "--set", "lr=0.01", "--overwrite") == 0
    assert json.loads((tmp_path / "config.json").read_text())["recipe"]["lr"] == 0.01
    assert not (tmp_path / "checkpoint.pt").exists() and not (tmp_path / "evaluation.json").exists()
    assert json.loads((tmp_path / "metrics.json").read_text())["epochs_done"] == 0


def test_overwrite_keeps_the_old_run_until_the_new_one_has_a_checkpoint(tmp_path, capsys, monkeypatch):
    """A new run that fails in its first epoch (here: shift_pixels on Yin-Yang, which only
    the training step can check; then an interrupt) leaves the old run as it was."""
    assert _train(tmp_path, "--epochs", "1", "--no-plots") == 0
    saved = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert _train(tmp_path, "--epochs", "1", "--no-plots", "--overwrite", "--set", "shift_pixels=1") == 2
    assert "shift_pixels=1 needs image data" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == saved

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(Trainer, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path, "--epochs", "1", "--no-plots", "--overwrite", "--set", "lr=0.01")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == saved
    monkeypatch.undo()
    # a new run that saves its first checkpoint replaces the old one, nothing set aside stays
    assert _train(tmp_path, "--epochs", "1", "--no-plots", "--overwrite", "--set", "lr=0.01") == 0
    assert json.loads((tmp_path / "config.json").read_text())["recipe"]["lr"] == 0.01
    assert not (tmp_path / cli.SET_ASIDE).exists()
    # a folder an interrupted --overwrite left behind is never overwritten itself
    (tmp_path / cli.SET_ASIDE).mkdir()
    assert _train(tmp_path, "--epochs", "1", "--no-plots", "--overwrite") == 2
    assert "holds a run that an interrupted --overwrite set aside" in capsys.readouterr().err
    assert json.loads((tmp_path / "config.json").read_text())["recipe"]["lr"] == 0.01


def test_resume_refuses_flags_that_would_change_the_run(tmp_path, capsys):
    assert _train(tmp_path, "--epochs", "1", "--no-plots") == 0
    saved = (tmp_path / "checkpoint.pt").read_bytes()
    resume = ["train", "yinyang", "--out", str(tmp_path), "--resume", "--quiet", "--no-plots",
              "--threads", "1"]
    for extra, named in ((["--batch-size", "20"], "--batch-size 20"),
                         (["--set", "lr=0.1"], "--set lr 0.1"),
                         (["--seed", "4"], "--seed 4"),
                         (["--backend", "bss2"], "--backend 'bss2'"),
                         (["--test-size", "10"], "--test-size 10"),
                         (["--set", "max_weight_grad=null"], "--set max_weight_grad None")):
        assert cli.main(resume + extra) == 2, extra
        assert named in capsys.readouterr().err
    assert cli.main(["train", "mnist16", "--out", str(tmp_path), "--resume", "--quiet"]) == 2
    assert "dataset 'mnist16' (the run has 'yinyang')" in capsys.readouterr().err
    assert (tmp_path / "checkpoint.pt").read_bytes() == saved
    # the same values as the run's are no change; --epochs is, and config.json records it
    assert cli.main(resume + ["--batch-size", "50", "--epochs", "2"]) == 0
    assert json.loads((tmp_path / "config.json").read_text())["recipe"]["epochs"] == 2
    assert json.loads((tmp_path / "metrics.json").read_text())["epochs_done"] == 2


def test_resume_cannot_stretch_a_cosine_schedule(tmp_path, capsys):
    assert _train(tmp_path, "--epochs", "2", "--no-plots", "--set", "lr_schedule=cosine") == 0
    saved = (tmp_path / "config.json").read_bytes()
    assert cli.main(["train", "yinyang", "--out", str(tmp_path), "--resume", "--epochs", "4",
                     "--quiet", "--no-plots", "--threads", "1"]) == 2
    assert "cosine schedule decays over 2 epochs" in capsys.readouterr().err
    assert (tmp_path / "config.json").read_bytes() == saved


def test_sizes_and_a_contradicting_dataset_are_rejected(tmp_path, capsys):
    assert cli.main(["train", "yinyang", "--out", str(tmp_path / "a"), "--val-size", "0",
                     "--quiet"]) == 2
    assert "--val-size must be >= 1 samples, got 0" in capsys.readouterr().err
    assert cli.main(["train", "yinyang", "--out", str(tmp_path / "b"), "--train-size", "-5",
                     "--quiet"]) == 2
    assert "--train-size must be >= 1" in capsys.readouterr().err
    assert cli.main(["train", "yinyang", "--out", str(tmp_path / "c"), "--set", "dataset=mnist16",
                     "--quiet"]) == 2
    assert "contradicts the dataset argument 'yinyang'" in capsys.readouterr().err
    assert cli.main(["train", "yinyang", "--out", str(tmp_path / "d"), "--set", "lr=-1",
                     "--quiet"]) == 2
    assert "lr must be a finite number in (0, inf), got -1" in capsys.readouterr().err
    assert not any((tmp_path / name).exists() for name in ("a", "b", "c", "d"))


def test_resume_takes_the_run_length_from_the_checkpoint(tmp_path):
    """A run extended with --epochs by an earlier version recorded the new length only in
    its checkpoint; resuming it without --epochs keeps that length."""
    assert _train(tmp_path, "--epochs", "2", "--no-plots", "--set", "lr_schedule=cosine") == 0
    config = json.loads((tmp_path / "config.json").read_text())
    config["recipe"]["epochs"] = 1  # what the earlier version left in config.json
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert cli.main(["train", "yinyang", "--out", str(tmp_path), "--resume", "--quiet",
                     "--no-plots", "--threads", "1"]) == 0
    assert json.loads((tmp_path / "config.json").read_text())["recipe"]["epochs"] == 2
    assert json.loads((tmp_path / "metrics.json").read_text())["epochs_done"] == 2


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_bss2_resume_continues_the_chips_noise_bit_identically(tmp_path, monkeypatch):
    """The emulated chip's trial-to-trial noise stream is part of the checkpoint."""
    monkeypatch.setenv("PYNN_TTFS_BSS2_CALIBRATION_DIR", str(tmp_path / "cal"))
    tiny = ["--train-size", "60", "--val-size", "20", "--test-size", "20", "--batch-size", "30",
            "--quiet", "--threads", "1", "--no-plots", "--backend", "bss2"]
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    assert cli.main(["train", "yinyang", "--out", str(straight), *tiny, "--epochs", "2"]) == 0
    assert cli.main(["train", "yinyang", "--out", str(interrupted), *tiny, "--epochs", "1"]) == 0
    state = torch.load(interrupted / "checkpoint.pt", weights_only=False)
    assert state["forward"]["random_state"]["noise"]  # the noise generator's state is saved
    assert cli.main(["train", "yinyang", "--out", str(interrupted), "--resume", "--epochs", "2",
                     "--quiet", "--no-plots", "--threads", "1"]) == 0
    a = json.loads((straight / "metrics.json").read_text())
    b = json.loads((interrupted / "metrics.json").read_text())
    assert [e["train_loss"] for e in a["epochs"]] == [e["train_loss"] for e in b["epochs"]]
    assert a["test_accuracy"] == b["test_accuracy"]


def test_a_start_that_fails_leaves_the_saved_run_and_no_folder(tmp_path, capsys, monkeypatch):
    """--overwrite removes the old run only once the new one starts: a bad device, a
    missing backend or missing data fail first (they deleted the old run's files)."""
    assert _train(tmp_path, "--epochs", "1", "--no-plots") == 0
    saved = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert _train(tmp_path, "--epochs", "1", "--overwrite", "--device", "gpu") == 2
    assert "--device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'" in capsys.readouterr().err
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _train(tmp_path, "--epochs", "1", "--overwrite", "--device", "cuda") == 2
    assert "torch finds no CUDA device" in capsys.readouterr().err
    monkeypatch.delenv("PYNN_TTFS_MNIST_DIR", raising=False)
    assert cli.main(["train", "mnist16", "--out", str(tmp_path), "--overwrite", "--quiet",
                     "--data-dir", str(tmp_path / "nowhere")]) == 2
    assert "MNIST IDX files not found" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == saved
    # a fresh folder is not even created by a failed start
    assert _train(tmp_path / "new", "--device", "gpu") == 2
    assert not (tmp_path / "new").exists()


def test_resume_cannot_shorten_a_run_and_may_change_the_device(tmp_path, capsys):
    assert _train(tmp_path, "--epochs", "2", "--no-plots") == 0
    resume = ["train", "yinyang", "--out", str(tmp_path), "--resume", "--quiet", "--no-plots",
              "--threads", "1"]
    assert cli.main(resume + ["--epochs", "1"]) == 2
    assert "--epochs 1: the run has already trained 2 epochs" in capsys.readouterr().err
    assert cli.main(resume + ["--device", "cpu", "--epochs", "3"]) == 0  # where, not what
    assert json.loads((tmp_path / "metrics.json").read_text())["epochs_done"] == 3
    assert cli.main(["evaluate", str(tmp_path), "--device", "cpu"]) == 0


def _strict_json(text):
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


def test_an_all_silent_network_writes_null_not_infinity(tmp_path, capsys):
    """No output spike at all: the mean first output time has no value; the files stay
    strict JSON (null), which json.dumps would have written as the non-JSON Infinity."""
    assert _train(tmp_path, "--epochs", "1", "--no-plots") == 0
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    silent = [torch.full_like(w, -1.0) for w in state["model"]["weights"]]
    state["model"]["weights"] = silent
    state["best"]["weights"] = [w.clone() for w in silent]  # evaluate tests these
    torch.save(state, tmp_path / "checkpoint.pt")
    capsys.readouterr()
    assert cli.main(["evaluate", str(tmp_path)]) == 0
    printed = _strict_json(capsys.readouterr().out)
    saved = _strict_json((tmp_path / "evaluation.json").read_text())
    for summary in (printed, saved):
        assert summary["all_silent_fraction"] == 1.0
        assert summary["mean_first_output_time"] is None
        assert summary["epochs_trained"] == 1
    _strict_json((tmp_path / "metrics.json").read_text())


def test_json_text_turns_numpy_values_and_non_finite_numbers_into_json():
    text = cli.json_text({"t": np.float32(np.inf), "v": np.array([1.5, np.nan]), "n": np.int64(3),
                          "ok": np.bool_(True), "nested": [(-np.inf, 2)]})
    assert _strict_json(text) == {"t": None, "v": [1.5, None], "n": 3, "ok": True,
                                  "nested": [[None, 2]]}


def test_a_folder_with_results_but_no_checkpoint_is_not_overwritten(tmp_path, capsys):
    """Saved metrics without checkpoint.pt (deleted to save space) used to be replaced."""
    (tmp_path / "metrics.json").write_text('{"precious": true}')
    assert _train(tmp_path, "--epochs", "1", "--no-plots") == 2
    assert "already holds a run (metrics.json)" in capsys.readouterr().err
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"precious": True}
    a_file = tmp_path / "a_file"
    a_file.write_text("kept")
    assert _train(a_file, "--epochs", "1", "--no-plots") == 2
    assert "is a file, not a folder" in capsys.readouterr().err and a_file.read_text() == "kept"


@pytest.mark.parametrize("flags, message", [
    (["--threads", "-1"], "--threads must be an integer >= 1, got -1"),
    (["--threads", "0"], "--threads must be an integer >= 1, got 0"),
    (["--set", "hidden=null"], "hidden must be a list of layer sizes"),
    (["--set", "hidden=120"], r"recipe field .hidden. needs a list \(like \[120\]\), got 120"),
    (["--seed", str(2 ** 70)], r"seed must be an integer in \[0, 2\*\*63 - 1\]"),
])
def test_odd_flags_are_named_errors_not_tracebacks(tmp_path, capsys, flags, message):
    assert cli.main(["train", "yinyang", "--out", str(tmp_path / "run"), "--train-size", "50",
                     "--epochs", "1", "--no-plots", "--quiet", *flags]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


def test_damaged_run_files_are_named_errors(tmp_path, capsys):
    assert _train(tmp_path, "--epochs", "1", "--no-plots") == 0
    checkpoint = (tmp_path / "checkpoint.pt").read_bytes()
    (tmp_path / "checkpoint.pt").write_bytes(checkpoint[: len(checkpoint) // 2])
    for argv in (["evaluate", str(tmp_path)],
                 ["train", "yinyang", "--out", str(tmp_path), "--resume", "--quiet", "--no-plots"]):
        assert cli.main(argv) == 2
        assert "checkpoint.pt cannot be read" in capsys.readouterr().err
    torch.save({"weights": []}, tmp_path / "checkpoint.pt")
    assert cli.main(["evaluate", str(tmp_path)]) == 2
    assert ("lacks epoch, recipe, model, step, generator, torch_rng, numpy_rng, history: "
            "not a pynn-ttfs checkpoint") in capsys.readouterr().err
    (tmp_path / "config.json").write_text("{not json")
    assert cli.main(["evaluate", str(tmp_path)]) == 2
    assert "config.json is not valid JSON" in capsys.readouterr().err


def test_flags_that_would_change_nothing_are_refused_or_noted(tmp_path, capsys):
    assert _train(tmp_path / "a", "--epochs", "1", "--no-plots", "--chip-seed", "3") == 2
    assert "--chip-seed chooses an emulated chip: it needs --backend bss2" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
    assert _train(tmp_path / "b", "--epochs", "0", "--no-plots", "--data-dir", str(tmp_path)) == 0
    assert "--data-dir is not used for yinyang" in capsys.readouterr().err
