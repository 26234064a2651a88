"""pynn_ttfs: a PyNN 0.13 backend for time-to-first-spike networks with exact gradients.

``import pynn_ttfs as sim`` gives the usual PyNN module surface (setup, Population,
Projection, connectors, run, get_data, ...). Cell type ``IF_curr_exp_ttfs`` (the analytic
first-spike LIF neuron), ``SpikeSourceArray`` and ``StaticSynapse`` are available; every
other PyNN standard model raises NotImplementedError (ModelNotAvailable) when created.
Trials: see :mod:`pynn_ttfs.trials`.

Example (a batch of samples, one trial of ``D`` ms each, in one run)::

    import numpy as np
    import pynn_ttfs as sim
    from pynn_ttfs import trials

    D = 50.0
    sim.setup(timestep=0.1, trial_duration=D)            # backend="bss2", device="cuda", ...
    x = np.array([[1.0, 2.5], [0.5, np.inf]])            # (n_trials, n_inputs) ms, inf = silent
    inputs = sim.Population(2, sim.SpikeSourceArray(spike_times=trials.spike_times_for_trials(x, D)))
    out = sim.Population(3, sim.IF_curr_exp_ttfs(tau_m=10.0, tau_syn_E=5.0, tau_syn_I=5.0))
    sim.Projection(inputs, out, sim.AllToAllConnector(), sim.StaticSynapse(weight=5.0, delay=0.0))
    out.record(["spikes", "v"])
    sim.run(D * len(x))
    t_first = trials.first_spike_times(out.get_data("spikes"), len(x), D)  # (n_trials, 3)

Limits: feed-forward networks of populations only (a recurrent projection raises at
run()); one spike per neuron and trial; tau_m / tau_syn must be 1 or 2.
"""
from pyNN import errors, random, space  # noqa: F401
from pyNN.network import Network  # noqa: F401
from pyNN.space import Space  # noqa: F401
from pyNN.random import NumpyRNG, GSLRNG, RandomDistribution  # noqa: F401
from pyNN.connectors import *  # noqa: F401,F403
from .connectors import FromFileConnector, FromListConnector  # noqa: F401  (check their rows)
from .connectors import (  # noqa: F401  (check n; work around numpy 2 failures of PyNN's)
    FixedNumberPostConnector, FixedNumberPreConnector, OneToOneConnector,
)
from pyNN.recording import *  # noqa: F401,F403
from pyNN.standardmodels import StandardCellType as _StandardCellType

from .standardmodels import *  # noqa: F401,F403
from .standardmodels import IF_curr_exp_ttfs, SpikeSourceArray, StaticSynapse  # noqa: F401
from .populations import Population, PopulationView, Assembly  # noqa: F401
from .projections import Projection  # noqa: F401
from .procedural import (  # noqa: F401
    setup, end, run, run_until, run_for, reset, initialize, get_current_time, get_time_step,
    get_min_delay, get_max_delay, num_processes, rank, create, connect, record, record_v,
    record_gsyn, set, get_random_state, set_random_state,
)
from . import simulator, trials  # noqa: F401
from .simulator import trial_first_spike_times  # noqa: F401

__version__ = "0.1.0"


def list_standard_models():
    """Names of the standard cell types this backend simulates."""
    return [name for name, obj in globals().items()
            if isinstance(obj, type) and issubclass(obj, _StandardCellType)
            and obj is not _StandardCellType]
