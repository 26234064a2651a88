"""Time-multiplexed trials: a batch in one run() equals isolated single-trial runs; the
backend-agnostic helpers of pynn_ttfs.trials."""
import numpy as np
import pytest
from pyNN.parameters import Sequence

import pynn_ttfs as sim
from pynn_ttfs import trials

TTFS = dict(tau_m=10.0, tau_syn_E=5.0, tau_syn_I=5.0, cm=1.0, v_rest=-65.0, v_thresh=-62.0)
D = 40.0  # trial duration, ms


def _network(input_spike_times, trial_duration):
    sim.setup(timestep=0.1, trial_duration=trial_duration)
    rng = np.random.default_rng(7)
    src = sim.Population(5, sim.SpikeSourceArray(spike_times=input_spike_times), label="src")
    hid = sim.Population(6, sim.IF_curr_exp_ttfs(**TTFS), label="hid")
    out = sim.Population(3, sim.IF_curr_exp_ttfs(**TTFS), label="out")
    sim.Projection(src, hid, sim.AllToAllConnector(),
                   sim.StaticSynapse(weight=rng.normal(0.4, 0.4, size=(5, 6)), delay=0.3))
    sim.Projection(hid, out, sim.AllToAllConnector(),
                   sim.StaticSynapse(weight=rng.normal(0.5, 0.4, size=(6, 3)), delay=0.2))
    sim.Projection(src, out, sim.AllToAllConnector(),  # skip connection
                   sim.StaticSynapse(weight=rng.normal(0.1, 0.2, size=(5, 3)), delay=0.0))
    for pop in (hid, out):
        pop.record(["spikes", "v"])
    return hid, out


def _batch(n_trials=8):
    rng = np.random.default_rng(3)
    times = rng.uniform(0.0, 10.0, size=(n_trials, 5))
    times[rng.uniform(size=times.shape) < 0.2] = np.inf  # some inputs silent
    return times


def test_batch_in_one_run_equals_isolated_trials_exactly():
    times = _batch()
    hid, out = _network(trials.spike_times_for_trials(times, D), D)
    sim.run(D * len(times))
    batch_hid, batch_out = sim.trial_first_spike_times(hid), sim.trial_first_spike_times(out)
    batch_v = out.get_data("v").segments[0].analogsignals[0].magnitude
    assert batch_hid.shape == (8, 6) and batch_out.shape == (8, 3)
    assert np.isfinite(batch_out).sum() >= 4 and np.isinf(batch_out).sum() >= 1  # not trivial
    steps = int(round(D / 0.1))
    for k, sample in enumerate(times):
        # the trial's inputs as the batch run sees them: (t + k D) - k D, float64
        relative = (sample + k * D) - k * D
        hid1, out1 = _network([Sequence(t[np.isfinite(t)]) for t in relative[:, None]], None)
        sim.run(D)
        np.testing.assert_array_equal(sim.trial_first_spike_times(hid1)[0], batch_hid[k])
        np.testing.assert_array_equal(sim.trial_first_spike_times(out1)[0], batch_out[k])
        v1 = out1.get_data("v").segments[0].analogsignals[0].magnitude
        np.testing.assert_allclose(batch_v[k * steps:(k + 1) * steps], v1[:steps], rtol=0, atol=1e-9)


def test_recorded_spikes_through_helpers_match_per_trial_results():
    times = _batch()
    hid, out = _network(trials.spike_times_for_trials(times, D), D)
    sim.run(D * len(times))
    from_neo = trials.first_spike_times(out.get_data("spikes"), n_trials=8, trial_duration=D, n_neurons=3)
    np.testing.assert_allclose(from_neo, sim.trial_first_spike_times(out), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(np.isinf(from_neo), np.isinf(sim.trial_first_spike_times(out)))


def test_trial_first_spike_times_of_views_and_assemblies_and_not_of_sources():
    times = _batch(4)
    hid, out = _network(trials.spike_times_for_trials(times, D), D)
    sim.run(D * len(times))
    whole_hid, whole_out = sim.trial_first_spike_times(hid), sim.trial_first_spike_times(out)
    assert np.isfinite(whole_out).any()
    # a view: its cells' columns (the results are kept per population)
    np.testing.assert_array_equal(sim.trial_first_spike_times(out[0:1]), whole_out[:, 0:1])
    np.testing.assert_array_equal(sim.trial_first_spike_times(hid[[1, 4]][1:]), whole_hid[:, [4]])
    # an Assembly of IF_curr_exp_ttfs cells: its members' columns in its order
    np.testing.assert_array_equal(sim.trial_first_spike_times(out + hid[2:4]),
                                  np.hstack([whole_out, whole_hid[:, 2:4]]))
    late = sim.Population(2, sim.IF_curr_exp_ttfs(**TTFS))  # nothing computed yet: silent
    assert np.all(np.isinf(sim.trial_first_spike_times(hid + late)[:, 6:]))
    assert sim.trial_first_spike_times(hid + late).shape == (4, 8)
    src = sim.simulator.state.populations[0]
    for target in (src, src[0:2], out + src):
        with pytest.raises(TypeError, match="takes a Population, PopulationView or Assembly of "
                                            "IF_curr_exp_ttfs cells; .*src.* has SpikeSourceArray"):
            sim.trial_first_spike_times(target)
    with pytest.raises(TypeError, match="IF_curr_exp_ttfs cells, got list"):
        sim.trial_first_spike_times([out])


def test_every_trial_starts_from_rest_and_late_spikes_are_dropped():
    # a strong input late in trial 0 would make the neuron fire after the trial end
    sim.setup(timestep=0.1, trial_duration=10.0)
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=[9.9, 10.0]))
    out = sim.Population(1, sim.IF_curr_exp_ttfs(**TTFS))
    sim.Projection(src, out, sim.AllToAllConnector(), sim.StaticSynapse(weight=2.0, delay=0.0))
    out.record(["spikes", "v"])
    sim.run(20.0)
    rel = sim.trial_first_spike_times(out)[:, 0]
    assert rel[0] == np.inf  # its crossing would be after 10 ms
    assert np.isfinite(rel[1])  # trial 1 alone, from rest
    v = out.get_data("v").segments[0].analogsignals[0].magnitude[:, 0]
    assert v[100] == -65.0  # t = 10 ms, start of trial 1


