"""In-the-loop training through PyNN: round trip == direct engine path, errors, NEST."""
import numpy as np
import pytest
import torch

import pynn_ttfs as sim
from pynn_ttfs.engine import first_spike_times
from pynn_ttfs.training.datasets import load_yinyang
from pynn_ttfs.training.loss import TTFSLoss
from pynn_ttfs.training.model import TTFSModel, build_model
from pynn_ttfs.training.pynn_loop import PyNNForward, PyNNNetwork, build_network
from pynn_ttfs.training.recipe import published_recipe
from pynn_ttfs.training.trainer import Trainer

TRIAL_MS = 180.0


@pytest.fixture
def yinyang_small():
    return load_yinyang(sizes={"train": 200, "val": 100, "test": 200})


def _pynn_trainer(recipe, seed=0):
    sim.setup(timestep=0.1, min_delay=0.1, trial_duration=TRIAL_MS)
    initial = build_model([4, 120, 3], recipe.weight_mean, recipe.weight_std, recipe.bias_times,
                          torch.Generator().manual_seed(seed))
    inp, pops, projections, biases = build_network(sim, initial)
    network = PyNNNetwork(sim, inp, projections)
    model = network.to_model()
    return Trainer(model, recipe, forward=PyNNForward(network, model)), network, projections


def test_round_trip_gives_the_same_weights_as_the_direct_path(yinyang_small):
    recipe = published_recipe("yinyang", batch_size=50, bump_skips_step=False)
    pynn_trainer, network, projections = _pynn_trainer(recipe)
    model = pynn_trainer.model
    assert [layer.bias_time for layer in model.layers] == pytest.approx([0.92, 0.92])  # 0.9 tau_s + 0.1 ms
    direct = Trainer(TTFSModel.from_state_dict(model.state_dict()), recipe)
    for _ in range(2):
        a = pynn_trainer.train_epoch(yinyang_small.train)
        b = direct.train_epoch(yinyang_small.train)
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-9)
    for layer_a, layer_b in zip(model.layers, direct.model.layers):
        torch.testing.assert_close(layer_a.weights, layer_b.weights, rtol=1e-9, atol=1e-9)
    # the weights were written back to PyNN (in nA: model units x c = 3 nA)
    written = projections[0].get("weight", format="array")
    np.testing.assert_allclose(written, model.layers[0].weights.detach().numpy()[:4] * 3.0,
                               rtol=1e-12)
    assert not np.allclose(written, network.layers[0].current_unit_na * 0)  # non-trivial


def test_round_trip_gradients_equal_engine_autograd(yinyang_small):
    recipe = published_recipe("yinyang", max_weight_grad=None)
    trainer, network, _ = _pynn_trainer(recipe)
    inputs = torch.as_tensor(yinyang_small.train.times[:60])
    labels = torch.as_tensor(yinyang_small.train.labels[:60])
    recorded = trainer.forward(inputs)
    _, grads, _ = trainer.step.gradients(inputs, recorded, labels)
    # reference: plain autograd through the engine, gradients evaluated at the recorded times
    weights = [layer.weights.detach().clone().requires_grad_(True) for layer in trainer.model.layers]
    current = inputs
    for index, (layer, w) in enumerate(zip(trainer.model.layers, weights)):
        layer_in = trainer.model.layer_input(index, current)
        current = first_spike_times(layer_in, w, layer.tau_syn, layer.tau_mem, layer.threshold,
                                    output_times=recorded[index])
    TTFSLoss()(current, labels).backward()
    for mine, w in zip(grads, weights):
        torch.testing.assert_close(mine, w.grad, rtol=1e-9, atol=1e-12)
    assert any(g.abs().sum() > 0 for g in grads)


def test_short_training_on_pynn_ttfs_beats_chance():
    data = load_yinyang(sizes={"train": 300, "val": 100, "test": 300})
    recipe = published_recipe("yinyang", batch_size=100, bump_skips_step=False, lr=0.03)
    trainer, _, _ = _pynn_trainer(recipe, seed=1)
    for _ in range(5):
        trainer.train_epoch(data.train)
    assert trainer.evaluate(data.test).accuracy > 0.6  # chance is 1/3


