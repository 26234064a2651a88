"""The emulated BrainScaleS-2 substrate: weights, capacity, seeds, exactness switch, time
stamps, time-constant ranges and calibration (spread measured from spikes only)."""
import numpy as np
import pytest

from pynn_ttfs.backends import LIF, SOURCE, NetworkGraph, PopulationSpec, ProjectionSpec, TrialInput, get_substrate
from pynn_ttfs.backends.bss2 import (BSS2Substrate, Calibration, ChipConfig, ChipInstance, calibrate,
                                     chip_to_model, measure_neurons, model_to_chip, relative_spread)
from pynn_ttfs.backends.bss2.calibration import cache_path

THRESHOLD_NA = 0.2 / 1.0 * 10.0  # cm / tau_m * (v_thresh - v_rest)


def lif(label, n, tau=1.0, ratio=1.0):
    return PopulationSpec(label, n, LIF, {
        "tau_syn": np.full(n, tau), "tau_m": np.full(n, ratio * tau), "cm": np.full(n, 0.2 * ratio),
        "v_rest": np.full(n, -65.0), "v_thresh": np.full(n, -55.0)})


def dense(label, pre, post, n_pre, n_post, weights_model, delay=0.0):
    pi, po = np.meshgrid(np.arange(n_pre), np.arange(n_post), indexing="ij")
    return ProjectionSpec(label, pre, post, pi.ravel(), po.ravel(), np.asarray(weights_model).ravel() * THRESHOLD_NA,
                          np.full(pi.size, delay))


def yinyang_like(seed=0, n_hidden=40, ratio=1.0):
    rng = np.random.default_rng(seed)
    g = NetworkGraph()
    g.add_population(PopulationSpec("in", 5, SOURCE))
    g.add_population(lif("hidden", n_hidden, ratio=ratio))
    g.add_population(lif("out", 3, ratio=ratio))
    g.add_projection(dense("p1", "in", "hidden", 5, n_hidden, rng.normal(1.0, 0.8, (5, n_hidden))))
    g.add_projection(dense("p2", "hidden", "out", n_hidden, 3, rng.normal(0.3, 0.5, (n_hidden, 3))))
    trials = TrialInput({"in": rng.uniform(0.0, 2.0, (60, 5, 1))})
    return g, trials


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("bss2_cal")


def test_weight_quantisation_round_trip():
    cfg = ChipConfig()
    ints = np.arange(-63, 64)
    assert np.array_equal(model_to_chip(chip_to_model(ints, cfg), cfg), ints)
    w = np.array([0.0, 1.0 / 30, 0.049, 0.051, -1.0, 2.1, 2.5, -7.0])
    assert np.array_equal(model_to_chip(w, cfg), [0, 1, 1, 2, -30, 63, 63, -63])
    back = chip_to_model(model_to_chip(w, cfg), cfg)
    inside = np.abs(w) <= 2.1
    assert np.all(np.abs(back - w)[inside] <= 0.5 / 30 + 1e-12)
    assert np.allclose(back[~inside], np.sign(w[~inside]) * 2.1)
    # through the substrate, in nA: realised weights are integers / 30 times the threshold current
    g, _ = yinyang_like()
    sub = BSS2Substrate(ideal=True, weight_resolution=30.0)
    realised, chip_ints = sub.realised_weights(g), sub.chip_weights(g)
    for proj in g.projections:
        assert np.all(np.abs(chip_ints[proj.label]) <= 63)
        assert np.allclose(realised[proj.label], chip_ints[proj.label] / 30.0 * THRESHOLD_NA)
    # the element-wise hook the PyNN layer uses for Projection.get
    w = g.projections[0].weight
    assert np.array_equal(sub.realise_weight_array(w, THRESHOLD_NA), realised["p1"])
    # finer resolution is configurable
    fine = ChipConfig(weight_resolution=100.0, max_weight_int=255)
    assert fine.max_weight_model == pytest.approx(2.55)
    assert model_to_chip(np.array([0.123]), fine)[0] == 12


def test_capacity_errors_name_the_limit_and_excess():
    g = NetworkGraph()
    g.add_population(PopulationSpec("in", 300, SOURCE))
    g.add_population(lif("a", 200))
    g.add_population(lif("b", 70))
    g.add_projection(dense("p", "in", "a", 300, 200, np.ones((300, 200))))
    sub = BSS2Substrate(ideal=True)
    trials = TrialInput({"in": np.zeros((1, 300, 1))})
    with pytest.raises(ValueError, match=r"270 LIF neurons.*256 logical neurons: 14 too many"):
        sub.run(g, trials)
    g.populations.pop("b")
    with pytest.raises(ValueError, match=r"population 'a' needs 300 signed inputs.*256.*44 too many"):
        sub.run(g, trials)


