"""PyNN 0.13.0's own system scenarios (test/system/scenarios/ of the sdist), run on pynn_ttfs.

Two groups of cases:

* test_pynn_scenario[<name>]: each of the 66 upstream scenarios, unchanged, with
  `sim = fixtures.LazySimulator("ttfs")` (i.e. `pyNN.ttfs`, aliased to pynn_ttfs). A
  scenario either passes, or is listed in pynn_scenarios_expected_unsupported.txt and
  must fail with the ModelNotAvailable error of the model named there. Listed but
  passing, or failing any other way, fails the test.
* test_pynn_scenario_with_ttfs_cells[<name>-<mode>]: scenarios whose LIF cells only
  carry connections, recordings or simulation control, run with IF_cond_exp / IF_curr_exp
  / IF_cond_alpha / IF_curr_alpha replaced by IF_curr_exp_ttfs (see
  _scenario_support.substitute_cell_class), plus the scenarios that pass unchanged; each
  in four setup() modes: one trial per segment, trial mode (trial_duration=3.3 ms), the
  emulated BrainScaleS-2 substrate (backend="bss2"), and device="cuda" (GPU only).
  Most upstream scenarios are unsupported only because of their cell model; this group
  makes their connector, projection, recording and control checks exercise pynn_ttfs
  anyway. These must all pass.

The suite is fetched from PyPI by .ci/fetch_pynn_tests.sh into $PYNN_TESTS_DIR (default
~/.cache/pynn_ttfs/pynn-0.13.0-tests); the module fetches it itself when it is missing, and
skips only when it is neither cached nor fetchable.
"""

import inspect
import logging
import sys
from pathlib import Path

import pytest
import torch

import pyNN
import pynn_ttfs  # an import error here must fail collection, never skip (see LazySimulator)
from pyNN.errors import NoModelAvailableError
from pyNN.standardmodels import ModelNotAvailable

# tests/ is not a package; make the helper importable however pytest was started.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scenario_support import (  # noqa: E402
    EXPECTED_UNSUPPORTED_FILE,
    ExpectedUnsupported,
    ScenarioOutcomeError,
    SimulatorWithSubstitutedCells,
    ensure_scenarios,
    load_fixtures,
    load_scenarios,
    read_expected_unsupported,
    run_expected_unsupported,
    substitute_cell_class,
)

# fixtures.LazySimulator("ttfs") imports "pyNN.ttfs"; there is no backend registry in
# PyNN, so the alias is how the upstream scenarios find pynn_ttfs.
sys.modules["pyNN.ttfs"] = pynn_ttfs
pyNN.ttfs = pynn_ttfs

SCENARIO_COUNT_IN_PYNN_0_13_0 = 66

_folder, _unavailable_reason = ensure_scenarios()
if _folder is None:
    pytest.skip(_unavailable_reason, allow_module_level=True)

SCENARIOS = load_scenarios(_folder)
FIXTURES = load_fixtures(_folder)
EXPECTED_UNSUPPORTED = read_expected_unsupported()

# Scenarios re-run with TTFS cells in place of the standard LIF cells. Each needs, apart
# from its cell model, only what pynn_ttfs has: SpikeSourceArray, StaticSynapse,
# connectors, projections get/set, views, recording of v/spikes, reset, run_until.
# Left out: scenarios whose assertions depend on LIF dynamics (firing under i_offset or
# DCSource, v depolarised by conductance inputs), and those needing other unavailable
# models (Poisson sources, Tsodyks-Markram/STDP/stochastic synapses, current sources).
WITH_TTFS_CELLS = [
    "test_reset",                      # i_offset dropped: v traces identical across resets
    "test_reset_with_clear",
    "test_reset_with_spikes",          # several input spikes per source, delays, 3 segments
    "test_setup",
    "test_run_until",
    "test_connections_attribute",
    "test_connection_access_weight_and_delay",
    "test_issue672",
    "test_fixed_number_pre_no_replacement",
    "test_fixed_number_pre_with_replacement",
    "test_fixed_number_post_no_replacement",
    "test_fixed_number_post_with_replacement",
    "test_issue231",                   # min_delay='auto'
    "test_issue274",                   # DistanceDependentProbabilityConnector, Projection.set
    "test_sampling_interval",
    "test_mix_procedural_and_oo",      # record(..., to_file) written by end() == write_data
    # Recurrent projections (p -> p, views of one population): connector checks only,
    # these never run(), where pynn_ttfs rejects a cyclic network.
    "test_all_to_all_static_no_self",
    "test_issue309",
    "test_issue302",
    "test_issue622",
]
# Scenarios that pass unchanged; they also run in every mode below.
MUST_PASS_UNCHANGED = sorted(set(SCENARIOS) - set(EXPECTED_UNSUPPORTED))
# Modes, as setup() keyword arguments added to the scenario's own: one trial per segment;
# trial mode (each trial starts from rest; 3.3 ms does not divide the scenarios' run
# lengths, so trials straddle run() boundaries); the emulated BrainScaleS-2 substrate,
# which the issue says a script selects by changing one line.
SETUP_MODES = {
    "software": {},
    "software-trials3.3ms": {"trial_duration": 3.3},
    # calibration="none": the raw emulated chip. Calibrating takes 15 s of CPU and writes a
    # cache into ~/.cache; these scenarios check PyNN mechanics, not calibrated accuracy
    # (tests/test_bss2.py covers calibration).
    "bss2": {"backend": "bss2", "calibration": "none"},
    "software-cuda": {"device": "cuda"},  # skipped without a GPU
}
# These compare membrane traces between runs bit for bit; on an emulated chip with
# trial-to-trial noise that is not a property the backend promises.
COMPARE_TRACES_ACROSS_RUNS = {"test_reset", "test_reset_with_clear", "test_reset_with_spikes", "test_setup"}
SUBSTITUTED_CELLS = ("IF_cond_exp", "IF_curr_exp", "IF_cond_alpha", "IF_curr_alpha")
# Parameters of the substituted cells a TTFS cell cannot take: conductance reversal
# potentials, and i_offset (a constant current drive has no first-spike closed form here).
DROPPED_PARAMETERS = frozenset({"e_rev_E", "e_rev_I", "i_offset"})


