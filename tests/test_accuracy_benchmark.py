"""benchmarks/accuracy.py pools the seeds of one setup across invocations."""
import json

import pytest

from _benchmark_scripts import load_benchmark


@pytest.fixture(scope="module")
def accuracy():
    return load_benchmark("accuracy")


SHORT = ["--dataset", "yinyang", "--epochs", "1", "--train-size", "150"]


def test_seeds_already_in_the_json_are_kept_and_not_trained_again(accuracy, tmp_path, capsys):
    out = tmp_path / "acc.json"
    first = accuracy.main(SHORT + ["--seeds", "3", "--json", str(out)])
    assert first[0]["seeds"] == [3] and first[0]["complete"]
    saved = json.loads(out.read_text())[0]["runs"][0]
    records = accuracy.main(SHORT + ["--seeds", "3", "4", "--json", str(out)])
    assert "seeds [3] taken from" in capsys.readouterr().err
    record = json.loads(out.read_text())[0]
    assert record == records[0]
    assert record["seeds"] == [3, 4] and record["complete"]
    assert record["runs"][0] == saved  # the earlier run itself, not a new one
    assert record["runs"][1]["seed"] == 4
    # another setup (a changed recipe field) does not reuse those runs
    other = accuracy.main(SHORT + ["--seeds", "3", "--set", "lr=0.001", "--json", str(out)])
    assert other[0]["runs"][0] != saved
    # the file keeps the first setup's row beside the new one
    assert [r["recipe_changes"] for r in json.loads(out.read_text())] == [{}, {"lr": 0.001}]


def test_runs_merged_from_other_files_and_fresh_retrains(accuracy, tmp_path):
    part = tmp_path / "seed5.json"
    accuracy.main(SHORT + ["--seeds", "5", "--json", str(part)])
    saved = json.loads(part.read_text())[0]["runs"][0]
    out = tmp_path / "all.json"
    merged = accuracy.main(SHORT + ["--seeds", "5", "--merge", str(part), "--json", str(out)])
    assert merged[0]["runs"] == [saved]
    fresh = accuracy.main(SHORT + ["--seeds", "5", "--fresh", "--json", str(part)])
    assert fresh[0]["runs"][0]["seconds_total_training"] != saved["seconds_total_training"]
    # training is deterministic for a seed: the retrained run scores the same
    assert fresh[0]["runs"][0]["test_accuracy"] == saved["test_accuracy"]