def test_mnist16_hardware_network_fits_exactly():
    g = NetworkGraph()
    g.add_population(PopulationSpec("in", 256, SOURCE))
    g.add_population(lif("hidden", 246))
    g.add_population(lif("out", 10))
    g.add_projection(dense("p1", "in", "hidden", 256, 246, np.zeros((256, 246))))
    g.add_projection(dense("p2", "hidden", "out", 246, 10, np.zeros((246, 10))))
    assert BSS2Substrate(ideal=True).placement(g) == {"hidden": 0, "out": 246}


def test_time_constants_outside_calibratable_range_raise():
    g, trials = yinyang_like()
    g.populations["hidden"].params["tau_syn"][:] = 50.0  # 50 µs on chip, range 0.3-30
    g.populations["hidden"].params["tau_m"][:] = 50.0
    with pytest.raises(ValueError, match=r"tau_syn = 50 ms.*outside the calibratable range 0.3-30 µs"):
        BSS2Substrate(ideal=True).run(g, trials)


def test_ideal_chip_reproduces_software_exactly():
    for ratio in (1.0, 2.0):
        g, trials = yinyang_like(seed=1, ratio=ratio)
        soft = get_substrate("software").run(g, trials)
        chip = get_substrate("bss2", ideal=True).run(g, trials)
        for label, times in soft.first_spike_times.items():
            assert np.isfinite(times).any()
            assert np.array_equal(times, chip.first_spike_times[label])


def test_realistic_chip_deviates_and_same_seed_is_identical(cache_dir):
    g, trials = yinyang_like(seed=2)
    small = ChipConfig(n_neurons=64)  # a 64-neuron chip calibrates 4x faster
    runs = [BSS2Substrate(chip_seed=5, calibration_dir=cache_dir, chip_config=small).run(g, trials)
            for _ in range(2)]
    other = BSS2Substrate(chip_seed=6, calibration_dir=cache_dir, chip_config=small).run(g, trials)
    soft = get_substrate("software").run(g, trials)
    for label in soft.first_spike_times:
        assert np.array_equal(runs[0].first_spike_times[label], runs[1].first_spike_times[label])
        assert not np.array_equal(runs[0].first_spike_times[label], other.first_spike_times[label])
        a, b = soft.first_spike_times[label], runs[0].first_spike_times[label]
        both = np.isfinite(a) & np.isfinite(b)
        assert both.mean() > 0.5
        assert 0 < np.mean(np.abs(a[both] - b[both])) < 0.5  # close, but not equal
    # the calibration was cached once per chip and is reused
    assert cache_path(cache_dir, 5, small).exists()


def test_random_state_continues_the_trial_to_trial_noise(cache_dir):
    g, trials = yinyang_like(seed=2)
    small = ChipConfig(n_neurons=64)
    chip = BSS2Substrate(chip_seed=5, calibration_dir=cache_dir, chip_config=small)
    saved = chip.random_state()
    first = chip.run(g, trials).first_spike_times["out"]
    second = chip.run(g, trials).first_spike_times["out"]
    assert not np.array_equal(first, second, equal_nan=True)  # new noise on every run
    chip.set_random_state(saved)
    assert np.array_equal(chip.run(g, trials).first_spike_times["out"], first)
    other = BSS2Substrate(chip_seed=6, calibration_dir=cache_dir, chip_config=small)
    with pytest.raises(ValueError, match="saved on chip_seed 5, this chip has chip_seed 6"):
        other.set_random_state(saved)
    software = get_substrate("software")
    assert software.random_state() is None
    software.set_random_state(None)
    with pytest.raises(ValueError, match="'software' draws no random numbers"):
        software.set_random_state(saved)


