"""The PyNN module surface of pynn_ttfs: setup/run/reset, populations, every connector,
projection get/set, delays, DAGs, recording to neo and files."""
import math
import re

import numpy as np
import torch
import pytest
from pyNN.parameters import Sequence
import quantities as pq
from pyNN import errors
from pyNN.connectors import IndexBasedExpression

import pynn_ttfs as sim


# --- an independent reference: first threshold crossing of the analytic potential ------
def psp(s, tau_syn, tau_m):
    """Free potential g_L*(u - v_rest) (nA) of a unit weight spike, s ms after arrival."""
    s = np.asarray(s, float)
    with np.errstate(over="ignore", invalid="ignore"):
        if math.isclose(tau_m, tau_syn):
            value = (s / tau_syn) * np.exp(-s / tau_syn)
        else:
            value = tau_syn / (tau_m - tau_syn) * (np.exp(-s / tau_m) - np.exp(-s / tau_syn))
    return np.where(s > 0, value, 0.0)


def reference_first_spike(arrivals, weights, tau_syn, tau_m, threshold, t_max):
    """First time (ms) the free potential reaches ``threshold`` (nA), found on a 1e-4 ms grid
    and refined by bisection; inf if never before t_max."""
    arrivals, weights = np.asarray(arrivals, float), np.asarray(weights, float)

    def v(t):
        return np.sum(weights * psp(t - arrivals, tau_syn, tau_m), axis=-1)

    grid = np.arange(0.0, t_max, 1e-4)
    values = np.sum(weights[None, :] * psp(grid[:, None] - arrivals[None, :], tau_syn, tau_m), axis=1)
    above = np.flatnonzero(values >= threshold)
    if above.size == 0:
        return np.inf
    hi = grid[above[0]]
    lo = hi - 1e-4
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if v(mid) >= threshold else (mid, hi)
    return hi


TTFS = dict(tau_m=5.0, tau_syn_E=5.0, tau_syn_I=5.0, cm=1.0, v_rest=-65.0, v_thresh=-60.0)
THRESHOLD_NA = 1.0 / 5.0 * 5.0  # g_L (cm/tau_m, uS) * (v_thresh - v_rest) (mV) = 1 nA


def first_spikes(pop):
    """(size,) first recorded spike time of each neuron of ``pop`` (ms), inf = none."""
    out = np.full(pop.size, np.inf)
    for train in pop.get_data("spikes").segments[-1].spiketrains:
        if len(train):
            out[train.annotations["source_index"]] = float(train.magnitude[0])
    return out


# --- module surface -----------------------------------------------------------------------
def test_module_surface():
    names = ["setup", "end", "run", "run_until", "run_for", "reset", "initialize",
             "get_current_time", "get_time_step", "get_min_delay", "get_max_delay",
             "num_processes", "rank", "create", "connect", "record", "record_v", "record_gsyn", "set",
             "Population", "PopulationView", "Assembly", "Projection", "Space", "NumpyRNG",
             "GSLRNG", "RandomDistribution", "Network", "errors", "random", "space",
             "AllToAllConnector", "OneToOneConnector", "FixedProbabilityConnector",
             "FixedNumberPreConnector", "FixedNumberPostConnector", "FixedTotalNumberConnector",
             "FromListConnector", "FromFileConnector", "DistanceDependentProbabilityConnector",
             "IndexBasedProbabilityConnector", "ArrayConnector", "CloneConnector",
             "SmallWorldConnector", "CSAConnector", "IF_curr_exp_ttfs", "SpikeSourceArray",
             "StaticSynapse", "list_standard_models"]
    missing = [n for n in names if not hasattr(sim, n)]
    assert missing == []
    assert sorted(sim.list_standard_models()) == ["IF_curr_exp_ttfs", "SpikeSourceArray"]


def test_setup_accepts_unknown_kwargs_and_sets_state():
    assert sim.setup(timestep=0.05, min_delay=0.1, threads=2, t_flush=10, verbosity="error") == 0
    assert sim.get_time_step() == 0.05
    assert sim.get_min_delay() == 0.1
    assert sim.get_current_time() == 0.0
    assert sim.num_processes() == 1 and sim.rank() == 0
    assert sim.simulator.state.substrate.name == "software"


@pytest.mark.parametrize("kwargs, message", [
    (dict(backend="nosuch"), "backend must be one of"),
    (dict(dtype="float16"), "dtype must be one of"),
    (dict(trial_duration=0.0), "trial_duration must be"),
    (dict(trial_duration=-5.0), "trial_duration must be"),
    (dict(timestep=0.0), "timestep must be > 0"),
])
def test_setup_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sim.setup(**kwargs)


def test_setup_device_reaches_substrate():
    sim.setup(device="cpu", dtype="float32")
    assert sim.simulator.state.substrate.describe()["dtype"] == "float32"


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs CUDA")
def test_setup_cuda_runs_on_gpu():
    sim.setup(device="cuda")
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=[1.0]))
    out = sim.Population(1, sim.IF_curr_exp_ttfs(**TTFS))
    sim.Projection(src, out, sim.AllToAllConnector(), sim.StaticSynapse(weight=3.0, delay=0.0))
    out.record("spikes")
    sim.run(30.0)
    assert "cuda" in sim.simulator.state.substrate.describe()["device"]
    assert np.isfinite(first_spikes(out)[0])


def test_run_reset_and_time():
    sim.setup()
    sim.Population(2, sim.IF_curr_exp_ttfs(**TTFS))
    assert sim.run(10.0) == pytest.approx(10.0)
    assert sim.run_until(25.0) == pytest.approx(25.0)
    assert sim.run_for(5.0) == pytest.approx(30.0)
    with pytest.raises(ValueError, match="in the past"):
        sim.run_until(10.0)
    sim.reset()
    assert sim.get_current_time() == 0.0


def test_min_delay_auto_follows_connections():
    sim.setup(min_delay="auto")
    src = sim.Population(2, sim.SpikeSourceArray(spike_times=[1.0]))
    out = sim.Population(2, sim.IF_curr_exp_ttfs(**TTFS))
    sim.Projection(src, out, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.1, delay=0.7))
    sim.run(5.0)
    assert sim.get_min_delay() == pytest.approx(0.7)


# --- connectors against pyNN.mock -------------------------------------------------------
def _connector_cases():
    from pyNN.random import NumpyRNG
    return {
        "all_to_all": lambda m: m.AllToAllConnector(),
        "one_to_one": lambda m: m.OneToOneConnector(),
        "fixed_prob": lambda m: m.FixedProbabilityConnector(0.4, rng=NumpyRNG(seed=11)),
        "fixed_pre": lambda m: m.FixedNumberPreConnector(3, rng=NumpyRNG(seed=12)),
        "fixed_post": lambda m: m.FixedNumberPostConnector(2, rng=NumpyRNG(seed=13)),
        # n above the population size without replacement: full sets, then a remainder
        "fixed_pre_above_size": lambda m: m.FixedNumberPreConnector(14, rng=NumpyRNG(seed=17)),
        "fixed_post_above_size": lambda m: m.FixedNumberPostConnector(9, rng=NumpyRNG(seed=18)),
        "fixed_total": lambda m: m.FixedTotalNumberConnector(9, rng=NumpyRNG(seed=14)),
        "from_list": lambda m: m.FromListConnector([(0, 1, 0.5, 1.0), (3, 0, -0.25, 2.0), (5, 5, 0.1, 0.0)],
                                                   column_names=["weight", "delay"]),
        "array": lambda m: m.ArrayConnector(np.eye(6, dtype=bool)[::-1]),
        "index_based": lambda m: m.IndexBasedProbabilityConnector(_Diagonal()),
        "distance": lambda m: m.DistanceDependentProbabilityConnector("d < 2.5", rng=NumpyRNG(seed=15)),
        "random_weights": lambda m: m.FixedProbabilityConnector(0.5, rng=NumpyRNG(seed=16)),
    }


class _Diagonal(IndexBasedExpression):
    """Index-based probability: 1 on i == j or i == j + 1."""

    def __call__(self, i, j):
        return ((i == j) | (i == j + 1)).astype(float)


@pytest.mark.parametrize("case", sorted(_connector_cases()))
def test_connectors_match_pynn_mock(case):
    import pyNN.mock as mock
    from pyNN.random import NumpyRNG, RandomDistribution

    def build(backend, celltype):
        backend.setup(timestep=0.1, min_delay=0.1)
        pre = backend.Population(6, backend.SpikeSourceArray(spike_times=[1.0]))
        post = backend.Population(6, celltype(backend))
        if case == "random_weights":
            weight = RandomDistribution("uniform", (0.1, 1.0), rng=NumpyRNG(seed=3))
        else:
            weight = 0.3
        prj = backend.Projection(pre, post, _connector_cases()[case](backend),
                                 backend.StaticSynapse(weight=weight, delay=0.5))
        return sorted(prj.get(["weight", "delay"], format="list")), prj

    mine, prj = build(sim, lambda b: b.IF_curr_exp_ttfs(**TTFS))
    theirs, _ = build(mock, lambda b: b.IF_curr_exp())
    assert len(mine) == len(theirs) == len(prj) > 0
    np.testing.assert_allclose(np.array(mine, float), np.array(theirs, float), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name, side, size", [("FixedNumberPreConnector", "pre", 3),
                                               ("FixedNumberPostConnector", "post", 2)])