def _bare_network():
    sim.setup(timestep=0.1, min_delay=0.1, trial_duration=TRIAL_MS)
    inp = sim.Population(2, sim.SpikeSourceArray(spike_times=[]), label="in")
    hid = sim.Population(3, sim.IF_curr_exp_ttfs(), label="hid")
    out = sim.Population(2, sim.IF_curr_exp_ttfs(), label="out")
    p1 = sim.Projection(inp, hid, sim.AllToAllConnector(), sim.StaticSynapse(weight=1.0, delay=0.1))
    p2 = sim.Projection(hid, out, sim.AllToAllConnector(), sim.StaticSynapse(weight=1.0, delay=0.1))
    return inp, hid, out, p1, p2


def test_projection_not_between_trained_populations_is_an_error():
    inp, hid, out, p1, p2 = _bare_network()
    other = sim.Population(2, sim.IF_curr_exp_ttfs(), label="stranger")
    stray = sim.Projection(other, out, sim.AllToAllConnector(), sim.StaticSynapse(weight=1.0, delay=0.1))
    with pytest.raises(ValueError, match="not between trained populations"):
        PyNNNetwork(sim, inp, [p1, p2, stray])
    with pytest.raises(ValueError, match="not between trained populations"):
        PyNNNetwork(sim, inp, [p2])  # hid is not trained
    branch = sim.Projection(inp, out, sim.AllToAllConnector(), sim.StaticSynapse(weight=1.0, delay=0.1))
    with pytest.raises(ValueError, match="exactly one population"):
        PyNNNetwork(sim, inp, [p1, p2, branch])
    with pytest.raises(ValueError, match="SpikeSourceArray"):
        PyNNNetwork(sim, hid, [p2])


def test_backend_without_spike_recording_is_an_error():
    inp, hid, out, p1, p2 = _bare_network()
    hid.celltype.recordable = ["v"]  # a backend/cell type that cannot record spikes
    with pytest.raises(ValueError, match="cannot record 'spikes'"):
        PyNNNetwork(sim, inp, [p1, p2])


def test_trial_duration_is_required():
    sim.setup(timestep=0.1, min_delay=0.1)
    inp = sim.Population(2, sim.SpikeSourceArray(spike_times=[]))
    hid = sim.Population(3, sim.IF_curr_exp_ttfs())
    p1 = sim.Projection(inp, hid, sim.AllToAllConnector(), sim.StaticSynapse(weight=1.0, delay=0.1))
    with pytest.raises(ValueError, match="trial_duration"):
        PyNNNetwork(sim, inp, [p1])


def test_short_training_on_nest_beats_chance():
    """Full-batch steps on 100 samples: few sim.run calls, since every pyNN.nest call costs
    kernel round trips; accuracy on the trained samples rises from chance (1/3)."""
    nest_sim = pytest.importorskip("pyNN.nest")
    data = load_yinyang(sizes={"train": 100, "val": 50, "test": 50})
    recipe = published_recipe("yinyang", batch_size=100, bump_skips_step=False, lr=0.05)
    nest_sim.setup(timestep=0.1, min_delay=0.1)
    # a smaller hidden layer keeps NEST's per-call overheads (not the maths) short
    initial = build_model([4, 40, 3], recipe.weight_mean, recipe.weight_std, recipe.bias_times,
                          torch.Generator().manual_seed(1))
    inp, pops, projections, biases = build_network(nest_sim, initial, trial_duration=TRIAL_MS,
                                                   cell_type="IF_curr_exp")
    network = PyNNNetwork(nest_sim, inp, projections, trial_duration=TRIAL_MS)
    model = network.to_model()
    trainer = Trainer(model, recipe, forward=PyNNForward(network, model))
    first = trainer.train_epoch(data.train).train_accuracy  # measured before the first step
    for _ in range(7):
        trainer.train_epoch(data.train)
    after = trainer.evaluate(data.train).accuracy
    assert after > 0.6 and after > first + 0.2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_on_cuda_matches_cpu(yinyang_small):
    """One epoch of the float64 recipe on the GPU gives the CPU's weights (same batches,
    same noise), so accuracy runs on a GPU are the CPU recipe's runs."""
    recipe = published_recipe("yinyang", epochs=1, batch_size=25, input_noise=0.05, seed=4)
    weights = {}
    for device in ("cpu", "cuda"):
        trainer = Trainer.for_dataset(recipe, 4, 3, device=device)
        trainer.train_epoch(yinyang_small.train)
        weights[device] = [layer.weights.detach().cpu() for layer in trainer.model.layers]
    for cpu, gpu in zip(weights["cpu"], weights["cuda"]):
        torch.testing.assert_close(gpu, cpu, rtol=1e-7, atol=1e-9)