def test_spike_times_on_the_8ns_clock_and_chip_time_reported():
    g, trials = yinyang_like(seed=3)
    sub = BSS2Substrate(ideal=True, time_resolution_us=0.008, noise=True)
    result = sub.run(g, trials)
    tick = 0.008  # model ms per 8 ns at 1000x
    for times in result.first_spike_times.values():
        finite = times[np.isfinite(times)]
        assert finite.size > 0
        assert np.allclose(np.round(finite / tick) * tick, finite, atol=1e-12, rtol=0)
    info = result.info
    assert info["chip_time_per_trial_us"] == pytest.approx(30.0)  # 30 tau_s of 1 µs
    assert info["chip_time_s"] == pytest.approx(60 * 30e-6)
    assert info["spikes_per_trial"] == pytest.approx(info["lif_spikes"] / 60)
    slow = BSS2Substrate(ideal=True, overhead_per_trial_us=10.0).run(g, trials)
    assert slow.info["chip_time_s"] == pytest.approx(60 * 40e-6)
    # energy = power x chip time; default power from Stradmann et al. 2022 (192 µJ / 276 µs)
    assert info["chip_energy_per_trial_uj"] == pytest.approx(192 / 276 * 30.0)
    assert info["system_energy_per_trial_uj"] == pytest.approx(5.6 * 30.0)
    custom = BSS2Substrate(ideal=True, chip_power_w=0.1).run(g, trials)
    assert custom.info["chip_energy_per_trial_uj"] == pytest.approx(3.0)
    with pytest.raises(ValueError, match="chip_power_w"):
        BSS2Substrate(ideal=True, chip_power_w=-1.0)


def test_noise_is_seeded_and_switchable():
    g, trials = yinyang_like(seed=4)
    a = BSS2Substrate(ideal=True, noise=True, noise_seed=1).run(g, trials).first_spike_times["out"]
    b = BSS2Substrate(ideal=True, noise=True, noise_seed=1).run(g, trials).first_spike_times["out"]
    c = BSS2Substrate(ideal=True, noise=True, noise_seed=2).run(g, trials).first_spike_times["out"]
    quiet = BSS2Substrate(ideal=True).run(g, trials).first_spike_times["out"]
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    both = np.isfinite(a) & np.isfinite(quiet)
    spread = np.std(a[both] - quiet[both])
    assert 0.003 < spread < 0.1  # jitter 0.01 tau_s plus 1.5 % threshold noise


def test_calibration_shrinks_the_measured_spread_and_round_trips_through_file(tmp_path):
    cfg = ChipConfig(n_neurons=64)
    chip = ChipInstance(11, cfg)
    before = relative_spread(measure_neurons(chip, repeats=24, seed=1), cfg.calibration_tau_us)
    calibration = calibrate(chip, repeats=24)
    after = relative_spread(measure_neurons(chip, repeats=24, seed=2), cfg.calibration_tau_us)
    assert before["tau_mem"] > 0.08 and before["weight_scale"] > 0.1
    assert after["tau_mem"] < 0.6 * before["tau_mem"]
    assert after["tau_syn"] < 0.8 * before["tau_syn"]
    assert after["weight_scale"] < 0.5 * before["weight_scale"]
    assert calibration.calibratable.mean() > 0.9
    path = calibration.save(tmp_path / "cal.npz")
    loaded = Calibration.load(path, chip_seed=11, config=cfg)
    for name, trim in calibration.trims.items():
        assert np.array_equal(trim, loaded.trims[name])
    with pytest.raises(ValueError, match="chip_seed 11, not 12"):
        Calibration.load(path, chip_seed=12)
    with pytest.raises(ValueError, match="different chip configuration"):
        Calibration.load(path, config=cfg.replace(tau_mem_spread=0.45))


def test_calibration_never_reads_hidden_parameters():
    import inspect

    from pynn_ttfs.backends.bss2 import calibration as module
    source = inspect.getsource(module)
    assert "_true_" not in source and "_drift_" not in source and "neuron_factors" not in source


def test_network_is_placed_on_the_circuits_the_calibration_could_measure(tmp_path):
    """Dead circuits (no spike response in calibration) get no logical neuron, as a real
    chip's placement avoids them; with too few working circuits the capacity error says
    how many failed; an uncalibrated chip knows nothing and uses every circuit."""
    g, trials = yinyang_like(seed=2, n_hidden=30)
    config = ChipConfig(n_neurons=64, dead_fraction=0.25)
    sub = BSS2Substrate(chip_seed=5, calibration_dir=tmp_path, chip_config=config)
    dead = sub.chip.neuron_factors()["dead"]  # the hidden truth, for the check only
    assert dead.sum() >= 8
    assert not dead[sub.circuits].any() and len(sub.circuits) == 64 - dead.sum()
    result = sub.run(g, trials)
    # every output neuron fires in some trial: none of them sits on a dead circuit
    assert np.isfinite(result.first_spike_times["out"]).any(axis=0).all()
    raw = BSS2Substrate(chip_seed=5, calibration="none", chip_config=config)
    assert np.array_equal(raw.circuits, np.arange(64))
    assert (~np.isfinite(raw.run(g, trials).first_spike_times["hidden"])).all(axis=0)[dead[:30]].all()
    big = NetworkGraph()
    big.add_population(PopulationSpec("in", 5, SOURCE))
    big.add_population(lif("a", 60))
    big.add_projection(dense("p", "in", "a", 5, 60, np.ones((5, 60))))
    failed = int(dead.sum())
    with pytest.raises(ValueError, match=rf"60 LIF neurons.*{64 - failed} working logical neurons "
                                         rf"\({failed} of 64 circuits failed calibration\): {failed - 4} too many"):
        sub.run(big, TrialInput({"in": np.zeros((1, 5, 1))}))