def test_fixed_number_without_replacement_follows_pynn_above_the_population_size(name, side, size):
    """PyNN's documented behaviour: n above the population size connects every cell once
    per full set, then a random remainder (so duplicates, summed on the synapse)."""
    sim.setup()
    a = sim.Population(3, sim.SpikeSourceArray(spike_times=[1.0]))
    b = sim.Population(2, sim.IF_curr_exp_ttfs(**TTFS))
    connector = getattr(sim, name)
    prj = sim.Projection(a, b, connector(10, with_replacement=False, rng=sim.NumpyRNG(seed=2)),
                         sim.StaticSynapse(weight=1.0))
    counts = prj.get("weight", format="array", multiple_synapses="sum")
    full_sets = 10 // size
    assert set(np.unique(counts)) <= {full_sets, full_sets + 1}
    assert counts.sum() == 10 * (b.size if side == "pre" else a.size)
    # n = the whole population: each cell once; with replacement: duplicates, as asked
    prj = sim.Projection(a, b, connector(size, with_replacement=False), sim.StaticSynapse(weight=1.0))
    assert len(prj) == 6 and np.all(prj.get("weight", format="array") == 1.0)
    prj = sim.Projection(a, b, connector(10, with_replacement=True, rng=sim.NumpyRNG(seed=1)),
                         sim.StaticSynapse(weight=1.0))
    assert len(prj) == 10 * (b.size if side == "pre" else a.size)
    # n = 0 (PyNN's own code fails on it) and a RandomDistribution, each draw checked
    assert len(sim.Projection(a, b, connector(0), sim.StaticSynapse(weight=1.0))) == 0
    small = sim.RandomDistribution("uniform_int", (0, 2), rng=sim.NumpyRNG(seed=3))
    prj = sim.Projection(a, b, connector(small, rng=sim.NumpyRNG(seed=4)), sim.StaticSynapse(weight=1.0))
    assert np.nansum(prj.get("weight", format="array")) == len(prj)  # no pair twice
    large = sim.RandomDistribution("uniform_int", (size + 1, size + 3), rng=sim.NumpyRNG(seed=3))
    prj = sim.Projection(a, b, connector(large, rng=sim.NumpyRNG(seed=4)), sim.StaticSynapse(weight=1.0))
    assert len(prj) >= (size + 1) * (b.size if side == "pre" else a.size)  # PyNN's duplicates
    floats = sim.RandomDistribution("uniform", (0.5, 1.5), rng=sim.NumpyRNG(seed=3))
    with pytest.raises(errors.ConnectionError, match="n must be a whole number >= 0"):
        sim.Projection(a, b, connector(floats, with_replacement=True), sim.StaticSynapse(weight=1.0))


def test_connectors_between_single_cells():
    """PyNN's OneToOneConnector failed on one-cell populations under numpy 2 ("Calling
    nonzero on 0d arrays"); every map-based connector connects 0 -> 0 there, also views."""
    from pyNN.random import NumpyRNG
    sim.setup(timestep=0.1)
    cases = {
        "one_to_one": lambda: sim.OneToOneConnector(),
        "all_to_all": lambda: sim.AllToAllConnector(),
        "fixed_prob": lambda: sim.FixedProbabilityConnector(1.0),
        "array": lambda: sim.ArrayConnector(np.ones((1, 1), bool)),
        "fixed_pre": lambda: sim.FixedNumberPreConnector(1),
        "fixed_post": lambda: sim.FixedNumberPostConnector(1),
        "fixed_total": lambda: sim.FixedTotalNumberConnector(1),
        "distance": lambda: sim.DistanceDependentProbabilityConnector("d < 10"),
        "index_based": lambda: sim.IndexBasedProbabilityConnector(_Diagonal()),
    }
    for name, make in cases.items():
        for views in (False, True):
            pre = sim.Population(3 if views else 1, sim.SpikeSourceArray(spike_times=[1.0]))
            post = sim.Population(3 if views else 1, sim.IF_curr_exp_ttfs(**TTFS))
            if views:
                pre, post = pre[2:3], post[1:2]
            weight = sim.RandomDistribution("uniform", (5.0, 6.0), rng=NumpyRNG(seed=1))
            prj = sim.Projection(pre, post, make(), sim.StaticSynapse(weight=weight, delay=0.5))
            got = prj.get(["weight", "delay"], format="list")
            assert len(got) == 1 and got[0][:2] == (0, 0) and 5.0 <= got[0][2] <= 6.0, (name, views)
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=[1.0]))
    out = sim.Population(1, sim.IF_curr_exp_ttfs(**TTFS))
    sim.Projection(src, out, sim.OneToOneConnector(), sim.StaticSynapse(weight=5.0, delay=0.0))
    out.record("spikes")
    sim.run(20.0)
    assert np.isfinite(first_spikes(out)[0])


def test_clone_connector_copies_structure():
    sim.setup()
    pre = sim.Population(5, sim.SpikeSourceArray(spike_times=[1.0]))
    post = sim.Population(4, sim.IF_curr_exp_ttfs(**TTFS))
    ref = sim.Projection(pre, post, sim.FixedProbabilityConnector(0.5, rng=sim.NumpyRNG(seed=2)),
                         sim.StaticSynapse(weight=0.2))
    clone = sim.Projection(pre, post, sim.CloneConnector(ref), sim.StaticSynapse(weight=0.7))
    a = np.isnan(ref.get("weight", format="array"))
    b = np.isnan(clone.get("weight", format="array"))
    np.testing.assert_array_equal(a, b)
    assert np.all(clone.get("weight", format="array")[~b] == 0.7)


def test_all_to_all_large_builds_arrays():
    sim.setup()
    pre = sim.Population(784, sim.SpikeSourceArray())
    post = sim.Population(350, sim.IF_curr_exp_ttfs(**TTFS))
    weights = np.random.default_rng(0).normal(size=(784, 350))
    prj = sim.Projection(pre, post, sim.AllToAllConnector(), sim.StaticSynapse(weight=weights, delay=0.0))
    assert len(prj) == 784 * 350
    np.testing.assert_array_equal(prj.get("weight", format="array"), weights)
    assert prj._pre_index.dtype == np.int64 and prj._weight.dtype == np.float64


# --- get / set ----------------------------------------------------------------------------
def _small_projection():
    sim.setup()
    pre = sim.Population(3, sim.SpikeSourceArray(spike_times=[1.0]))
    post = sim.Population(2, sim.IF_curr_exp_ttfs(**TTFS))
    conns = [(0, 0, 0.5, 1.0), (2, 0, -0.5, 2.0), (1, 1, 0.25, 0.0)]
    prj = sim.Projection(pre, post, sim.FromListConnector(conns, column_names=["weight", "delay"]))
    return prj


def test_get_list_and_array_with_nan():
    prj = _small_projection()
    # row-major (pre, post) order, whatever order the connector made them in
    assert prj.get("weight", format="list") == [(0, 0, 0.5), (1, 1, 0.25), (2, 0, -0.5)]
    assert prj.get(["weight", "delay"], format="list", with_address=False) == [
        (0.5, 1.0), (0.25, 0.0), (-0.5, 2.0)]
    weights, delays = prj.get(["weight", "delay"], format="array")
    expected_w = np.array([[0.5, np.nan], [np.nan, 0.25], [-0.5, np.nan]])
    np.testing.assert_array_equal(weights, expected_w)
    np.testing.assert_array_equal(np.isnan(delays), np.isnan(expected_w))
    assert delays[2, 0] == 2.0


def test_set_scalar_array_and_random():
    prj = _small_projection()
    prj.set(weight=0.75)
    assert [c.weight for c in prj.connections] == [0.75, 0.75, 0.75]
    matrix = np.arange(6, dtype=float).reshape(3, 2)
    prj.set(weight=matrix, delay=matrix + 1)
    np.testing.assert_array_equal(np.array(prj.get("weight", format="list"))[:, 2], [0.0, 3.0, 4.0])
    np.testing.assert_array_equal(np.array(prj.get("delay", format="list"))[:, 2], [1.0, 4.0, 5.0])
    prj.set(weight=sim.RandomDistribution("uniform", (-2.0, -1.0), rng=sim.NumpyRNG(seed=1)))
    w = np.array(prj.get("weight", format="list"))[:, 2]
    assert np.all((w >= -2.0) & (w <= -1.0)) and len(np.unique(w)) == 3


