"""Standard models of pynn_ttfs: IF_curr_exp_ttfs validation and membrane traces,
SpikeSourceArray validation, and the models that are not available."""
import numpy as np
import pytest
from pyNN import errors
from pyNN.parameters import Sequence
from pyNN.standardmodels import ModelNotAvailable

import pynn_ttfs as sim

BASE = dict(tau_m=5.0, tau_syn_E=5.0, tau_syn_I=5.0, cm=1.0, v_rest=-65.0, v_thresh=-60.0)


def test_defaults_are_valid_and_documented():
    cell = sim.IF_curr_exp_ttfs()
    d = cell.default_parameters
    assert d["tau_m"] == d["tau_syn_E"] == d["tau_syn_I"] == 5.0
    assert (d["v_rest"], d["cm"], d["v_thresh"], d["i_offset"]) == (-65.0, 1.0, -50.0, 0.0)
    assert cell.recordable == ["spikes", "v"]
    assert "tau_m = 5 ms" in sim.IF_curr_exp_ttfs.__doc__


@pytest.mark.parametrize("params", [dict(tau_m=10.0, tau_syn_E=5.0, tau_syn_I=5.0),
                                    dict(tau_m=2.0, tau_syn_E=2.0, tau_syn_I=2.0),
                                    dict(tau_m=10.0 * (1 + 1e-12), tau_syn_E=5.0, tau_syn_I=5.0)])
def test_supported_ratios(params):
    sim.setup()
    sim.Population(2, sim.IF_curr_exp_ttfs(**params))


BAD_CONSTRUCTION = [
    (dict(tau_m=20.0), "tau_m=20.0 ms with tau_syn=5.0 ms \\(ratio 4\\) is not supported; supported: "
                       "tau_syn_E == tau_syn_I and tau_m == tau_syn or tau_m == 2 \\* tau_syn"),
    (dict(tau_m=7.5), "ratio 1.5"),
    (dict(tau_syn_I=4.0), "tau_syn_E and tau_syn_I must be equal.*tau_m == tau_syn or tau_m == 2"),
    (dict(i_offset=0.1), "i_offset must be 0 nA"),
    (dict(v_thresh=-70.0), "v_thresh must be > v_rest"),
    (dict(v_thresh=-65.0), "v_thresh must be > v_rest"),
    (dict(cm=0.0), "cm must be > 0"),
    (dict(cm=-1.0), "cm must be > 0"),
    (dict(tau_m=-5.0, tau_syn_E=-5.0, tau_syn_I=-5.0), "must be > 0"),
    (dict(tau_refrac=-1.0), "tau_refrac must be >= 0"),
    (dict(v_rest=np.nan), "v_rest must be finite"),
]


@pytest.mark.parametrize("params, message", BAD_CONSTRUCTION)
def test_invalid_parameters_at_construction(params, message):
    with pytest.raises(errors.InvalidParameterValueError, match=message):
        sim.IF_curr_exp_ttfs(**params)


@pytest.mark.parametrize("params, message", BAD_CONSTRUCTION)
def test_invalid_parameters_at_set_leave_population_unchanged(params, message):
    sim.setup()
    pop = sim.Population(3, sim.IF_curr_exp_ttfs(**BASE))
    before = {name: pop.get(name) for name in BASE}
    with pytest.raises(errors.InvalidParameterValueError, match=message):
        pop.set(**params)
    assert {name: pop.get(name) for name in BASE} == before
    with pytest.raises(errors.InvalidParameterValueError, match=message):
        pop[1:2].set(**params)


def test_heterogeneous_invalid_element_is_named():
    sim.setup()
    with pytest.raises(errors.InvalidParameterValueError, match="tau_m=12.0 ms .*ratio 2.4"):
        sim.Population(3, sim.IF_curr_exp_ttfs(tau_m=np.array([5.0, 10.0, 12.0])))
    with pytest.raises(errors.InvalidParameterValueError, match="v_thresh must be > v_rest.*neuron index 1"):
        sim.Population(3, sim.IF_curr_exp_ttfs(v_thresh=np.array([-50.0, -66.0, -50.0])))
    with pytest.raises(errors.InvalidParameterValueError, match="tau_m"):
        sim.Population(4, sim.IF_curr_exp_ttfs(tau_m=sim.RandomDistribution(
            "uniform", (5.5, 9.5), rng=sim.NumpyRNG(seed=1))))


def test_set_ratio_change_through_consistent_update():
    sim.setup()
    pop = sim.Population(2, sim.IF_curr_exp_ttfs(**BASE))
    pop.set(tau_m=10.0)  # 2 * tau_syn
    pop.set(tau_syn_E=10.0, tau_syn_I=10.0)  # back to ratio 1
    assert pop.get("tau_m") == 10.0 and pop.get("tau_syn_E") == 10.0


