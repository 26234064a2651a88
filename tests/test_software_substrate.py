"""The software substrate: graph compilation (delays, multapses, several spikes per source),
DAG evaluation and exact per-trial results."""
import math

import numpy as np
import pytest
import torch

from ode_reference import first_crossing
from pynn_ttfs.backends import (LIF, SOURCE, NetworkGraph, PopulationSpec, ProjectionSpec, TrialInput,
                                get_substrate)
from pynn_ttfs.engine import first_spike_times


def lif(label, size, tau_syn=5.0, ratio=1.0, v_thresh=-50.0):
    ones = np.ones(size)
    return PopulationSpec(label, size, LIF, {
        "tau_syn": tau_syn * ones, "tau_m": ratio * tau_syn * ones, "cm": 1.0 * ones,
        "v_rest": -65.0 * ones, "v_thresh": v_thresh * ones})


def projection(label, pre, post, pre_index, post_index, weight, delay):
    return ProjectionSpec(label, pre, post, np.asarray(pre_index), np.asarray(post_index),
                          np.asarray(weight, float), np.asarray(delay, float))


def test_threshold_current_is_g_leak_times_distance_to_threshold():
    pop = lif("p", 2, tau_syn=5.0, ratio=2.0)  # g_L = cm / tau_m = 0.1 uS
    np.testing.assert_allclose(pop.threshold_current(), 0.1 * 15.0)


def test_delays_multapses_and_multiple_spikes_per_source_are_exact():
    graph = NetworkGraph()
    graph.add_population(PopulationSpec("in", 3, SOURCE))
    graph.add_population(lif("out", 2))
    # neuron 0 gets source 0 twice (same delay: adds up) and source 1 with another delay
    graph.add_projection(projection("p", "in", "out", [0, 0, 1, 2, 2], [0, 0, 0, 1, 1],
                                    [2.0, 1.5, 3.0, 4.0, 4.0], [1.0, 1.0, 2.5, 1.0, 3.0]))
    spikes = np.full((2, 3, 2), np.inf)
    spikes[0, 0, 0], spikes[0, 1, 0], spikes[0, 2] = 1.0, 0.5, [0.2, 4.0]
    spikes[1, 0] = [0.0, 2.0]
    result = get_substrate("software").run(graph, TrialInput({"in": spikes}))
    c = 1.0 / 5.0 * 15.0  # g_L = cm / tau_m, times (v_thresh - v_rest)
    for trial in range(2):
        # neuron 0: events (source 0 spikes + 1.0 with weight 3.5), (source 1 + 2.5, weight 3.0)
        events0 = np.concatenate([spikes[trial, 0] + 1.0, spikes[trial, 1] + 2.5])
        weights0 = np.concatenate([[3.5, 3.5], [3.0, 3.0]])
        expected0 = first_crossing(events0, weights0, 5.0, 5.0, c, t_max=100.0, step=1e-2)
        events1 = np.concatenate([spikes[trial, 2] + 1.0, spikes[trial, 2] + 3.0])
        expected1 = first_crossing(events1, np.full(4, 4.0), 5.0, 5.0, c, t_max=100.0, step=1e-2)
        got = result.first_spike_times["out"][trial]
        for value, expected in zip(got, (expected0, expected1)):
            assert np.isfinite(value) == np.isfinite(expected)
            if np.isfinite(expected):
                assert abs(value - expected) < 1e-9


def test_many_distinct_delays_are_exact_and_reported():
    """Every distinct delay is its own block of input events (exact arrival times); with
    more than MANY_DELAYS of them in one projection the cost is reported, the result stays
    the one of the same connections grouped by hand."""
    from pynn_ttfs.backends.software.substrate import MANY_DELAYS
    n_pre = MANY_DELAYS + 1
    delays = 0.1 + 0.01 * np.arange(n_pre)
    spikes = np.full((1, n_pre, 1), np.inf)
    spikes[0, :, 0] = np.linspace(0.0, 2.0, n_pre)
    results = []
    for per_connection_delay in (True, False):
        graph = NetworkGraph()
        graph.add_population(PopulationSpec("in", n_pre, SOURCE))
        graph.add_population(lif("out", 1))
        graph.add_projection(projection("p", "in", "out", np.arange(n_pre), np.zeros(n_pre, int),
                                        np.full(n_pre, 0.2), delays if per_connection_delay
                                        else np.zeros(n_pre)))
        inputs = spikes if per_connection_delay else spikes + delays[None, :, None]
        if per_connection_delay:
            with pytest.warns(RuntimeWarning, match=f"{n_pre} distinct delays"):
                result = get_substrate("software").run(graph, TrialInput({"in": inputs}))
        else:
            result = get_substrate("software").run(graph, TrialInput({"in": inputs}))
        results.append(result.first_spike_times["out"])
    assert np.isfinite(results[0]).all()
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12)