def test_a_list_from_get_round_trips_through_set():
    """PyNN reads a 1-D list given to set() in row-major (pre, post) order; connectors add
    connections post by post, so the connections are kept in that order (before, the
    round trip scrambled the weights of an all-to-all projection)."""
    sim.setup()
    pre = sim.Population(3, sim.SpikeSourceArray(spike_times=[1.0]))
    post = sim.Population(2, sim.IF_curr_exp_ttfs(**TTFS))
    w = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    prj = sim.Projection(pre, post, sim.AllToAllConnector(), sim.StaticSynapse(weight=w))
    prj.set(weight=prj.get("weight", format="list", with_address=False))
    np.testing.assert_array_equal(prj.get("weight", format="array"), w)
    prj.set(weight=2 * np.array(prj.get("weight", format="list", with_address=False)))
    np.testing.assert_array_equal(prj.get("weight", format="array"), 2 * w)
    with pytest.raises(ValueError, match=r"weight: a list of values needs one per connected "
                                         r"\(pre, post\) pair, 6.*got 5"):
        prj.set(weight=[1.0] * 5)
    twice = sim.Projection(pre, post, sim.FromListConnector([(0, 0, 1.0, 0.1), (0, 0, 2.0, 0.1)]))
    with pytest.raises(ValueError, match="2 connections: a pair's multiple synapses"):
        twice.set(weight=[1.0, 2.0])
    # a RandomDistribution on a single connection
    single = sim.Projection(pre[0:1], post[1:2], sim.AllToAllConnector())
    single.set(weight=sim.RandomDistribution("uniform", (20.0, 21.0), rng=sim.NumpyRNG(seed=2)))
    assert 20.0 <= single.get("weight", format="array")[0, 0] <= 21.0


def test_set_rejects_bad_values_and_keeps_old_ones():
    prj = _small_projection()
    with pytest.raises(errors.ConnectionError, match="weight must be a finite"):
        prj.set(weight=np.nan)
    with pytest.raises(errors.ConnectionError, match="delay must be finite and >= 0"):
        prj.set(delay=-1.0)
    assert [c.weight for c in prj.connections] == [0.5, 0.25, -0.5]


def test_connection_objects_write_through():
    prj = _small_projection()
    c = prj[2]
    assert (c.presynaptic_index, c.postsynaptic_index, c.weight, c.delay) == (2, 0, -0.5, 2.0)
    c.weight, c.delay = 0.125, 3.0
    assert prj.get(["weight", "delay"], format="list")[2] == (2, 0, 0.125, 3.0)
    with pytest.raises(errors.ConnectionError):
        c.delay = -0.5


def test_multiple_synapses_array_modes():
    sim.setup()
    pre = sim.Population(2, sim.SpikeSourceArray(spike_times=[1.0]))
    post = sim.Population(1, sim.IF_curr_exp_ttfs(**TTFS))
    prj = sim.Projection(pre, post, sim.FromListConnector(
        [(0, 0, 0.5, 1.0), (0, 0, 0.25, 1.0)], column_names=["weight", "delay"]))
    get = lambda mode: prj.get("weight", format="array", multiple_synapses=mode)[0, 0]  # noqa: E731
    in_order = [c.weight for c in prj.connections]  # the connector may reorder the list
    assert sorted(in_order) == [0.25, 0.5]
    assert (get("sum"), get("min"), get("max")) == (0.75, 0.25, 0.5)
    assert (get("first"), get("last")) == (in_order[0], in_order[1])
    assert np.isnan(prj.get("weight", format="array")[1, 0])


def test_signed_weights_on_one_projection_and_inhibitory_convention():
    sim.setup()
    src = sim.Population(2, sim.SpikeSourceArray(spike_times=[[1.0], [2.0]]))
    out = sim.Population(2, sim.IF_curr_exp_ttfs(**TTFS))
    w = np.array([[3.0, 3.0], [-2.0, 0.0]])
    sim.Projection(src, out, sim.AllToAllConnector(), sim.StaticSynapse(weight=w, delay=0.0))
    out.record("spikes")
    sim.run(40.0)
    mixed = first_spikes(out)
    # the same with PyNN's pair: excitatory positive, inhibitory negative
    sim.setup()
    src = sim.Population(2, sim.SpikeSourceArray(spike_times=[[1.0], [2.0]]))
    out = sim.Population(2, sim.IF_curr_exp_ttfs(**TTFS))
    sim.Projection(src[0:1], out, sim.AllToAllConnector(), sim.StaticSynapse(weight=3.0, delay=0.0),
                   receptor_type="excitatory")
    sim.Projection(src[1:2], out[0:1], sim.AllToAllConnector(), sim.StaticSynapse(weight=-2.0, delay=0.0),
                   receptor_type="inhibitory")
    out.record("spikes")
    sim.run(40.0)
    np.testing.assert_array_equal(first_spikes(out), mixed)
    expected = [reference_first_spike([1.0, 2.0], [3.0, -2.0], 5.0, 5.0, THRESHOLD_NA, 40.0),
                reference_first_spike([1.0], [3.0], 5.0, 5.0, THRESHOLD_NA, 40.0)]
    np.testing.assert_allclose(mixed, expected, atol=1e-7)
    assert mixed[0] > mixed[1]  # inhibition delays the first neuron


# --- dynamics -------------------------------------------------------------------------------
@pytest.mark.parametrize("tau_m", [5.0, 10.0])
def test_spike_times_match_reference(tau_m):
    sim.setup()
    rng = np.random.default_rng(4)
    times = np.sort(rng.uniform(0, 10, size=6))
    weights = rng.uniform(-0.5, 1.5, size=(6, 3))
    src = sim.Population(6, sim.SpikeSourceArray(spike_times=[[t] for t in times]))
    params = dict(TTFS, tau_m=tau_m)
    out = sim.Population(3, sim.IF_curr_exp_ttfs(**params))
    sim.Projection(src, out, sim.AllToAllConnector(), sim.StaticSynapse(weight=weights, delay=0.0))
    out.record("spikes")
    sim.run(60.0)
    threshold = 1.0 / tau_m * 5.0
    expected = [reference_first_spike(times, weights[:, j], 5.0, tau_m, threshold, 60.0) for j in range(3)]
    np.testing.assert_allclose(first_spikes(out), expected, atol=1e-7)
    assert np.isfinite(expected).any()


def test_delays_shift_arrival_exactly():
    results = []
    for delay in (0.0, 1.3, 4.0):
        sim.setup()
        src = sim.Population(1, sim.SpikeSourceArray(spike_times=[2.0]))
        out = sim.Population(1, sim.IF_curr_exp_ttfs(**TTFS))
        sim.Projection(src, out, sim.AllToAllConnector(), sim.StaticSynapse(weight=4.0, delay=delay))
        out.record("spikes")
        sim.run(50.0)
        results.append(first_spikes(out)[0])
    assert np.isfinite(results[0])
    assert results[1] - results[0] == pytest.approx(1.3, abs=1e-12)
    assert results[2] - results[0] == pytest.approx(4.0, abs=1e-12)


def test_dag_with_skip_connection():
    sim.setup()
    src = sim.Population(2, sim.SpikeSourceArray(spike_times=[[1.0], [3.0]]), label="src")
    hid = sim.Population(2, sim.IF_curr_exp_ttfs(**TTFS), label="hid")
    out = sim.Population(1, sim.IF_curr_exp_ttfs(**TTFS), label="out")
    w1 = np.array([[2.5, 1.0], [1.0, 3.0]])
    sim.Projection(src, hid, sim.AllToAllConnector(), sim.StaticSynapse(weight=w1, delay=0.5))
    sim.Projection(hid, out, sim.AllToAllConnector(), sim.StaticSynapse(weight=np.array([[1.2], [1.2]]), delay=0.2))
    sim.Projection(src, out, sim.FromListConnector([(0, 0)]),
                   sim.StaticSynapse(weight=0.6, delay=0.0))  # the skip connection
    hid.record("spikes")
    out.record("spikes")
    sim.run(80.0)
    t_hid = [reference_first_spike([1.5, 3.5], w1[:, j], 5, 5, THRESHOLD_NA, 80) for j in range(2)]
    np.testing.assert_allclose(first_spikes(hid), t_hid, atol=1e-7)
    t_out = reference_first_spike([t_hid[0] + 0.2, t_hid[1] + 0.2, 1.0], [1.2, 1.2, 0.6], 5, 5, THRESHOLD_NA, 80)
    assert np.isfinite(t_out)
    np.testing.assert_allclose(first_spikes(out), [t_out], atol=1e-7)


def test_recurrent_projection_raises_at_run():
    sim.setup()
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=[1.0]))
    a = sim.Population(2, sim.IF_curr_exp_ttfs(**TTFS), label="a")
    sim.Projection(src, a, sim.AllToAllConnector(), sim.StaticSynapse(weight=1.0))
    sim.Projection(a, a, sim.AllToAllConnector(allow_self_connections=False), sim.StaticSynapse(weight=1.0))
    with pytest.raises(ValueError, match="recurrent networks are not supported"):
        sim.run(10.0)


def test_cycle_between_populations_raises_at_run():
    sim.setup()
    a = sim.Population(2, sim.IF_curr_exp_ttfs(**TTFS), label="a")
    b = sim.Population(2, sim.IF_curr_exp_ttfs(**TTFS), label="b")
    sim.Projection(a, b, sim.AllToAllConnector(), sim.StaticSynapse(weight=1.0))
    sim.Projection(b, a, sim.AllToAllConnector(), sim.StaticSynapse(weight=1.0))
    with pytest.raises(ValueError, match="form a cycle"):
        sim.run(10.0)


def test_views_and_assemblies_map_to_parent_neurons():
    sim.setup()
    src = sim.Population(4, sim.SpikeSourceArray(spike_times=[[1.0], [2.0], [3.0], [4.0]]))
    out = sim.Population(3, sim.IF_curr_exp_ttfs(**TTFS))
    sim.Projection(src[[1, 3]], out[1:3], sim.OneToOneConnector(), sim.StaticSynapse(weight=4.0, delay=0.0))
    out.record("spikes")
    sim.run(40.0)
    got = first_spikes(out)
    assert got[0] == np.inf
    ref = reference_first_spike([0.0], [4.0], 5, 5, THRESHOLD_NA, 40)
    np.testing.assert_allclose(got[1:], [2.0 + ref, 4.0 + ref], atol=1e-7)