@pytest.mark.parametrize("times, message", [
    ([3.0, 1.0], "must be sorted"),
    ([-1.0, 2.0], "must be >= 0 ms"),
    ([1.0, np.nan], "must be finite"),
    ([1.0, np.inf], "must be finite"),
])
def test_spike_source_array_validation(times, message):
    with pytest.raises(errors.InvalidParameterValueError, match="SpikeSourceArray spike_times.*" + message):
        sim.SpikeSourceArray(spike_times=times)
    sim.setup()
    with pytest.raises(errors.InvalidParameterValueError, match=message):
        sim.Population(2, sim.SpikeSourceArray(spike_times=[Sequence([1.0]), Sequence(times)]))
    pop = sim.Population(2, sim.SpikeSourceArray(spike_times=[1.0]))
    with pytest.raises(errors.InvalidParameterValueError, match=message):
        pop.set(spike_times=[Sequence([1.0]), Sequence(times)])
    assert list(pop.get("spike_times", simplify=False)[1].value) == [1.0]


@pytest.mark.parametrize("name", ["IF_curr_exp", "IF_cond_exp", "IF_curr_alpha", "SpikeSourcePoisson",
                                  "DCSource", "STDPMechanism", "TsodyksMarkramSynapse", "Izhikevich",
                                  "SpikePairRule", "AdditiveWeightDependence", "NoisyCurrentSource"])
def test_other_standard_models_are_not_available(name):
    cls = getattr(sim, name)
    assert issubclass(cls, ModelNotAvailable)
    with pytest.raises(NotImplementedError, match=f"The {name} model is not available for this simulator"):
        cls()


def test_unavailable_class_passed_to_population_fails_clearly():
    sim.setup()
    with pytest.raises(NotImplementedError, match="SpikeSourcePoisson model is not available"):
        sim.Population(1, sim.SpikeSourcePoisson, {"rate": 5.0})


# --- membrane trace against an ODE integration ------------------------------------------
def euler_trace(arrivals, weights, params, dt, t_end):
    """Fine forward-Euler integration (dt in ms) of C du/dt = -g_L (u - v_rest) + I,
    with I the exponentially decaying synaptic current (integrated exactly per step)."""
    cm, tau_m, tau_syn, v_rest = params["cm"], params["tau_m"], params["tau_syn_E"], params["v_rest"]
    n = int(round(t_end / dt))
    u, current = v_rest, 0.0
    trace = np.empty(n + 1)
    trace[0] = u
    arrivals = np.asarray(arrivals)
    order = np.argsort(arrivals)
    arrivals, weights = arrivals[order], np.asarray(weights)[order]
    k = 0
    for step in range(n):
        t = step * dt
        while k < len(arrivals) and arrivals[k] <= t + 1e-12:
            current += weights[k]
            k += 1
        u += dt * (-(cm / tau_m) * (u - v_rest) + current) / cm
        current *= np.exp(-dt / tau_syn)
        trace[step + 1] = u
    return trace


@pytest.mark.parametrize("tau_m", [5.0, 10.0])
def test_v_trace_matches_ode_integration(tau_m):
    params = dict(BASE, tau_m=tau_m, v_thresh=-40.0, v_reset=-70.0)
    arrivals = [1.0, 2.5, 4.0]
    weights = [1.5, -0.7, 1.0]
    sim.setup(timestep=0.1)
    src = sim.Population(3, sim.SpikeSourceArray(spike_times=[[1.0], [2.5], [3.6]]))
    out = sim.Population(1, sim.IF_curr_exp_ttfs(**params))
    prj = sim.Projection(src, out, sim.AllToAllConnector(),
                         sim.StaticSynapse(weight=np.array([[1.5], [-0.7], [1.0]]), delay=0.0))
    prj[2].delay = 0.4  # arrives at 4.0
    out.record(["v", "spikes"])
    sim.run(30.0)
    seg = out.get_data().segments[0]
    assert len(seg.spiketrains[0]) == 0  # high threshold: the free potential is the trace
    recorded = seg.analogsignals[0].magnitude[:, 0]
    reference = euler_trace(arrivals, weights, params, 1e-3, 30.0)[::100]
    assert recorded.shape == reference.shape == (301,)
    np.testing.assert_allclose(recorded, reference, atol=1e-3)
    assert np.ptp(recorded) > 1.0


def test_v_trace_held_at_reset_after_spike():
    params = dict(BASE, v_reset=-72.0)
    sim.setup(timestep=0.1)
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=[1.0]))
    out = sim.Population(1, sim.IF_curr_exp_ttfs(**params))
    sim.Projection(src, out, sim.AllToAllConnector(), sim.StaticSynapse(weight=3.0, delay=0.0))
    out.record(["v", "spikes"])
    sim.run(20.0)
    seg = out.get_data().segments[0]
    t_spike = float(seg.spiketrains[0].magnitude[0])
    v = seg.analogsignals[0].magnitude[:, 0]
    times = np.arange(v.size) * 0.1
    assert np.all(v[times >= t_spike] == -72.0)
    before = v[times < t_spike]
    assert before[0] == -65.0 and np.all(before < -60.0 + 1e-9) and before[-1] > -61.0