def test_dag_with_skip_connection_and_trials_independent():
    graph = NetworkGraph()
    graph.add_population(PopulationSpec("in", 4, SOURCE))
    graph.add_population(lif("hidden", 5))
    graph.add_population(lif("out", 2, ratio=2.0))
    rng = np.random.default_rng(0)
    full = lambda n, m: (np.repeat(np.arange(n), m), np.tile(np.arange(m), n))
    pre, post = full(4, 5)
    graph.add_projection(projection("ih", "in", "hidden", pre, post, rng.uniform(1, 4, 20), np.full(20, 0.5)))
    pre, post = full(5, 2)
    graph.add_projection(projection("ho", "hidden", "out", pre, post, rng.uniform(0.5, 3, 10), np.zeros(10)))
    pre, post = full(4, 2)
    graph.add_projection(projection("io", "in", "out", pre, post, rng.uniform(-1, 1, 8), np.full(8, 1.0)))
    times = rng.uniform(0, 10, size=(6, 4))
    times[rng.random((6, 4)) < 0.2] = np.inf
    batch = get_substrate("software").run(graph, TrialInput({"in": times[:, :, None]}))
    for trial in range(6):
        single = get_substrate("software").run(graph, TrialInput({"in": times[trial:trial + 1, :, None]}))
        for label in ("hidden", "out"):
            assert np.array_equal(batch.first_spike_times[label][trial], single.first_spike_times[label][0])
    # hand-built layers give the same result
    w_ih = np.zeros((4, 5)); w_ih[graph.projections[0].pre_index, graph.projections[0].post_index] = graph.projections[0].weight
    t = torch.as_tensor(times)
    hidden = first_spike_times(t + 0.5, torch.as_tensor(w_ih), 5.0, 5.0, 3.0)  # c = (1 nF / 5 ms) * 15 mV
    assert np.array_equal(hidden.numpy(), batch.first_spike_times["hidden"])
    assert np.isfinite(batch.first_spike_times["out"]).any()


def test_membrane_potential_in_mv():
    graph = NetworkGraph()
    graph.add_population(PopulationSpec("in", 1, SOURCE))
    graph.add_population(lif("out", 1))
    graph.add_projection(projection("p", "in", "out", [0], [0], [1.0], [0.0]))
    samples = np.array([0.0, 5.0, 10.0])
    result = get_substrate("software").run(graph, TrialInput({"in": np.zeros((1, 1, 1))}), samples, record_v=["out"])
    # v = w k(s) / g_L with k(5 ms) = 1 * e^-1 and g_L = 0.2 uS
    expected = -65.0 + np.array([0.0, math.exp(-1), 2 * math.exp(-2)]) / 0.2
    np.testing.assert_allclose(result.membrane_potential["out"][0, :, 0], expected, atol=1e-12)


def test_recurrent_graph_and_bad_options_raise():
    graph = NetworkGraph()
    graph.add_population(lif("a", 1))
    graph.add_population(lif("b", 1))
    graph.add_projection(projection("ab", "a", "b", [0], [0], [1.0], [0.0]))
    graph.add_projection(projection("ba", "b", "a", [0], [0], [1.0], [0.0]))
    with pytest.raises(ValueError, match=r"form a cycle: recurrent networks are not supported"):
        graph.topological_order()
    with pytest.raises(ValueError, match="backend must be one of"):
        get_substrate("loihi")
    with pytest.raises(ValueError, match="dtype must be 'float32' or 'float64'"):
        get_substrate("software", dtype="float16")
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda'"):
        get_substrate("software", device="tpu")