def test_run_in_pieces_equals_one_run():
    def build():
        sim.setup(trial_duration=None)
        src = sim.Population(3, sim.SpikeSourceArray(spike_times=[[1.0, 12.0], [4.0], [9.0]]))
        out = sim.Population(2, sim.IF_curr_exp_ttfs(**TTFS))
        sim.Projection(src, out, sim.AllToAllConnector(), sim.StaticSynapse(
            weight=np.array([[0.8, 0.4], [0.7, 0.2], [0.9, 1.5]]), delay=0.3))
        out.record(["spikes", "v"])
        return out
    out = build()
    sim.run(30.0)
    whole = out.get_data().segments[0]
    out = build()
    for _ in range(6):
        sim.run(5.0)
    pieces = out.get_data().segments[0]
    for a, b in zip(whole.spiketrains, pieces.spiketrains):
        np.testing.assert_array_equal(a.magnitude, b.magnitude)
    np.testing.assert_allclose(whole.analogsignals[0].magnitude, pieces.analogsignals[0].magnitude, atol=1e-12)


# --- recording --------------------------------------------------------------------------------
def _recorded_network(trial_duration=None):
    sim.setup(timestep=0.1, trial_duration=trial_duration)
    src = sim.Population(2, sim.SpikeSourceArray(spike_times=[[1.0], [2.0]]), label="src")
    out = sim.Population(2, sim.IF_curr_exp_ttfs(**TTFS), label="out")
    sim.Projection(src, out, sim.AllToAllConnector(), sim.StaticSynapse(weight=np.array([[2.0, 0.5], [2.0, 0.5]]), delay=0.0))
    out.record(["spikes", "v"])
    src.record("spikes")
    return src, out


def test_spiketrains_and_signal_layout():
    src, out = _recorded_network()
    sim.run(20.0)
    block = out.get_data()
    seg = block.segments[0]
    assert len(seg.spiketrains) == 2
    train = seg.spiketrains[0]
    assert train.units == pq.ms and train.t_stop == 20.0 * pq.ms
    assert train.annotations["source_population"] == "out"
    assert train.annotations["source_index"] == 0
    assert train.annotations["channel_id"] == int(out[0])
    assert len(seg.spiketrains[1]) == 0  # too weak
    sig = seg.analogsignals[0]
    assert sig.name == "v" and sig.units == pq.mV and sig.shape == (201, 2)
    assert sig.sampling_period == 0.1 * pq.ms and sig.t_start == 0 * pq.ms
    assert sig.magnitude[0, 0] == -65.0
    src_trains = src.get_data("spikes").segments[0].spiketrains
    assert [list(t.magnitude) for t in src_trains] == [[1.0], [2.0]]
    assert out.get_spike_counts() == {int(out[0]): 1, int(out[1]): 0}
    assert out.mean_spike_count() == 0.5


def test_get_data_before_run_is_empty_not_an_error():
    src, out = _recorded_network()
    block = out.get_data()
    assert len(block.segments) == 1
    assert all(len(t) == 0 for t in block.segments[0].spiketrains)


def test_reset_gives_second_segment_and_clear():
    src, out = _recorded_network()
    sim.run(20.0)
    sim.reset()
    sim.run(10.0)
    block = out.get_data()
    assert len(block.segments) == 2
    assert block.segments[1].analogsignals[0].shape == (101, 2)
    first = block.segments[0].spiketrains[0].magnitude
    np.testing.assert_array_equal(block.segments[1].spiketrains[0].magnitude, first)  # same inputs
    out.get_data(clear=True)
    sim.run(10.0)
    block = out.get_data()
    assert len(block.segments) == 1
    assert block.segments[0].analogsignals[0].t_start == 10.0 * pq.ms
    assert all(len(t) == 0 for t in block.segments[0].spiketrains)  # spike was before the clear


@pytest.mark.parametrize("suffix", [".pkl", ".nix"])
def test_write_data_round_trip(tmp_path, suffix):
    import neo
    src, out = _recorded_network()
    sim.run(20.0)
    path = str(tmp_path / f"out{suffix}")
    out.write_data(path)
    if suffix == ".pkl":
        block = neo.io.PickleIO(path).read_block()
    else:
        io = neo.io.NixIO(path, mode="ro")
        block = io.read_block()
        io.close()
    original = out.get_data().segments[0]
    seg = block.segments[0]
    np.testing.assert_allclose(seg.analogsignals[0].magnitude, original.analogsignals[0].magnitude)
    got = sorted((int(t.annotations["source_index"]), list(t.magnitude)) for t in seg.spiketrains)
    want = sorted((int(t.annotations["source_index"]), list(t.magnitude)) for t in original.spiketrains)
    assert got == want


def test_record_to_file_written_at_end(tmp_path):
    import neo
    src, out = _recorded_network()
    out.record("spikes", to_file=str(tmp_path / "end.pkl"))
    sim.run(20.0)
    sim.end()
    block = neo.io.PickleIO(str(tmp_path / "end.pkl")).read_block()
    assert sum(len(t) for t in block.segments[0].spiketrains) == 1


def test_record_to_file_refuses_what_end_cannot_write_and_end_writes_every_file(tmp_path):
    import neo
    src, out = _recorded_network()
    with pytest.raises(ValueError, match=r"to_file=.*x.csv.*extension '.csv' is not supported; "
                                         r"use one of .pkl, .pickle, .nix, .h5, .nwb, .mat"):
        out.record("spikes", to_file=str(tmp_path / "x.csv"))
    with pytest.raises(ValueError, match="extension '.csv'"):
        sim.record("spikes", out[0:1], str(tmp_path / "y.csv"))
    assert sim.simulator.state.write_on_end == []  # nothing registered for end()
    src.record("spikes", to_file=str(tmp_path / "src.pkl"))
    (tmp_path / "blocked").write_text("a file where a directory belongs")
    out.record("spikes", to_file=str(tmp_path / "blocked" / "out.pkl"))
    (src + out).record("spikes", to_file=str(tmp_path / "both.pkl"))
    sim.run(20.0)
    with pytest.raises(OSError, match=r"could not write 1 of .*blocked/out.pkl"):
        sim.end()
    # every other file was written; the Assembly's holds all its members' cells, not the last's
    assert sum(len(t) for t in neo.io.PickleIO(str(tmp_path / "src.pkl")).read_block()
               .segments[0].spiketrains) == 2
    both = neo.io.PickleIO(str(tmp_path / "both.pkl")).read_block().segments[0].spiketrains
    assert len(both) == src.size + out.size
    (tmp_path / "blocked").unlink()
    (tmp_path / "blocked").mkdir()
    sim.end()  # the file that failed is still listed: written once the cause is fixed
    assert sum(len(t) for t in neo.io.PickleIO(str(tmp_path / "blocked" / "out.pkl")).read_block()
               .segments[0].spiketrains) == 1
    assert sim.simulator.state.write_on_end == []


def test_record_subset_and_sampling_interval():
    sim.setup()
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=[1.0]))
    out = sim.Population(3, sim.IF_curr_exp_ttfs(**TTFS))
    sim.Projection(src, out, sim.AllToAllConnector(), sim.StaticSynapse(weight=2.0, delay=0.0))
    out[1:3].record("v", sampling_interval=1.0)
    sim.run(10.0)
    sig = out.get_data("v").segments[0].analogsignals[0]
    assert sig.shape == (11, 2) and sig.sampling_period == 1.0 * pq.ms
    assert list(sig.array_annotations["channel_index"]) == [1, 2]


def test_recording_a_missing_variable_fails():
    sim.setup()
    out = sim.Population(1, sim.IF_curr_exp_ttfs(**TTFS))
    with pytest.raises(errors.RecordingError):
        out.record("gsyn_exc")


# --- populations, parameters, procedural API -------------------------------------------------
def test_population_get_set_heterogeneous():
    sim.setup()
    p = sim.Population(4, sim.IF_curr_exp_ttfs(tau_m=np.array([5.0, 10.0, 5.0, 10.0]), tau_syn_E=5.0,
                                               tau_syn_I=5.0, v_thresh=sim.RandomDistribution(
                                                   "uniform", (-55.0, -50.0), rng=sim.NumpyRNG(seed=1))))
    np.testing.assert_array_equal(p.get("tau_m"), [5.0, 10.0, 5.0, 10.0])
    vt = p.get("v_thresh")
    assert np.all((vt >= -55) & (vt <= -50)) and len(np.unique(vt)) == 4
    assert p.get("cm") == 1.0
    p[0:2].set(v_rest=-70.0)
    np.testing.assert_array_equal(p.get("v_rest"), [-70.0, -70.0, -65.0, -65.0])
    p.set(tau_syn_E=2.5, tau_syn_I=2.5, tau_m=5.0)
    assert p.get("tau_m") == 5.0


