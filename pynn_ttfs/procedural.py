"""Control functions (setup, run, reset, end, state queries) and PyNN's procedural API
(create, connect, record, set, initialize) for the pynn_ttfs backend."""
from __future__ import annotations

import difflib
import inspect
import math
import numbers
import warnings

import numpy as np
from pyNN import common
from pyNN.common.control import DEFAULT_MIN_DELAY, DEFAULT_TIMESTEP
from pyNN.connectors import FixedProbabilityConnector
from pyNN.recording import get_io

from . import simulator
from .populations import Population
from .projections import Projection
from .standardmodels import StaticSynapse

_DTYPES = ("float32", "float64")


def _warn_about_likely_typos(extra, substrate) -> None:
    """Other simulators' options (threads=, verbosity=...) are ignored, as PyNN expects; a
    keyword that is one letter or two off one of ours (``trial_duraton``) is a typo that
    would otherwise silently change the run, so it gets a warning."""
    # (a set display: this module's own ``set`` is PyNN's procedural set())
    known = {*inspect.signature(setup).parameters,
             *inspect.signature(substrate.__init__).parameters} - {"self", "extra"}
    for key in extra:
        if key in known:
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.8)
        if close:
            warnings.warn(f"setup(): unknown keyword {key!r} is ignored; did you mean "
                          f"{close[0]!r}?", UserWarning, stacklevel=3)


def setup(timestep=DEFAULT_TIMESTEP, min_delay=DEFAULT_MIN_DELAY, max_delay="auto",
          backend="software", device="cpu", dtype="float64", trial_duration=None, **extra):
    """Start a new simulation; any existing network is discarded.

    ``timestep`` (ms): sampling interval of recorded membrane potentials (spike times are
    exact, not on a grid). ``min_delay`` (ms, default = timestep): the delay of synapses
    created without one; any delay >= 0 is simulated exactly (up to ``max_delay``, ms,
    when one is given; "auto": no limit). ``backend``: substrate name
    ("software" or "bss2"); ``device`` ("cpu", "cuda") and ``dtype`` ("float32",
    "float64") go to the substrate, and so do the other keyword arguments its constructor
    accepts (e.g. ``chip_seed``); the rest (``threads=``, ``verbosity=``...) are ignored.
    ``trial_duration`` (ms): run time-multiplexed trials of this length, each from rest
    (None: the whole segment is one trial), see :mod:`pynn_ttfs.trials`.
    """
    def finite_ms(name, value, low, allow=()):
        if value in allow:
            return
        if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                or not (math.isfinite(value) and value >= low):
            raise ValueError(f"{name} must be a finite number >= {low:g} ms"
                             + "".join(f" or {a!r}" for a in allow) + f", got {value!r}")

    finite_ms("timestep", timestep, 0.0)
    if not timestep > 0:
        raise ValueError(f"timestep must be > 0 ms, got {timestep}")
    finite_ms("min_delay", min_delay, float(timestep), allow=("auto",))
    finite_ms("max_delay", max_delay, float(timestep if min_delay == "auto" else min_delay),
              allow=("auto",))
    if trial_duration is not None and not (float(trial_duration) > 0 and math.isfinite(trial_duration)):
        raise ValueError(f"trial_duration must be a finite number > 0 ms or None, got {trial_duration}")
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
    common.setup(timestep, min_delay, max_delay=max_delay, **extra)
    from .backends import substrate_class
    substrate = substrate_class(backend)  # unknown backend names fail here, with the list
    _warn_about_likely_typos(extra, substrate)
    state = simulator.state
    state.clear()
    state.dt = float(timestep)
    state.min_delay = float(timestep) if min_delay == "auto" else float(min_delay)
    state.min_delay_auto = min_delay == "auto"
    state.max_delay = math.inf if max_delay == "auto" else float(max_delay)
    state.trial_duration = None if trial_duration is None else float(trial_duration)
    state.substrate_name = backend
    state.substrate_options = dict(extra, device=device, dtype=dtype)
    state.substrate = None
    state.substrate = state.get_substrate()
    state.mpi_rank, state.num_processes = 0, 1
    return rank()


def get_random_state():
    """The substrate's random state (the emulated chip's trial-to-trial noise; None on the
    software substrate), to store with a checkpoint; not part of PyNN's API."""
    return simulator.state.get_substrate().random_state()


def set_random_state(random_state) -> None:
    """Continue the substrate's random numbers from :func:`get_random_state`'s value."""
    simulator.state.get_substrate().set_random_state(random_state)


def end(compatible_output=True):
    """Write the files requested with record(..., to_file=...) and finish. Every file that
    can be written is; then an OSError names those that could not (they stay listed, so
    end() may be called again once the cause is fixed)."""
    failed = []
    for entry in simulator.state.write_on_end:
        population, variables, filename = entry
        try:
            population.write_data(get_io(filename), variables)
        except Exception as error:  # one bad file must not lose the others
            failed.append((entry, error))
    simulator.state.write_on_end = [entry for entry, _ in failed]
    if failed:
        details = "; ".join(f"{entry[2]!r} ({entry[0].label!r}): {type(error).__name__}: {error}"
                            for entry, error in failed)
        raise OSError(f"end() could not write {len(failed)} of the record(..., to_file=...) "
                      f"files: {details}") from failed[0][1]


_run, _run_until = common.build_run(simulator)


def _check_time(name, value) -> None:
    """A time that is not a number (``run("10")``) would fail deep in PyNN's arithmetic
    with a TypeError that names nothing."""
    if isinstance(value, (bool, np.bool_)) or not (
            isinstance(value, numbers.Real)
            or (isinstance(value, np.ndarray) and value.ndim == 0
                and np.issubdtype(value.dtype, np.number) and not hasattr(value, "units"))):
        raise TypeError(f"{name} must be a number of ms, got {value!r}")


def run(simtime, callbacks=None):
    _check_time("simtime", simtime)
    return _run(simtime, callbacks)


def run_until(time_point, callbacks=None):
    _check_time("time_point", time_point)
    return _run_until(time_point, callbacks)


run.__doc__, run_until.__doc__ = _run.__doc__, _run_until.__doc__
run_for = run
reset = common.build_reset(simulator)
get_current_time, get_time_step, get_min_delay, get_max_delay, num_processes, rank = \
    common.build_state_queries(simulator)

create = common.build_create(Population)
connect = common.build_connect(Projection, FixedProbabilityConnector, StaticSynapse)
record = common.build_record(simulator)
set = common.set
initialize = common.initialize


def record_v(source, filename):
    return record(["v"], source, filename)


def record_gsyn(source, filename):
    raise NotImplementedError("IF_curr_exp_ttfs is current-based: there is no gsyn to record")
