"""Helpers for running PyNN 0.13.0's own system scenarios against pynn_ttfs.

The scenarios live in the pynn==0.13.0 sdist (test/system/scenarios/), not in the wheel,
so they are fetched into a cache directory by .ci/fetch_pynn_tests.sh. This module finds
(or fetches) that cache, imports the scenario modules under a private package name,
reads the list of scenarios expected to be unsupported, and recognises PyNN's
"model not available" errors.
"""

import importlib
import importlib.util
import os
import re
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

PYNN_VERSION = "0.13.0"
REPO_ROOT = Path(__file__).resolve().parent.parent
FETCH_SCRIPT = REPO_ROOT / ".ci" / "fetch_pynn_tests.sh"
EXPECTED_UNSUPPORTED_FILE = Path(__file__).resolve().parent / "pynn_scenarios_expected_unsupported.txt"
SCENARIO_FILES_GLOB = "test*.py"
# The scenario modules use relative imports (`from .fixtures import ...`), so they are
# imported as submodules of a package; a private name avoids clashing with anything
# called `system` or `scenarios` on sys.path.
SCENARIO_PACKAGE = "_pynn_upstream_scenarios"


def scenario_cache_dir():
    """Where .ci/fetch_pynn_tests.sh puts (or has put) the PyNN test folder."""
    configured = os.environ.get("PYNN_TESTS_DIR")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "pynn_ttfs" / f"pynn-{PYNN_VERSION}-tests"


def scenarios_dir(cache_dir):
    return Path(cache_dir) / "test" / "system" / "scenarios"