def test_initialize_only_accepts_rest():
    sim.setup()
    p = sim.Population(3, sim.IF_curr_exp_ttfs(v_rest=-70.0))
    p.initialize(v=-70.0)
    p[1:2].initialize(v=-70.0)
    sim.initialize(p, isyn_exc=0.0)
    with pytest.raises(errors.InvalidParameterValueError, match="must equal v_rest"):
        p.initialize(v=-60.0)
    with pytest.raises(errors.InvalidParameterValueError, match="must equal v_rest"):
        p[0:1].initialize(v=-60.0)
    with pytest.raises(errors.InvalidParameterValueError, match="isyn_inh must be 0"):
        p.initialize(isyn_inh=0.5)


def test_procedural_api():
    sim.setup()
    src = sim.create(sim.SpikeSourceArray, {"spike_times": [1.0]}, n=2)
    out = sim.create(sim.IF_curr_exp_ttfs, dict(TTFS), n=1)
    prj = sim.connect(src, out, weight=3.0, delay=0.5, p=1.0)
    assert len(prj) == 2
    sim.set(out, v_thresh=-62.0)
    assert out.get("v_thresh") == -62.0
    sim.record("spikes", out, "unused.pkl")
    sim.run(20.0)
    assert np.isfinite(first_spikes(out)[0])
    sim.simulator.state.write_on_end = []


def test_projection_target_must_be_ttfs_neurons():
    sim.setup()
    a = sim.Population(1, sim.SpikeSourceArray())
    b = sim.Population(1, sim.SpikeSourceArray())
    with pytest.raises(errors.ConnectionError, match="must be IF_curr_exp_ttfs"):
        sim.Projection(a, b, sim.AllToAllConnector())


def test_projection_connector_rejects_nan_weights():
    sim.setup()
    a = sim.Population(2, sim.SpikeSourceArray())
    b = sim.Population(2, sim.IF_curr_exp_ttfs(**TTFS))
    with pytest.raises(errors.ConnectionError, match="weight must be a finite"):
        sim.Projection(a, b, sim.AllToAllConnector(), sim.StaticSynapse(weight=np.nan))
    with pytest.raises(errors.ConnectionError, match="delay must be finite and >= 0"):
        sim.Projection(a, b, sim.AllToAllConnector(), sim.StaticSynapse(weight=1.0, delay=-0.1))


def test_example_pynn_basics_runs(tmp_path):
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    png = tmp_path / "basics.png"
    done = subprocess.run([sys.executable, os.path.join(root, "examples", "pynn_basics.py"),
                           "--output", str(png)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "output first-spike times" in done.stdout
    assert png.stat().st_size > 10000


def test_setup_forwards_substrate_options_to_bss2():
    sim.setup(backend="bss2", chip_seed=3, threads=4)  # threads: ignored like any unknown option
    assert sim.simulator.state.substrate.describe()["chip_seed"] == 3


def test_spike_times_set_between_runs_change_only_the_future():
    sim.setup()
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=[2.0, 8.0]))
    out = sim.Population(1, sim.IF_curr_exp_ttfs(**TTFS))
    sim.Projection(src, out, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.5, delay=0.0))
    src.record("spikes")
    sim.run(5.0)
    src.set(spike_times=[12.0])  # 2.0 was delivered already and stays; 8.0 is replaced by 12.0
    sim.run(10.0)
    assert list(src.get_data().segments[0].spiketrains[0].magnitude) == [2.0, 12.0]


def test_spike_times_in_the_past_are_a_clear_error():
    sim.setup()
    src = sim.Population(2, sim.SpikeSourceArray(spike_times=[2.0, 8.0]))
    sim.run(5.0)
    with pytest.raises(errors.InvalidParameterValueError,
                       match=r"neuron 1 contain 1.0 ms, before the current time 5.0 ms"):
        src.set(spike_times=[Sequence([6.0]), Sequence([1.0, 7.0])])
    # nothing changed: the old spike times still hold
    assert list(src.get("spike_times", simplify=False)[1].value) == [2.0, 8.0]
    with pytest.raises(errors.InvalidParameterValueError, match="before the current time 5.0 ms"):
        sim.Population(1, sim.SpikeSourceArray(spike_times=[3.0]))


def test_set_with_a_value_of_the_wrong_type_names_the_parameter():
    sim.setup()
    pop = sim.Population(2, sim.IF_curr_exp_ttfs(**TTFS))
    for bad in ({}, None):
        with pytest.raises(errors.InvalidParameterValueError, match=r"invalid value for parameter\(s\) \['tau_m'\]"):
            pop.set(tau_m=bad)


def test_get_of_an_unknown_parameter_names_it_and_the_cell_types_parameters():
    sim.setup()
    src = sim.Population(2, sim.SpikeSourceArray(spike_times=[1.0]))
    pop = sim.Population(3, sim.IF_curr_exp_ttfs(**TTFS))
    for target in (pop, pop[0:2], pop[0:1] + pop[2:3]):
        for names in ("foo", ["tau_m", "foo"]):
            with pytest.raises(errors.NonExistentParameterError,
                               match=r"foo \(valid parameters for IF_curr_exp_ttfs are: cm, .*v_thresh"):
                target.get(names)
    with pytest.raises(errors.NonExistentParameterError, match="foo .*SpikeSourceArray are: spike_times"):
        (src + pop).get("foo")
    assert pop[0:2].get("tau_m") == TTFS["tau_m"]
    assert list((pop[0:1] + pop[2:3]).get("v_thresh", simplify=False)) == [TTFS["v_thresh"]] * 2


def test_projection_set_none_and_non_numeric_run_times_are_named():
    sim.setup()
    a = sim.Population(3, sim.SpikeSourceArray(spike_times=[1.0]))
    b = sim.Population(2, sim.IF_curr_exp_ttfs(**TTFS))
    prj = sim.Projection(a, b, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.5, delay=0.2))
    for name, unit in (("weight", "nA"), ("delay", "ms")):
        with pytest.raises(errors.InvalidParameterValueError,
                           match=rf"{name} must be a number \({unit}\), a RandomDistribution, an "
                                 r"\(n_pre, n_post\) = \(3, 2\) array.*got None"):
            prj.set(**{name: None})
    assert prj.get(["weight", "delay"], format="list")[0] == (0, 0, 0.5, 0.2)  # unchanged
    for bad in ("10", None, [10.0], True):
        with pytest.raises(TypeError, match=rf"simtime must be a number of ms, got {re.escape(repr(bad))}"):
            sim.run(bad)
        with pytest.raises(TypeError, match="time_point must be a number of ms"):
            sim.run_until(bad)
    assert sim.run(np.float64(2.0)) == 2.0 and sim.run_until(np.array(3.0)) == 3.0


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the no-GPU message")
def test_setup_cuda_without_gpu_fails_clearly():
    with pytest.raises(ValueError, match="device='cuda' was requested but torch sees no CUDA device"):
        sim.setup(device="cuda")


def test_constructor_initial_values_are_checked():
    sim.setup()
    sim.Population(2, sim.IF_curr_exp_ttfs(v_rest=-70.0), initial_values={"v": -70.0})
    with pytest.raises(errors.InvalidParameterValueError, match="must equal v_rest"):
        sim.Population(2, sim.IF_curr_exp_ttfs(v_rest=-70.0), initial_values={"v": -65.0})
    p = sim.Population(2, sim.IF_curr_exp_ttfs(v_rest=-70.0))
    p.set(v_rest=-68.0)
    p.initialize(v=-68.0)  # the default initial v followed v_rest


def test_projection_between_views_of_one_population_is_rejected_at_run():
    sim.setup()
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=[1.0]))
    p = sim.Population(4, sim.IF_curr_exp_ttfs(**TTFS), label="layers")
    sim.Projection(src, p[0:2], sim.AllToAllConnector(), sim.StaticSynapse(weight=1.0))
    sim.Projection(p[0:2], p[2:4], sim.AllToAllConnector(), sim.StaticSynapse(weight=1.0))
    with pytest.raises(ValueError, match="connects population 'layers' to itself"):
        sim.run(10.0)


# --- recording edge cases: what was computed is returned where it belongs, nothing made up

def _one_input_network(trial_duration=None):
    sim.setup(timestep=0.1, trial_duration=trial_duration)
    src = sim.Population(3, sim.SpikeSourceArray(spike_times=[1.0, 3.2, 6.0]))
    out = sim.Population(2, sim.IF_curr_exp_ttfs(**TTFS))
    sim.Projection(src, out, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.7, delay=0.0))
    return src, out


def _v(pop):
    signal = pop.get_data("v").segments[-1].analogsignals[0]
    return signal.times.rescale(pq.ms).magnitude, signal.magnitude[:, 0]


def test_v_after_an_off_grid_clear_keeps_its_sample_times():
    src, out = _one_input_network()
    out.record("v", sampling_interval=1.0)
    sim.run(5.0)
    reference_times, reference = _v(out)
    _one_input_network()
    out = sim.simulator.state.populations[-1]
    out.record("v", sampling_interval=1.0)
    sim.run(2.5)
    out.get_data(clear=True)  # off the 1 ms grid: the next sample is at 3.0 ms
    sim.run(2.5)
    times, values = _v(out)
    np.testing.assert_allclose(times, [3.0, 4.0, 5.0])
    np.testing.assert_allclose(values, reference[3:])