def test_an_interrupted_seed_continues_from_its_checkpoint(accuracy, tmp_path, monkeypatch):
    """--checkpoint-dir: a seed stopped after its first epoch continues at its second in
    the next invocation and ends exactly as an uninterrupted run; the per-epoch losses and
    the tested accuracy are the same numbers."""
    from pynn_ttfs.training.trainer import Trainer
    args = ["--dataset", "yinyang", "--epochs", "2", "--train-size", "150", "--seeds", "1"]
    straight = accuracy.main(args)[0]["runs"][0]
    original = Trainer.train_epoch
    calls = []

    def stop_at_second_epoch(self, *a, **k):
        calls.append(self.epoch)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if the machine had gone away mid-run
        return original(self, *a, **k)

    monkeypatch.setattr(Trainer, "train_epoch", stop_at_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        accuracy.main(args + ["--checkpoint-dir", str(tmp_path)])
    (saved,) = list(tmp_path.glob("yinyang-improved-*-seed1.pt"))  # the state after epoch 1
    trained = []

    def counted(self, *a, **k):
        trained.append(self.epoch)
        return original(self, *a, **k)

    monkeypatch.setattr(Trainer, "train_epoch", counted)
    resumed = accuracy.main(args + ["--checkpoint-dir", str(tmp_path)])[0]["runs"][0]
    assert trained == [1]  # only the second epoch was trained again
    assert [m["train_loss"] for m in resumed["history"]] == [m["train_loss"] for m in straight["history"]]
    assert resumed["test_accuracy"] == straight["test_accuracy"]
    assert resumed["tested_epoch"] == straight["tested_epoch"]
    # another setup does not pick up that checkpoint; a changed recipe in the file is refused
    other = accuracy.checkpoint_path(str(tmp_path), "yinyang", "improved", {"lr": 0.001}, 2, 150, 1)
    assert other != str(saved)
    import torch
    state = torch.load(saved, weights_only=False)
    state["recipe"]["lr"] = 0.5
    torch.save(state, saved)
    with pytest.raises(ValueError, match="holds another recipe"):
        accuracy.main(args + ["--checkpoint-dir", str(tmp_path)])


def test_train_on_val_trains_on_both_splits_and_tests_the_last_epoch(accuracy, monkeypatch):
    """--set train_on_val=true: every epoch trains on the training and validation samples
    (150 + 1000 here), validates on nothing, and the last epoch's weights are tested."""
    from pynn_ttfs.training.trainer import Trainer
    original = Trainer.train_epoch
    seen = []

    def recorded(self, split, *a, val_split=None, **k):
        seen.append((len(split), val_split))
        return original(self, split, *a, val_split=val_split, **k)

    monkeypatch.setattr(Trainer, "train_epoch", recorded)
    record = accuracy.main(SHORT + ["--epochs", "2", "--seeds", "0", "--set", "train_on_val=true",
                                    "--set", "select_best_val=false"])[0]
    assert seen == [(1150, None), (1150, None)]
    run = record["runs"][0]
    assert run["tested_epoch"] == 2 and run["test_accuracy"] == run["test_accuracy_last_epoch"]
    assert all(m["val_accuracy"] is None for m in run["history"])
    assert record["recipe_changes"] == {"train_on_val": True, "select_best_val": False}
    with pytest.raises(ValueError, match="set select_best_val=False"):
        accuracy.main(SHORT + ["--seeds", "0", "--set", "train_on_val=true"])


def test_a_checkpoint_from_before_a_new_recipe_field_still_resumes(accuracy, tmp_path):
    """A checkpoint written before a recipe field existed (its recipe lacks the key) is
    taken: the missing field has its default, which is what that run trained with."""
    import torch
    args = ["--dataset", "yinyang", "--epochs", "2", "--train-size", "150", "--seeds", "2",
            "--checkpoint-dir", str(tmp_path)]
    straight = accuracy.main(args)[0]["runs"][0]
    (saved,) = list(tmp_path.glob("yinyang-improved-*-seed2.pt"))
    state = torch.load(saved, weights_only=False)
    del state["recipe"]["train_on_val"]
    torch.save(state, saved)
    again = accuracy.main(args)[0]["runs"][0]  # the finished seed, read back: no training
    assert again["test_accuracy"] == straight["test_accuracy"]
    assert again["history"] == straight["history"]


def test_an_interrupted_json_write_keeps_the_earlier_file(accuracy, tmp_path, monkeypatch):
    """The JSON is rewritten after every seed of a benchmark that runs for hours: stopped
    mid-write, the file still holds the earlier seeds, and no temporary file is left."""
    out = tmp_path / "acc.json"
    accuracy.write_json(str(out), [{"seeds": [0]}])

    def dump_then_fail(records, handle, **kwargs):
        handle.write('[{"seeds": [0, ')
        raise KeyboardInterrupt

    monkeypatch.setattr(accuracy.json, "dump", dump_then_fail)
    with pytest.raises(KeyboardInterrupt):
        accuracy.write_json(str(out), [{"seeds": [0, 1]}])
    assert json.loads(out.read_text()) == [{"seeds": [0]}]
    assert [p.name for p in tmp_path.iterdir()] == ["acc.json"]


def test_runs_of_another_length_are_another_setup(accuracy):
    """Without --epochs the setup's length is the recipe's: a 70-epoch row is not reused
    for the 150-epoch recipe (it was: any length matched)."""
    row = {"dataset": "mnist16", "recipe": "improved", "recipe_changes": {}, "epochs": 70,
           "train_size": None}
    length = accuracy.run_length("mnist16", "improved", {}, None)
    assert length == 150
    assert not accuracy.same_setup(row, "mnist16", "improved", {}, length, None)
    assert accuracy.same_setup(dict(row, epochs=150), "mnist16", "improved", {}, length, None)
    assert accuracy.run_length("mnist16", "improved", {"epochs": 20}, None) == 20
    assert accuracy.run_length("mnist16", "improved", {}, 5) == 5


def test_a_shared_json_keeps_other_setups_and_old_runs_merge(accuracy, tmp_path):
    out = tmp_path / "acc.json"
    accuracy.main(SHORT + ["--seeds", "3", "--json", str(out)])
    accuracy.main(SHORT + ["--seeds", "3", "--set", "lr=0.001", "--json", str(out)])
    rows = json.loads(out.read_text())
    assert [r["recipe_changes"] for r in rows] == [{}, {"lr": 0.001}]  # both kept
    # a run recorded before CPU time was measured still merges
    old = tmp_path / "old.json"
    legacy = json.loads(out.read_text())[:1]
    for run in legacy[0]["runs"]:
        del run["cpu_seconds_per_epoch"]
    old.write_text(json.dumps(legacy))
    merged = accuracy.main(SHORT + ["--seeds", "3", "--merge", str(old)])
    assert merged[0]["runs"][0]["seed"] == 3 and merged[0]["cpu_seconds_per_epoch_mean"] is None