def test_changing_weights_between_runs_keeps_past_trials():
    times = _batch(4)
    hid, out = _network(trials.spike_times_for_trials(times, D), D)
    sim.run(2 * D)
    first_two = sim.trial_first_spike_times(out)
    sim.simulator.state.projections[1].set(weight=0.0)  # hid -> out silenced
    sim.run(2 * D)
    all_four = sim.trial_first_spike_times(out)
    np.testing.assert_array_equal(all_four[:2], first_two)
    assert all_four.shape == (4, 3)


def test_spike_times_for_trials_layout_and_validation():
    seqs = trials.spike_times_for_trials(np.array([[1.0, np.inf], [2.0, 0.0]]), 10.0, t_offset=5.0)
    assert [list(s.value) for s in seqs] == [[6.0, 17.0], [15.0]]
    several = trials.spike_times_for_trials(np.array([[[1.0, 3.0]], [[np.inf, 2.0]]]), 10.0)
    assert list(several[0].value) == [1.0, 3.0, 12.0]
    with pytest.raises(ValueError, match=r"finite times must lie in \[0, trial_duration=10.0\)"):
        trials.spike_times_for_trials(np.array([[10.0]]), 10.0)
    with pytest.raises(ValueError, match="finite times must lie"):
        trials.spike_times_for_trials(np.array([[-1.0]]), 10.0)
    with pytest.raises(ValueError, match="NaN"):
        trials.spike_times_for_trials(np.array([[np.nan]]), 10.0)
    with pytest.raises(ValueError, match="shape"):
        trials.spike_times_for_trials(np.array([1.0]), 10.0)
    with pytest.raises(ValueError, match="trial_duration must be > 0"):
        trials.spike_times_for_trials(np.array([[1.0]]), 0.0)


def test_nest_layout_and_cell_parameters():
    layout = trials.nest_trial_layout(active_window=30.0, tau_syn=5.0, tau_m=10.0)
    assert layout == {"trial_duration": 2 * 30.0 + 200.0, "tau_refrac": 30.0 + 200.0}
    with pytest.raises(ValueError, match="gap must be >= 20"):
        trials.nest_trial_layout(30.0, 5.0, 10.0, gap=50.0)
    with pytest.raises(ValueError, match="must be finite and > 0"):
        trials.nest_trial_layout(-1.0, 5.0, 5.0)
    params = trials.nest_cell_parameters(dict(TTFS, v_reset=-80.0), active_window=30.0)
    assert params["v_reset"] == params["v_rest"] == -65.0
    assert params["tau_refrac"] == 230.0 and params["i_offset"] == 0.0
    assert params["tau_m"] == 10.0 and params["v_thresh"] == -62.0


def test_first_spike_times_reads_any_time_unit():
    """Spike trains in s, ms or µs give the same first-spike times (ms)."""
    import neo
    import quantities as pq

    from pynn_ttfs.trials import first_spike_times

    ms = [np.array([1.5, 12.0, 27.25]), np.array([25.0])]  # trial duration 10 ms
    expected = np.array([[1.5, np.inf], [2.0, np.inf], [7.25, 5.0]])
    for unit, scale in ((pq.ms, 1.0), (pq.s, 1e-3), (pq.us, 1e3)):
        trains = [neo.SpikeTrain(t * scale, units=unit, t_stop=30.0 * scale) for t in ms]
        got = first_spike_times(trains, n_trials=3, trial_duration=10.0)
        assert np.allclose(got, expected), (unit, got)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_trials=2, trial_duration=0.0), "trial_duration must be a finite number > 0 ms, got 0.0"),
    (dict(n_trials=2, trial_duration=float("nan")), "trial_duration must be a finite number > 0"),
    (dict(n_trials=-1, trial_duration=10.0), "n_trials must be an integer >= 0, got -1"),
    (dict(n_trials=2.5, trial_duration=10.0), "n_trials must be an integer >= 0"),
    (dict(n_trials=2, trial_duration=10.0, t_start=float("inf")), "t_start must be a finite"),
])
def test_first_spike_times_from_neo_rejects_a_bad_trial_layout(kwargs, message):
    import neo
    import quantities as pq
    trains = [neo.SpikeTrain([1.0, 12.0] * pq.ms, t_stop=20.0 * pq.ms)]
    with pytest.raises(ValueError, match=message):
        trials.first_spike_times(trains, **kwargs)
    np.testing.assert_array_equal(trials.first_spike_times(trains, 2, 10.0), [[1.0], [2.0]])