def test_a_changed_sampling_interval_never_mixes_grids():
    src, out = _one_input_network()
    out.record("v", sampling_interval=1.0)
    sim.run(2.0)
    out.record(None)
    out.record("v", sampling_interval=0.5)
    sim.run(1.0)
    times, values = _v(out)
    np.testing.assert_allclose(times, np.arange(0.0, 3.01, 0.5))
    _one_input_network()
    fine = sim.simulator.state.populations[-1]
    fine.record("v", sampling_interval=0.5)
    sim.run(3.0)
    # record(None) dropped the samples before it (as on NEST); after it the new grid,
    # computed exactly (one trial: the past is recomputed)
    assert np.isnan(values[times < 2.0]).all()
    np.testing.assert_allclose(values[times >= 2.0], _v(fine)[1][times >= 2.0])


def test_nothing_is_returned_from_before_a_variable_was_recorded():
    src, out = _one_input_network()
    sim.run(10.0)
    out.record(["spikes", "v"])
    times, values = _v(out)
    assert times.size == 101 and np.isnan(values).all()  # time run, but nothing computed
    sim.run(10.0)
    assert first_spikes(out)[0] == np.inf  # it fired before recording started
    assert all(len(t) == 0 for t in out.get_data("spikes").segments[0].spiketrains)
    src, out = _one_input_network()
    out.record("spikes")
    sim.run(10.0)
    assert np.isfinite(first_spikes(out)).all()  # the same spike, recorded from the start


def test_a_population_created_mid_trial_has_no_spike_from_before_it_existed():
    sim.setup(timestep=0.1, trial_duration=50.0)
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=[1.0]))
    sim.run(20.0)
    late = sim.Population(1, sim.IF_curr_exp_ttfs(**TTFS))
    sim.Projection(src, late, sim.AllToAllConnector(), sim.StaticSynapse(weight=5.0, delay=0.0))
    late.record("spikes")
    sim.run(30.0)
    assert sim.trial_first_spike_times(late)[0, 0] == np.inf
    assert all(len(t) == 0 for t in late.get_data().segments[0].spiketrains)


def test_data_recorded_after_get_data_clear_survive_reset():
    src, out = _one_input_network(trial_duration=10.0)
    src.set(spike_times=[1.0, 3.2, 6.0, 11.0, 13.2])
    out.record(["spikes", "v"])
    sim.run(5.0)
    out.get_data(clear=True)
    sim.run(15.0)
    sim.reset()
    block = out.get_data()
    assert len(block.segments) == 1  # the segment of 5-20 ms, kept at reset
    train = block.segments[0].spiketrains[0]
    assert train.t_start == 5.0 * pq.ms and train.t_stop == 20.0 * pq.ms
    assert len(train) == 1 and 10.0 < float(train.magnitude[0]) < 20.0
    assert block.segments[0].analogsignals[0].shape == (151, 2)


def test_non_finite_run_times_are_refused():
    _one_input_network()
    sim.run(2.0)
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="run time must be a finite number of ms"):
            sim.run(bad)
    assert sim.get_current_time() == 2.0


def test_negative_connection_indices_do_not_wrap_around():
    src, out = _one_input_network()
    for connections, message in (([(-3, 0, 0.5, 0.1)], r"presynaptic index -3 .*outside \[0, 2\]"),
                                 ([(0, -1, 0.5, 0.1)], r"postsynaptic index -1 .*outside \[0, 1\]"),
                                 ([(0, 2, 0.5, 0.1)], r"postsynaptic index 2 .*outside \[0, 1\]")):
        with pytest.raises(errors.ConnectionError, match=message):
            sim.Projection(src, out, sim.FromListConnector(connections))
    # the lower-level path (connectors that call it directly) checks as well
    projection = sim.Projection(src, out, sim.FromListConnector([(0, 0, 0.5, 0.1)]))
    with pytest.raises(errors.ConnectionError, match=r"presynaptic index -1 is outside \[0, 2\]"):
        projection._convergent_connect(np.array([-1]), 0, weight=0.5, delay=0.1)


def test_setup_warns_about_a_misspelt_option_of_its_own():
    with pytest.warns(UserWarning, match="'trial_duraton' is ignored; did you mean 'trial_duration'"):
        sim.setup(trial_duraton=50.0)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sim.setup(threads=2, verbosity="error", spike_precision="on_grid")  # others' options


def test_a_max_delay_given_to_setup_is_enforced():
    sim.setup(max_delay=5.0)
    pre = sim.Population(2, sim.SpikeSourceArray(spike_times=[1.0]))
    post = sim.Population(2, sim.IF_curr_exp_ttfs(**TTFS))
    with pytest.raises(errors.ConnectionError, match="delay must be <= max_delay=5.0 ms"):
        sim.Projection(pre, post, sim.AllToAllConnector(), sim.StaticSynapse(weight=1.0, delay=6.0))
    prj = sim.Projection(pre, post, sim.OneToOneConnector(), sim.StaticSynapse(weight=1.0, delay=5.0))
    with pytest.raises(errors.ConnectionError, match="max_delay"):
        prj.set(delay=7.5)
    with pytest.raises(errors.ConnectionError, match="max_delay"):
        prj[0].delay = 7.5
    assert prj.get("delay", format="list", with_address=False) == [5.0, 5.0]  # kept
    sim.setup()  # "auto": no upper limit
    pre = sim.Population(1, sim.SpikeSourceArray(spike_times=[1.0]))
    post = sim.Population(1, sim.IF_curr_exp_ttfs(**TTFS))
    sim.Projection(pre, post, sim.AllToAllConnector(), sim.StaticSynapse(weight=1.0, delay=500.0))


def test_a_failed_run_leaves_the_segment_as_it_was(monkeypatch):
    """A run that raises (an emulated chip over capacity, Ctrl-C) must not deliver its
    input spikes: the retry would have them twice."""
    src, out = _one_input_network()
    src.record("spikes")
    out.record("spikes")
    substrate = sim.simulator.state.get_substrate()
    original = substrate.run

    def fail_once(*args, **kwargs):
        monkeypatch.setattr(substrate, "run", original)
        raise KeyboardInterrupt

    monkeypatch.setattr(substrate, "run", fail_once)
    with pytest.raises(KeyboardInterrupt):
        sim.run(10.0)
    assert sim.get_current_time() == 0.0
    sim.run(10.0)
    retried = first_spikes(out)
    assert [list(t.magnitude) for t in src.get_data("spikes").segments[0].spiketrains] == \
        [[1.0, 3.2, 6.0]] * 3
    _, clean = _one_input_network()
    clean.record("spikes")
    sim.run(10.0)
    np.testing.assert_array_equal(retried, first_spikes(clean))
    assert np.isfinite(retried).all()


def test_run_zero_after_record_does_not_fix_a_v_sample():
    values = {}
    for with_run_zero in (False, True):
        src, out = _one_input_network()
        sim.run(4.0)
        out.record("v")
        if with_run_zero:
            sim.run(0.0)
        sim.run(3.0)
        times, v = _v(out)
        values[with_run_zero] = v[np.isclose(times, 4.0)]
    assert values[False] > -65.0  # the input at 1 ms has raised it
    np.testing.assert_array_equal(values[True], values[False])


def test_record_none_then_record_again_starts_afresh():
    sim.setup(timestep=0.5, trial_duration=10.0)
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=[1.0, 11.0, 21.0, 31.0]))
    out = sim.Population(1, sim.IF_curr_exp_ttfs(**TTFS))
    sim.Projection(src, out, sim.AllToAllConnector(), sim.StaticSynapse(weight=5.0, delay=0.0))
    out.record("spikes")
    sim.run(15.0)
    out.record(None)
    sim.run(10.0)  # the spike of the trial at 20 ms fires while recording is off
    out.record("spikes")
    sim.run(10.0)
    train = out.get_data("spikes").segments[0].spiketrains[0]
    assert len(train) == 1 and 30.0 < float(train.magnitude[0]) < 40.0


def test_cell_initial_values_are_read_and_checked():
    sim.setup()
    pop = sim.Population(2, sim.IF_curr_exp_ttfs(**TTFS))
    assert pop[0].get_initial_value("v") == TTFS.get("v_rest", -65.0)
    with pytest.raises(errors.InvalidParameterValueError, match="must equal v_rest"):
        pop[1].set_initial_value("v", -99.0)
    pop[1].set_initial_value("v", TTFS.get("v_rest", -65.0))  # at rest: accepted
    pop[0:1].initialize(v=TTFS.get("v_rest", -65.0))
    assert pop[0].get_initial_value("v") == TTFS.get("v_rest", -65.0)


def test_a_refused_sampling_interval_leaves_v_unrecorded():
    sim.setup()
    pop = sim.Population(1, sim.IF_curr_exp_ttfs(**TTFS))
    with pytest.raises(ValueError, match="sampling_interval must be a finite number > 0"):
        pop.record("v", sampling_interval=0)
    assert not pop._records_v()


def test_duplicate_labels_and_their_suffixes_do_not_collide():
    sim.setup()
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=[1.0]), label="x")
    a = sim.Population(1, sim.IF_curr_exp_ttfs(**TTFS), label="x#2")
    b = sim.Population(1, sim.IF_curr_exp_ttfs(**TTFS), label="x")
    for pop in (a, b):
        sim.Projection(src, pop, sim.AllToAllConnector(), sim.StaticSynapse(weight=5.0, delay=0.0))
        pop.record("spikes")
    sim.run(20.0)
    assert np.isfinite(first_spikes(a)).all() and np.isfinite(first_spikes(b)).all()