@pytest.fixture(autouse=True)
def _restore_root_logger():
    """Some scenarios call pyNN.utility.init_logging(debug=True) (logging.basicConfig);
    keep that from changing logging for the rest of the test session."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def _call_scenario(function, sim):
    # Upstream signatures are (sim) or (sim, plot_figure=False); pytest passes only sim.
    parameters = list(inspect.signature(function).parameters)
    assert parameters[0] == "sim", f"{function.__name__} does not take sim first: {parameters}"
    return function(sim)


def test_scenario_suite_is_complete():
    assert len(SCENARIOS) == SCENARIO_COUNT_IN_PYNN_0_13_0, sorted(SCENARIOS)


def test_expected_unsupported_list_names_real_scenarios_and_models():
    unknown = sorted(set(EXPECTED_UNSUPPORTED) - set(SCENARIOS))
    assert not unknown, f"{EXPECTED_UNSUPPORTED_FILE.name} lists scenarios PyNN 0.13.0 does not have: {unknown}"
    for entry in EXPECTED_UNSUPPORTED.values():
        model = getattr(pynn_ttfs, entry.model, None)
        if model is None:
            # Only multi-compartment models may be absent: they are not PyNN standard
            # models every backend has; all others must be declared ModelNotAvailable.
            assert entry.model == "MultiCompartmentNeuron", (
                f"pynn_ttfs has no attribute {entry.model} (needed by {entry.scenario}); "
                f"declare it as a pyNN.standardmodels.ModelNotAvailable subclass")
            continue
        assert isinstance(model, type) and issubclass(model, ModelNotAvailable), (
            f"{entry.scenario} is listed as unsupported because of {entry.model}, "
            f"but pynn_ttfs.{entry.model} is {model!r}, not a ModelNotAvailable")


@pytest.mark.parametrize("scenario_name", sorted(SCENARIOS))
def test_pynn_scenario(scenario_name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # some scenarios write data files into the working directory
    _module, function = SCENARIOS[scenario_name]
    sim = FIXTURES.LazySimulator("ttfs")
    expected = EXPECTED_UNSUPPORTED.get(scenario_name)
    if expected is None:
        _call_scenario(function, sim)
        return
    try:
        run_expected_unsupported(lambda s: _call_scenario(function, s), sim, expected)
    except ScenarioOutcomeError as error:
        pytest.fail(str(error), pytrace=False)


def test_outcome_check_rejects_listed_scenarios_that_pass_or_fail_otherwise():
    """The check that keeps the expected-unsupported list honest, on stand-in scenarios."""
    entry = ExpectedUnsupported("test_fake", "IF_cond_exp", "stand-in")

    def raises(error):
        def scenario(sim):
            raise error
        return scenario

    not_available = pynn_ttfs.IF_cond_exp
    with pytest.raises(NotImplementedError) as real_error:
        not_available()
    assert run_expected_unsupported(raises(real_error.value), None, entry) is None
    assert run_expected_unsupported(
        raises(NoModelAvailableError("IF_cond_exp is not available")), None, entry) is None
    for wrong in (lambda sim: None,                                   # passes
                  raises(ValueError("The IF_cond_exp model is not available for this simulator")),
                  raises(NotImplementedError("The IF_curr_exp model is not available for this simulator")),
                  raises(NotImplementedError("something else")),
                  raises(AttributeError("module 'pynn_ttfs' has no attribute 'IF_cond_exp'"))):
        with pytest.raises(ScenarioOutcomeError):
            run_expected_unsupported(wrong, None, entry)


@pytest.mark.parametrize("mode", sorted(SETUP_MODES))
@pytest.mark.parametrize("scenario_name", MUST_PASS_UNCHANGED + WITH_TTFS_CELLS)
def test_pynn_scenario_with_ttfs_cells(scenario_name, mode, tmp_path, monkeypatch):
    if mode == "software-cuda" and not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    if mode == "bss2" and scenario_name in COMPARE_TRACES_ACROSS_RUNS:
        pytest.skip("compares traces across runs bit for bit: not promised on the noisy emulated chip")
    monkeypatch.chdir(tmp_path)
    _module, function = SCENARIOS[scenario_name]
    substitutes = {
        name: substitute_cell_class(pynn_ttfs.IF_curr_exp_ttfs, name, DROPPED_PARAMETERS)
        for name in SUBSTITUTED_CELLS
    }

    def setup_in_mode(*args, **kwargs):
        for option, value in SETUP_MODES[mode].items():
            kwargs.setdefault(option, value)
        return pynn_ttfs.setup(*args, **kwargs)

    substitutes["setup"] = setup_in_mode
    _call_scenario(function, SimulatorWithSubstitutedCells(pynn_ttfs, substitutes))