def test_calibration_cache_key_counts_the_noise_settings(tmp_path):
    base = ChipConfig(n_neurons=8)
    paths = {cache_path(tmp_path, 1, base.replace(**change))
             for change in ({}, {"noise": False}, {"threshold_noise": 0.2},
                            {"spike_jitter_tau_s": 0.05})}
    assert len(paths) == 4  # each calibrates through different noise: its own trims
    assert cache_path(tmp_path, 1, base.replace(overhead_per_trial_us=9.0)) == cache_path(tmp_path, 1, base)


def test_a_damaged_calibration_cache_is_measured_again(tmp_path):
    from pynn_ttfs.backends.bss2.calibration import load_or_calibrate
    config = ChipConfig(n_neurons=8)
    path = cache_path(tmp_path, 3, config)
    path.write_bytes(b"not a calibration")
    chip = ChipInstance(3, config)
    with pytest.warns(RuntimeWarning, match="unusable .* recalibrating"):
        calibration = load_or_calibrate(chip, tmp_path)
    assert chip.calibrated and calibration.chip_seed == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left
    again = load_or_calibrate(ChipInstance(3, config), tmp_path)
    for name in calibration.trims:
        np.testing.assert_array_equal(again.trims[name], calibration.trims[name])


def test_chip_config_needs_finite_values_and_thresholds_stay_above_rest():
    for change, message in (({"weight_resolution": np.inf}, "weight_resolution must be finite"),
                            ({"acceleration": np.inf}, "acceleration must be finite"),
                            ({"threshold_noise": np.nan}, "threshold_noise must be finite")):
        with pytest.raises(ValueError, match=message):
            ChipConfig(**change)
    chip = ChipInstance(0, ChipConfig(calibrated_threshold_spread=0.5))
    assert chip._drift_threshold.min() >= 0.2


def _one_synapse_graph(weights_model, pre_index, n_pre=1):
    g = NetworkGraph()
    g.add_population(PopulationSpec("in", n_pre, SOURCE))
    g.add_population(lif("out", 1))
    g.add_projection(ProjectionSpec("p", "in", "out", np.asarray(pre_index), np.zeros(len(pre_index), int),
                                    np.asarray(weights_model, float) * THRESHOLD_NA,
                                    np.zeros(len(pre_index))))
    return g


def test_multiple_synapses_of_a_pair_meet_on_one_6bit_synapse():
    """Two connections between the same pair (same delay) are one synapse of the chip:
    their sum is stored in 6 bits and clipped like one weight of that size (before, each
    was quantised alone and the chip applied twice the largest weight)."""
    trials = TrialInput({"in": np.zeros((1, 3, 1))})
    chip = BSS2Substrate(ideal=True, weight_resolution=30.0)
    pairs = [0, 0, 1, 1, 2, 2]  # three sources, each connected twice
    with pytest.warns(RuntimeWarning, match="3 chip synapse weight.* clipped to \\+-63"):
        doubled = chip.run(_one_synapse_graph([2.1] * 6, pairs, 3), trials).first_spike_times["out"]
    once = chip.run(_one_synapse_graph([2.1] * 3, [0, 1, 2], 3), trials).first_spike_times["out"]
    assert np.isfinite(once).all()
    np.testing.assert_array_equal(doubled, once)
    # below the limit the sum is what the chip holds: 2 x 0.5 = one synapse of 1.0
    half = chip.run(_one_synapse_graph([0.5] * 6, pairs, 3), trials).first_spike_times["out"]
    whole = chip.run(_one_synapse_graph([1.0] * 3, [0, 1, 2], 3), trials).first_spike_times["out"]
    assert np.isfinite(whole).all()
    np.testing.assert_array_equal(half, whole)