# --- recording: per-cell starts, copies, views of stored segments -------------------------
def _two_cells_firing_at_about_2_3_ms():
    sim.setup(timestep=0.5, trial_duration=100.0)
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=[1.0]))
    out = sim.Population(2, sim.IF_curr_exp_ttfs(**TTFS))
    sim.Projection(src, out, sim.AllToAllConnector(), sim.StaticSynapse(weight=5.0, delay=0.0))
    return src, out


def _trains(segment):
    return {int(t.annotations["source_index"]): (float(t.t_start), list(t.magnitude))
            for t in segment.spiketrains}


def test_cells_added_after_reset_leave_the_earlier_cells_data_whole():
    """record() of more cells after reset() used to restart the whole variable at that
    time, hiding the spike and v of the cells recorded all along."""
    src, out = _two_cells_firing_at_about_2_3_ms()
    out[0:1].record(["spikes", "v"])
    sim.run(10.0)
    sim.reset()
    sim.run(5.0)
    out[1:2].record(["spikes", "v"])
    sim.run(5.0)
    first, second = out.get_data().segments
    for segment in (first, second):
        trains = _trains(segment)
        assert trains[0][0] == 0.0 and len(trains[0][1]) == 1 and 2.0 < trains[0][1][0] < 2.5
        v0 = segment.analogsignals[0].magnitude[:, 0]
        assert not np.isnan(v0).any() and v0[3] > -65.0
    assert _trains(second)[1] == (5.0, [])  # recorded from 5 ms: the spike came before
    v1 = second.analogsignals[0].magnitude[:, 1]
    assert np.isnan(v1[:10]).all() and not np.isnan(v1[10:]).any()
    assert out.get_spike_counts() == {int(out[0]): 1, int(out[1]): 0}


def test_a_cell_recorded_later_has_nothing_from_before_and_its_train_says_so(tmp_path):
    import neo
    src, out = _two_cells_firing_at_about_2_3_ms()
    out[0:1].record("spikes")
    sim.run(10.0)
    out[1:2].record("spikes")
    src.record("spikes")
    sim.run(10.0)
    trains = _trains(out.get_data().segments[0])
    assert trains[0][0] == 0.0 and len(trains[0][1]) == 1
    assert trains[1] == (10.0, [])  # it fired at ~2.3 ms, before it was recorded
    assert _trains(src.get_data().segments[0]) == {0: (10.0, [])}  # its spike was at 1 ms
    path = str(tmp_path / "late.pkl")
    out.write_data(path)
    assert _trains(neo.io.PickleIO(path).read_block().segments[0]) == trains


def test_get_data_returns_copies_so_assembly_get_data_cannot_corrupt_the_cache():
    sim.setup(timestep=0.5, trial_duration=100.0)
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=[1.0]))
    a = sim.Population(2, sim.IF_curr_exp_ttfs(**TTFS), label="a")
    b = sim.Population(3, sim.IF_curr_exp_ttfs(**TTFS), label="b")
    for pop in (a, b):
        sim.Projection(src, pop, sim.AllToAllConnector(), sim.StaticSynapse(weight=5.0, delay=0.0))
    both = a + b
    both.record(["spikes", "v"])
    sim.run(5.0)
    sim.reset()
    sim.run(5.0)
    for _ in range(3):
        block = both.get_data()
        for segment in block.segments:
            assert len(segment.spiketrains) == 5
            (signal,) = segment.analogsignals
            assert list(signal.array_annotations["channel_index"]) == [0, 1, 2, 3, 4]
    first = a.get_data().segments[0]
    assert len(first.spiketrains) == 2 and first.analogsignals[0].shape[1] == 2
    assert list(first.analogsignals[0].array_annotations["channel_index"]) == [0, 1]


def test_a_view_gets_only_its_cells_in_every_segment_and_none_if_unrecorded():
    src, out = _two_cells_firing_at_about_2_3_ms()
    out.record(["spikes", "v"])
    sim.run(5.0)
    sim.reset()
    sim.run(5.0)
    for segment in out[1:2].get_data().segments:
        assert list(_trains(segment)) == [1]
        (signal,) = segment.analogsignals
        assert signal.shape[1] == 1 and list(signal.array_annotations["channel_index"]) == [1]
        np.testing.assert_array_equal(signal.annotations["channel_ids"], [int(out[1])])
    assert len(out.get_data().segments[0].spiketrains) == 2  # the stored segment is whole
    # cells never recorded: an empty block, not PyNN's "zero-size array" error
    src, out = _two_cells_firing_at_about_2_3_ms()
    out[0:1].record("spikes")
    sim.run(5.0)
    assert len(out[1:2].get_data("spikes").segments[0].spiketrains) == 0


def test_spike_counts_of_an_unrecorded_variable_do_not_mark_it_recorded():
    src, out = _two_cells_firing_at_about_2_3_ms()
    out.record("v")
    sim.run(5.0)
    assert out.get_spike_counts() == {}
    segment = out.get_data().segments[0]
    assert len(segment.spiketrains) == 0 and len(segment.analogsignals) == 1


def test_a_boolean_sampling_interval_is_refused():
    sim.setup()
    pop = sim.Population(1, sim.IF_curr_exp_ttfs(**TTFS))
    with pytest.raises(ValueError, match="sampling_interval must be a finite number > 0 ms, got True"):
        pop.record("v", sampling_interval=True)


def test_named_variables_after_reset_in_every_form(tmp_path):
    """get_data('spikes'), get_data('v'), a view's, an Assembly's and write_data with named
    variables once a segment is stored (these failed in neo's deepcopy of a shared list,
    and named variables used to drop the stored segment's v)."""
    import neo
    src, out = _two_cells_firing_at_about_2_3_ms()
    out.record(["spikes", "v"])
    src.record("spikes")
    sim.run(5.0)
    sim.reset()
    sim.run(5.0)
    for block in (out.get_data("spikes"), out.get_data(["spikes"])):
        assert [len(s.spiketrains) for s in block.segments] == [2, 2]
        assert [len(s.analogsignals) for s in block.segments] == [0, 0]
    block = out.get_data("v")
    assert [len(s.spiketrains) for s in block.segments] == [0, 0]
    assert [s.analogsignals[0].shape for s in block.segments] == [(11, 2), (11, 2)]
    assert [len(s.spiketrains) for s in out[1:2].get_data("spikes").segments] == [1, 1]
    both = src + out
    assert [len(s.spiketrains) for s in both.get_data("spikes").segments] == [3, 3]
    path = str(tmp_path / "named.pkl")
    out.write_data(path, "spikes")
    saved = neo.io.PickleIO(path).read_block()
    assert [len(s.spiketrains) for s in saved.segments] == [2, 2]
    for segment in saved.segments:
        assert all(len(t) == 1 and 2.0 < float(t.magnitude[0]) < 2.5 for t in segment.spiketrains)
    # a returned block changed by its caller leaves later calls alone
    first = out.get_data().segments[0]
    first.spiketrains[0].annotations["channel_id"] = -1
    first.analogsignals[0][:] = 0.0 * pq.mV
    again = out.get_data().segments[0]
    assert int(again.spiketrains[0].annotations["channel_id"]) == int(out[0])
    assert float(again.analogsignals[0].magnitude[3, 0]) > -65.0


def test_in_the_loop_batches_after_an_earlier_run():
    """PyNNNetwork.run resets between batches; a stored segment from a run before training
    (a look at the network) used to break its get_data('spikes', clear=True)."""
    from pynn_ttfs.training.model import build_model
    from pynn_ttfs.training.pynn_loop import PyNNNetwork, build_network
    from pynn_ttfs.training.recipe import published_recipe
    sim.setup(timestep=0.1, min_delay=0.1, trial_duration=30.0)
    recipe = published_recipe("yinyang")
    model = build_model([4, 6, 3], recipe.weight_mean, recipe.weight_std, recipe.bias_times,
                        torch.Generator().manual_seed(0))
    inp, pops, projections, biases = build_network(sim, model)
    network = PyNNNetwork(sim, inp, projections)
    sim.run(50.0)
    times = network.run(torch.full((5, 4), 0.5, dtype=torch.float64))
    assert [t.shape for t in times] == [(5, 6), (5, 3)]


def test_a_population_of_an_earlier_setup_cannot_be_connected():
    """setup() restarts the cell IDs: an old population's IDs would name the new cells."""
    sim.setup()
    old = sim.Population(3, sim.SpikeSourceArray(spike_times=[1.0]), label="old")
    sim.setup()
    new = sim.Population(3, sim.IF_curr_exp_ttfs(**TTFS), label="new")
    for pre in (old, old[0:2], old + sim.Population(1, sim.SpikeSourceArray(spike_times=[1.0]))):
        with pytest.raises(errors.ConnectionError, match="'old' belongs to an earlier setup"):
            sim.Projection(pre, new, sim.AllToAllConnector())


