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


def test_trial_duration_must_be_the_one_pynn_ttfs_was_set_up_with():
    """pynn_ttfs computes separate trials only at its own boundaries: samples laid out on
    another grid would be computed as one trial (all but the first silent)."""
    sim.setup(timestep=0.1, min_delay=0.1)  # no trial_duration: the segment is one trial
    inp = sim.Population(2, sim.SpikeSourceArray(spike_times=[]))
    hid = sim.Population(3, sim.IF_curr_exp_ttfs())
    p1 = sim.Projection(inp, hid, sim.AllToAllConnector(), sim.StaticSynapse(weight=1.0, delay=0.1))
    with pytest.raises(ValueError, match=r"sim.setup\(trial_duration=\.\.\.\)"):
        PyNNNetwork(sim, inp, [p1], trial_duration=50.0)
    inp, hid, out, p1, p2 = _bare_network()
    with pytest.raises(ValueError, match=r"trial_duration=50.0 ms differs from sim.setup\(trial_duration=180.0\)"):
        PyNNNetwork(sim, inp, [p1, p2], trial_duration=50.0)
    assert PyNNNetwork(sim, inp, [p1, p2], trial_duration=TRIAL_MS).trial_duration == TRIAL_MS


def _one_layer(receptors_and_weights, connector=None):
    sim.setup(timestep=0.1, min_delay=0.1, trial_duration=TRIAL_MS)
    inp = sim.Population(2, sim.SpikeSourceArray(spike_times=[]), label="in")
    out = sim.Population(2, sim.IF_curr_exp_ttfs(), label="out")
    projections = []
    for receptor, weights in receptors_and_weights:
        prj = sim.Projection(inp, out, connector or sim.AllToAllConnector(),
                             sim.StaticSynapse(weight=0.0, delay=0.1), receptor_type=receptor,
                             label=receptor)
        prj.set(weight=np.asarray(weights, dtype=float))
        projections.append(prj)
    return inp, out, projections


def test_weights_are_read_with_the_sign_the_backend_applies():
    """pynn_ttfs applies a weight with its sign on either receptor: a positive weight on an
    "inhibitory" projection excites, and the model must hold it positive (it was read as
    -|w|: the model could not spike where the backend did)."""
    c = 3.0  # threshold current of the default cell, nA
    w = np.array([[10.0, 6.0], [5.0, 4.0]])
    inp, out, (prj,) = _one_layer([("inhibitory", w)])
    network = PyNNNetwork(sim, inp, [prj])
    model = network.to_model()
    np.testing.assert_allclose(model.layers[0].weights.detach().numpy(), w / c)
    recorded = network.run(torch.tensor([[0.0, 0.2]], dtype=torch.float64))[0]
    assert np.isfinite(recorded).all()
    np.testing.assert_allclose(recorded, model.forward(torch.tensor([[0.0, 0.2]], dtype=torch.float64))[0].numpy(),
                               rtol=1e-9)
    network.write_weights(model)  # written back unchanged, not sign-flipped
    np.testing.assert_allclose(prj.get("weight", format="array"), w)


def test_an_excitatory_inhibitory_pair_is_one_signed_matrix_split_by_sign():
    exc = np.array([[2.0, 0.0], [1.0, 3.0]])
    inh = np.array([[-1.0, -0.5], [0.0, -4.0]])
    inp, out, pair = _one_layer([("excitatory", exc), ("inhibitory", inh)])
    network = PyNNNetwork(sim, inp, pair)
    model = network.to_model()
    np.testing.assert_allclose(model.layers[0].weights.detach().numpy() * 3.0, exc + inh)
    with torch.no_grad():
        model.layers[0].weights.copy_(torch.tensor([[0.5, -0.25], [-1.0, 2.0]]))
    network.write_weights(model)
    np.testing.assert_allclose(pair[0].get("weight", format="array"), [[1.5, 0.0], [0.0, 6.0]])
    np.testing.assert_allclose(pair[1].get("weight", format="array"), [[0.0, -0.75], [-3.0, 0.0]])


def test_pairs_on_different_connections_and_multiple_synapses_are_errors():
    sim.setup(timestep=0.1, min_delay=0.1, trial_duration=TRIAL_MS)
    inp = sim.Population(2, sim.SpikeSourceArray(spike_times=[]), label="in")
    out = sim.Population(2, sim.IF_curr_exp_ttfs(), label="out")
    exc = sim.Projection(inp, out, sim.AllToAllConnector(), sim.StaticSynapse(weight=1.0, delay=0.1),
                         receptor_type="excitatory", label="exc")
    inh = sim.Projection(inp, out, sim.OneToOneConnector(), sim.StaticSynapse(weight=-1.0, delay=0.1),
                         receptor_type="inhibitory", label="inh")
    with pytest.raises(ValueError, match="pair must connect the same"):
        PyNNNetwork(sim, inp, [exc, inh]).to_model()
    twice = sim.Projection(inp, out, sim.FromListConnector([(0, 0, 1.0, 0.1), (0, 0, 2.0, 0.1),
                                                             (1, 1, 1.0, 0.1)]),
                           label="twice")
    with pytest.raises(ValueError, match="3 connections on 2 .pre, post. pairs"):
        PyNNNetwork(sim, inp, [twice]).to_model()