def test_an_excitatory_inhibitory_pair_from_the_same_sources_shares_their_inputs():
    """A signed input has an excitatory and an inhibitory synapse row: the same 200 sources
    through two projections need 200 inputs, not 400; distinct sources still count."""
    n = 200
    g = NetworkGraph()
    g.add_population(PopulationSpec("in", n, SOURCE))
    g.add_population(lif("out", 2))
    g.add_projection(dense("in→out", "in", "out", n, 2, np.full((n, 2), 0.1)))
    g.add_projection(dense("in→out", "in", "out", n, 2, np.full((n, 2), -0.1)))
    chip = BSS2Substrate(ideal=True, weight_resolution=30.0)
    assert chip.placement(g) == {"out": 0}
    keys = chip.chip_weights(g)  # the pair shares PyNN's default label: both are kept
    assert sorted(keys) == ["in→out", "in→out#1"]
    assert (keys["in→out"] > 0).all() and (keys["in→out#1"] < 0).all()
    g.add_population(PopulationSpec("more", 100, SOURCE))
    g.add_projection(dense("more→out", "more", "out", 100, 2, np.full((100, 2), 0.01)))
    with pytest.raises(ValueError, match="needs 300 signed inputs .* 44 too many"):
        chip.placement(g)


def test_circuits_the_calibration_could_not_trim_are_reported(cache_dir):
    g, trials = yinyang_like(seed=2)
    small = ChipConfig(n_neurons=64)
    chip = BSS2Substrate(chip_seed=5, calibration_dir=cache_dir, chip_config=small)
    flagged = np.flatnonzero(~chip.calibration.calibratable)
    used = set(chip.circuits[:43].tolist())  # 40 hidden + 3 output neurons
    assert used & set(flagged.tolist())  # this chip has one in use
    with pytest.warns(RuntimeWarning, match=r"chip 5: hidden\[\d+\] \(circuit \d+\) sit on circuits"):
        chip.run(g, trials)


def test_dead_circuits_are_avoided_on_an_otherwise_ideal_chip(tmp_path):
    """Dead circuits are found by the calibration's measurement; a chip with no spread but
    dead circuits is therefore measured too (it was not, and neurons sat on dead circuits)."""
    config = ChipConfig.ideal().replace(n_neurons=64, dead_fraction=0.2)
    chip = BSS2Substrate(chip_seed=1, calibration_dir=str(tmp_path), chip_config=config)
    dead = np.flatnonzero(chip.chip.neuron_factors()["dead"])
    assert dead.size and not set(chip.circuits.tolist()) & set(dead.tolist())
    g, trials = yinyang_like(seed=1)
    result = chip.run(g, trials)
    soft = get_substrate("software").run(g, trials)
    for label, times in soft.first_spike_times.items():
        np.testing.assert_array_equal(np.isfinite(result.first_spike_times[label]).any(axis=0),
                                      np.isfinite(times).any(axis=0))


@pytest.mark.parametrize("kwargs, match", [
    (dict(noise="no"), "noise must be True, False or None"),
    (dict(noise="False"), "noise must be True, False or None"),
    (dict(ideal="false"), "ideal must be True or False"),
    (dict(noise_seed=1.7), "noise_seed must be an integer >= 0"),
    (dict(noise_seed=-1), "noise_seed must be an integer >= 0"),
    (dict(calibration="bogus"), "calibration must be 'auto', 'fresh', 'none' or the path"),
])
def test_bss2_switches_and_seeds_are_checked_not_read_as_truthy(kwargs, match, tmp_path):
    """A string such as "no" used to turn the noise on (and "false" the ideal chip)."""
    from pynn_ttfs.backends.bss2 import BSS2Substrate, ChipConfig
    with pytest.raises(ValueError, match=match):
        BSS2Substrate(calibration_dir=tmp_path, **kwargs)
    with pytest.raises(ValueError, match="ChipConfig.noise must be True or False, got 'off'"):
        ChipConfig(noise="off")


def test_chip_config_fields_given_as_strings_are_named():
    from pynn_ttfs.backends.bss2 import ChipConfig
    with pytest.raises(ValueError, match="ChipConfig.threshold_noise must be a number, got '0.1'"):
        ChipConfig(threshold_noise="0.1")
    with pytest.raises(ValueError, match="ChipConfig.tau_syn_range_us must be a number pair"):
        ChipConfig(tau_syn_range_us=("1", 5.0))
    import json
    from pynn_ttfs.backends.bss2.config import make_config
    config = ChipConfig(threshold_noise=0.1)
    assert make_config(json.loads(json.dumps(config.to_dict()))) == config  # ranges as lists