def ensure_scenarios(cache_dir=None):
    """Return the scenarios folder, fetching the sdist from PyPI if it is not cached.

    Returns (path, None) on success or (None, reason) when the suite is neither cached
    nor fetchable (PyPI unreachable): the caller skips with that reason.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else scenario_cache_dir()
    folder = scenarios_dir(cache_dir)
    if (folder / "fixtures.py").is_file() and (cache_dir / ".complete").is_file():
        return folder, None
    try:
        completed = subprocess.run(
            ["bash", str(FETCH_SCRIPT), str(cache_dir)],
            capture_output=True, text=True, timeout=300,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return None, f"could not run {FETCH_SCRIPT}: {err}"
    if completed.returncode != 0 or not (folder / "fixtures.py").is_file():
        return None, (
            f"PyNN {PYNN_VERSION} test suite not cached in {cache_dir} and fetching it from "
            f"PyPI failed (exit {completed.returncode}): {completed.stderr.strip()[-500:]}"
        )
    return folder, None


def _load_package(folder):
    package = sys.modules.get(SCENARIO_PACKAGE)
    if package is not None:
        return package
    spec = importlib.util.spec_from_file_location(
        SCENARIO_PACKAGE, folder / "__init__.py", submodule_search_locations=[str(folder)])
    package = importlib.util.module_from_spec(spec)
    sys.modules[SCENARIO_PACKAGE] = package
    spec.loader.exec_module(package)
    return package


def load_scenarios(folder):
    """Import every scenario module; return {function name: (module, function)}.

    A scenario is a module-level function named test_* (what pytest would collect);
    upstream they are all decorated with fixtures.run_with_simulators, which only adds a
    pytest parametrize mark, so calling the function directly with `sim` is what pytest
    would do for one simulator.
    """
    folder = Path(folder)
    _load_package(folder)
    scenarios = {}
    for path in sorted(folder.glob(SCENARIO_FILES_GLOB)):
        module = importlib.import_module(f"{SCENARIO_PACKAGE}.{path.stem}")
        for name, obj in vars(module).items():
            if name.startswith("test") and callable(obj) and getattr(obj, "__module__", None) == module.__name__:
                if name in scenarios:
                    raise RuntimeError(f"scenario name {name} defined twice ({path.name})")
                scenarios[name] = (module, obj)
    return scenarios


def load_fixtures(folder):
    _load_package(Path(folder))
    return importlib.import_module(f"{SCENARIO_PACKAGE}.fixtures")


@dataclass(frozen=True)
class ExpectedUnsupported:
    scenario: str
    model: str
    reason: str


def read_expected_unsupported(path=EXPECTED_UNSUPPORTED_FILE):
    """Parse `scenario | Model | reason` lines (blank lines and # comments ignored)."""
    entries = {}
    for line_number, raw in enumerate(Path(path).read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = [field.strip() for field in line.split("|")]
        if len(fields) != 3 or not all(fields):
            raise ValueError(f"{path}:{line_number}: expected 'scenario | Model | reason', got {raw!r}")
        scenario, model, reason = fields
        if scenario in entries:
            raise ValueError(f"{path}:{line_number}: scenario {scenario} listed twice")
        entries[scenario] = ExpectedUnsupported(scenario, model, reason)
    return entries


_NOT_AVAILABLE = re.compile(r"\bThe (\w+) model is not available for this simulator")


def is_model_not_available_error(error, model):
    """True if `error` is PyNN's "model not available" error naming `model`.

    pyNN.standardmodels.ModelNotAvailable.__init__ raises NotImplementedError("The <name>
    model is not available for this simulator."); pyNN.errors.NoModelAvailableError is the
    other spelling PyNN has for the same thing (accepted if its message names the model).
    """
    from pyNN.errors import NoModelAvailableError
    if isinstance(error, NoModelAvailableError):
        return re.search(rf"\b{re.escape(model)}\b", str(error)) is not None
    if isinstance(error, NotImplementedError):
        match = _NOT_AVAILABLE.search(str(error))
        return match is not None and match.group(1) == model
    return False


class ScenarioOutcomeError(AssertionError):
    """A listed scenario passed, or failed for a reason other than its listed model."""


def run_expected_unsupported(scenario, sim, expected):
    """Run `scenario(sim)`, which is listed as unsupported because of `expected.model`.

    Returns None if it failed with that model's ModelNotAvailable error; raises
    ScenarioOutcomeError (with the original traceback) if it passed or failed otherwise.
    pytest's skip/fail outcomes are BaseExceptions and pass through untouched.
    """
    try:
        scenario(sim)
    except Exception as error:
        if is_model_not_available_error(error, expected.model):
            return None
        raise ScenarioOutcomeError(
            f"{expected.scenario} is listed as unsupported ({expected.model}: {expected.reason}) "
            f"but failed with another error:\n" + "".join(traceback.format_exception(error))
        ) from error
    raise ScenarioOutcomeError(
        f"{expected.scenario} passed but {EXPECTED_UNSUPPORTED_FILE.name} lists it as "
        f"unsupported ({expected.model}); remove it from the list")


def substitute_cell_class(ttfs_cell_class, standard_name, dropped_parameters):
    """A subclass of the TTFS cell type that stands in for the standard cell `standard_name`.

    Used by the "with TTFS cells" variant of the scenarios, where the LIF cells only carry
    connections or recordings: parameters the TTFS cell cannot have (conductance reversal
    potentials, a constant current drive) are dropped, the rest are passed through, and
    anything else it rejects still fails the scenario.
    """
    def __init__(self, **parameters):
        kept = {name: value for name, value in parameters.items() if name not in dropped_parameters}
        ttfs_cell_class.__init__(self, **kept)

    return type(f"{standard_name}_as_{ttfs_cell_class.__name__}", (ttfs_cell_class,),
                {"__init__": __init__, "__module__": __name__})


class SimulatorWithSubstitutedCells:
    """Looks like the `sim` module, except that some standard cell types are substituted."""

    def __init__(self, backend, substitutes):
        self._backend = backend
        self._substitutes = dict(substitutes)

    @property
    def __name__(self):  # scenarios put sim.__name__ into file names
        return self._backend.__name__

    def __getattr__(self, name):
        if name in self._substitutes:
            return self._substitutes[name]
        return getattr(self._backend, name)