def _nest_one_layer(nest_sim, weight_na, **cell_changes):
    """pyNN.nest: 1 input -> 1 IF_curr_exp neuron in the trial layout of pynn_ttfs.trials."""
    from pynn_ttfs import trials
    nest_sim.setup(timestep=0.1, min_delay=0.1)
    gap = trials.DECAY_GAP_TAUS * 5.0
    params = trials.nest_cell_parameters(dict(tau_m=5.0, tau_syn_E=5.0, tau_syn_I=5.0),
                                         (TRIAL_MS - gap) / 2, gap=gap)
    params.update(cell_changes)
    inp = nest_sim.Population(1, nest_sim.SpikeSourceArray(spike_times=[]), label="in")
    out = nest_sim.Population(1, nest_sim.IF_curr_exp(**params), label="out")
    prj = nest_sim.Projection(inp, out, nest_sim.AllToAllConnector(),
                              nest_sim.StaticSynapse(weight=weight_na, delay=0.1))
    return inp, out, prj


def test_nest_cells_outside_the_trial_layout_are_errors():
    nest_sim = pytest.importorskip("pyNN.nest")
    for changes, message in [(dict(tau_syn_I=2.0), "tau_syn_I must equal tau_syn_E"),
                             (dict(i_offset=0.1), "i_offset must be 0 nA"),
                             (dict(v_reset=-70.0), "v_reset must equal v_rest"),
                             (dict(tau_refrac=2.0), r"tau_refrac=\[2.\] ms does not fit"),
                             (dict(v_rest=-60.0, v_reset=-60.0), "initial v must equal v_rest")]:
        inp, out, prj = _nest_one_layer(nest_sim, 10.0, **changes)
        with pytest.raises(ValueError, match=message):
            PyNNNetwork(nest_sim, inp, [prj], trial_duration=TRIAL_MS)
    nest_sim.setup(timestep=0.1, min_delay=0.1)
    inp = nest_sim.Population(1, nest_sim.SpikeSourceArray(spike_times=[]))
    cond = nest_sim.Population(1, nest_sim.IF_cond_exp(), label="cond")
    prj = nest_sim.Projection(inp, cond, nest_sim.AllToAllConnector(),
                              nest_sim.StaticSynapse(weight=0.01, delay=0.1))
    with pytest.raises(ValueError, match="conductance-based"):
        PyNNNetwork(nest_sim, inp, [prj], trial_duration=TRIAL_MS)


def test_nest_delivers_inputs_at_the_start_of_every_trial_and_batch():
    """pyNN.nest drops SpikeSourceArray spikes set within two min_delays of the present
    (and refuses t = 0): an input at a trial's start, in the first batch and in later ones,
    must still arrive, and give pynn_ttfs's first spike (NEST: to its 0.1 ms grid)."""
    nest_sim = pytest.importorskip("pyNN.nest")
    inp, out, prj = _nest_one_layer(nest_sim, 10.0)
    network = PyNNNetwork(nest_sim, inp, [prj], trial_duration=TRIAL_MS)
    model = network.to_model()
    x = torch.tensor([[0.0], [0.0], [1.0]], dtype=torch.float64)
    expected = model.forward(x)[-1].numpy()
    assert np.isfinite(expected).all()
    for _ in range(2):
        recorded = network.run(x)[0]
        np.testing.assert_allclose(recorded, expected, atol=0.11 / 5.0)  # tau_s = 5 ms


def test_nest_inputs_and_spikes_outside_the_active_window():
    nest_sim = pytest.importorskip("pyNN.nest")
    inp, out, prj = _nest_one_layer(nest_sim, 10.0)
    network = PyNNNetwork(nest_sim, inp, [prj], trial_duration=TRIAL_MS)
    window = network.active_window_ms[0]
    assert window == pytest.approx(40.0)  # trial 2 W + G, G = 20 tau = 100 ms
    with pytest.raises(ValueError, match=r"must lie in \[0, 40\) ms .*active window"):
        network.run(torch.tensor([[41.0 / 5.0]], dtype=torch.float64))
    # an input just inside the window makes the neuron fire after it: a refractory period
    # that reaches into the next trial is reported
    with pytest.warns(RuntimeWarning, match="after the active window"):
        recorded = network.run(torch.tensor([[39.5 / 5.0], [0.0]], dtype=torch.float64))[0]
    assert recorded[0, 0] * 5.0 > window