@pytest.mark.parametrize("kwargs, match", [
    (dict(timestep=math.inf), "timestep must be a finite number"),
    (dict(timestep="0.1"), "timestep must be a finite number"),
    (dict(min_delay=math.nan), "min_delay must be a finite number >= 0.1 ms or 'auto', got nan"),
    (dict(timestep=0.1, min_delay=0.05), "min_delay must be a finite number >= 0.1 ms"),
    (dict(max_delay=-1.0), "max_delay must be a finite number >= 0.1 ms or 'auto', got -1"),
    (dict(max_delay=math.nan), "max_delay must be a finite number"),
])
def test_setup_refuses_timing_values_it_cannot_use(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sim.setup(**kwargs)


def test_runs_too_large_to_allocate_are_refused_before_any_work():
    src, out = _two_cells_firing_at_about_2_3_ms()
    out.record("v", sampling_interval=1e-9)
    with pytest.raises(ValueError, match=r"recording v every 1e-09 ms \(sampling_interval\)"):
        sim.run(1.0)
    assert sim.get_current_time() == 0.0
    out.record(None)
    sim.setup(timestep=0.1, trial_duration=50.0)
    sim.Population(1, sim.SpikeSourceArray(spike_times=[1.0]))
    with pytest.raises(ValueError, match="would compute 20000000000 trials"):
        sim.run(1e12)
    sim.run(10.0)  # nothing was half done
    assert sim.get_current_time() == 10.0


def test_a_misspelt_variable_in_get_data_is_an_error_not_an_empty_block():
    src, out = _two_cells_firing_at_about_2_3_ms()
    out.record("spikes")
    sim.run(5.0)
    for typo in ("spike", "V"):
        with pytest.raises(errors.RecordingError, match=f"Cannot record {typo} "):
            out.get_data(typo)
    assert len(src.get_data("v").segments[0].analogsignals) == 0  # v exists, a source has none
    assert len((src + out).get_data("spikes").segments[0].spiketrains) == 2


def test_trial_helpers_refuse_nan_and_negative_offsets_and_gaps():
    from pynn_ttfs import trials
    for offset in (math.nan, -10.0):
        with pytest.raises(ValueError, match="t_offset must be a finite time >= 0 ms"):
            trials.spike_times_for_trials([[1.0]], 50.0, t_offset=offset)
    with pytest.raises(ValueError, match="gap must be >= 20 max"):
        trials.nest_trial_layout(10.0, 5.0, 5.0, gap=math.nan)


def test_weight_arrays_of_the_wrong_shape_and_2d_spike_time_arrays_are_named():
    sim.setup()
    a = sim.Population(3, sim.SpikeSourceArray(spike_times=[1.0]))
    b = sim.Population(2, sim.IF_curr_exp_ttfs(**TTFS))
    for weight, shape in ((np.ones(6), r"\(6,\)"), ([1.0, 2.0], r"\(2,\)"), (np.ones((2, 3)), r"\(2, 3\)")):
        with pytest.raises(errors.ConnectionError,
                           match=rf"weight given as an array must have shape \(n_pre, n_post\) = \(3, 2\).*got {shape}"):
            sim.Projection(a, b, sim.AllToAllConnector(), sim.StaticSynapse(weight=weight, delay=0.1))
    with pytest.raises(errors.ConnectionError, match=r"delay given as an array .* got \(3,\)"):
        sim.Projection(a, b, sim.AllToAllConnector(), sim.StaticSynapse(weight=1.0, delay=np.ones(3)))
    prj = sim.Projection(a, b, sim.AllToAllConnector(), sim.StaticSynapse(weight=np.ones((3, 2)), delay=0.1))
    assert prj.get("weight", format="array").shape == (3, 2)
    with pytest.raises(ValueError, match=r"spike_times as a \(3, 1\) array: give one Sequence per cell"):
        sim.SpikeSourceArray(spike_times=np.array([[1.0], [2.0], [3.0]]))


def test_from_list_rows_of_different_lengths_or_a_flat_list_are_named():
    sim.setup()
    a = sim.Population(3, sim.SpikeSourceArray(spike_times=[1.0]))
    b = sim.Population(2, sim.IF_curr_exp_ttfs(**TTFS))
    with pytest.raises(errors.ConnectionError, match=r"same length .* got lengths \[2, 4\]"):
        sim.FromListConnector([(0, 0, 1.0, 1.0), (1, 1)])
    with pytest.raises(errors.ConnectionError, match="row 0 must be a sequence"):
        sim.FromListConnector([0, 1])
    prj = sim.Projection(a, b, sim.FromListConnector([(0, 1, 0.5, 0.1), (2, 0, 0.25, 0.2)],
                                                     column_names=["weight", "delay"]))
    assert sorted(prj.get(["weight", "delay"], format="list")) == [(0, 1, 0.5, 0.1), (2, 0, 0.25, 0.2)]


def test_from_file_rows_of_different_lengths_name_the_file(tmp_path):
    sim.setup()
    a = sim.Population(3, sim.SpikeSourceArray(spike_times=[1.0]))
    b = sim.Population(2, sim.IF_curr_exp_ttfs(**TTFS))
    ragged = tmp_path / "ragged.txt"
    ragged.write_text("0 1 0.5 0.1\n1 0 0.3\n")
    with pytest.raises(errors.ConnectionError, match=r"ragged.txt.*one row per connection.*same length"):
        sim.Projection(a, b, sim.FromFileConnector(str(ragged)))
    good = tmp_path / "good.txt"  # one connection: numpy reads it as a flat row
    good.write_text("# columns = ['i', 'j', 'weight', 'delay']\n2 1 0.25 0.2\n")
    prj = sim.Projection(a, b, sim.FromFileConnector(str(good)))
    assert prj.get(["weight", "delay"], format="list") == [(2, 1, 0.25, 0.2)]
    several = tmp_path / "several.txt"
    several.write_text("0 1 0.5 0.1\n2 0 0.25 0.2\n")
    prj = sim.Projection(a, b, sim.FromFileConnector(str(several)))
    assert sorted(prj.get(["weight", "delay"], format="list")) == [(0, 1, 0.5, 0.1), (2, 0, 0.25, 0.2)]


def test_random_cell_parameters_are_drawn_once_as_on_pynn_mock():
    """The check for wrong-length values must not draw a RandomDistribution twice: the
    cells get the values another backend gives them with the same seed."""
    import pyNN.mock as mock
    from pyNN.random import NumpyRNG, RandomDistribution
    drawn = []
    for backend, celltype in ((sim, sim.IF_curr_exp_ttfs), (mock, mock.IF_curr_exp)):
        backend.setup()
        values = RandomDistribution("uniform", (-60.0, -55.0), rng=NumpyRNG(seed=1))
        population = backend.Population(4, celltype(v_thresh=values))
        drawn.append(np.asarray(population.get("v_thresh")))
    np.testing.assert_array_equal(drawn[0], drawn[1])


def test_per_cell_values_of_the_wrong_length_name_the_parameter():
    sim.setup()
    with pytest.raises(errors.InvalidParameterValueError, match=r"parameter tau_m for 3 cells.*array of 3"):
        sim.Population(3, sim.IF_curr_exp_ttfs(tau_m=[5.0, 5.0], tau_syn_E=5.0, tau_syn_I=5.0))
    with pytest.raises(errors.InvalidParameterValueError, match=r"parameter cm for 3 cells"):
        sim.Population(3, sim.IF_curr_exp_ttfs(cm=None))
    pop = sim.Population(3, sim.IF_curr_exp_ttfs(**TTFS))
    view = pop[0:2]
    for target, size in ((pop, 3), (view, 2)):
        with pytest.raises(errors.InvalidDimensionsError,
                           match=rf"parameter v_thresh got 4 values for {size} cells"):
            target.set(v_thresh=np.full(4, -50.0))
        with pytest.raises(errors.InvalidDimensionsError,
                           match=rf"initial value of v got 5 values for {size} cells"):
            target.initialize(v=np.full(5, -65.0))
    assert pop.get("v_thresh", simplify=False).tolist() == [TTFS["v_thresh"]] * 3  # unchanged
    pop.set(v_thresh=np.array([-50.0, -51.0, -52.0]))
    view.set(tau_refrac=[0.5, 0.6])
    assert pop.get("v_thresh").tolist() == [-50.0, -51.0, -52.0]
    assert pop.get("tau_refrac", simplify=False).tolist()[:2] == [0.5, 0.6]
    src = sim.Population(2, sim.SpikeSourceArray(spike_times=[1.0]))
    src.set(spike_times=[1.0, 2.0, 3.0])  # one Sequence for every cell, not per-cell values
    assert [list(seq.value) for seq in src.get("spike_times", simplify=False)] == [[1.0, 2.0, 3.0]] * 2


def test_unknown_projection_attributes_and_empty_populations_are_named():
    sim.setup()
    a = sim.Population(3, sim.SpikeSourceArray(spike_times=[1.0]))
    b = sim.Population(2, sim.IF_curr_exp_ttfs(**TTFS))
    prj = sim.Projection(a, b, sim.AllToAllConnector())
    for names in ("foo", ["weight", "foo"]):
        with pytest.raises(errors.NonExistentParameterError, match="foo"):
            prj.get(names, format="list")
    assert len(prj.get(["weight", "delay"], format="list")) == 6
    with pytest.raises(ValueError, match="size must be an integer >= 1 .*got 0"):
        sim.Population(0, sim.IF_curr_exp_ttfs(**TTFS))
