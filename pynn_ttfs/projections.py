"""Projection of the pynn_ttfs backend: connections held as four parallel numpy arrays
(pre index, post index, weight in nA, delay in ms), grown geometrically so that large
connectors (AllToAll 784 x 350) build quickly.

Weights are signed and used as given on either receptor type (tau_syn_E == tau_syn_I, so
the receptor does not change the dynamics): one projection may mix signs, and PyNN's
convention (inhibitory receptor, negative weights) works unchanged. A delay shifts the
arrival time of the presynaptic spike exactly. Any delay >= 0 ms is simulated (an exact,
event-based substrate has no communication step, so ``min_delay`` is only the default
delay); a ``max_delay`` given to ``setup()`` is enforced.
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np
from pyNN import common, errors
from pyNN.space import Space

from . import simulator
from .backends.graph import ProjectionSpec
from .standardmodels import IF_curr_exp_ttfs, StaticSynapse

_MULTI_SYNAPSE_AT = {"sum": (np.add.at, 0.0), "min": (np.minimum.at, np.inf),
                     "max": (np.maximum.at, -np.inf)}


def _celltypes(neurons):
    if isinstance(neurons, common.Assembly):
        return [p.celltype for p in neurons.populations]
    return [neurons.celltype]


def _check_current(neurons, role: str) -> None:
    """Cells of an earlier setup() would be wired to the new cells that reuse their IDs."""
    parts = neurons.populations if isinstance(neurons, common.Assembly) else [neurons]
    current = simulator.state.populations
    for part in parts:
        root = part.grandparent if isinstance(part, common.PopulationView) else part
        if not any(root is pop for pop in current):
            raise errors.ConnectionError(
                f"{role} population {root.label!r} belongs to an earlier setup() (or to "
                f"another simulator): its cells no longer exist; create it again after the "
                f"last setup()")


def _check_synapse_arrays(synapse_type, pre, post) -> None:
    """Weights or delays given as arrays are (n_pre, n_post) matrices, as in PyNN; other
    shapes failed deep inside lazyarray with an IndexError that names nothing."""
    if synapse_type is None:
        return
    for name in ("weight", "delay"):
        if name not in synapse_type.parameter_space.keys():
            continue
        base = synapse_type.parameter_space[name].base_value
        if isinstance(base, (list, tuple)):
            base = np.asarray(base)
        if isinstance(base, np.ndarray) and base.ndim > 0 and base.shape != (pre.size, post.size):
            raise errors.ConnectionError(
                f"{name} given as an array must have shape (n_pre, n_post) = "
                f"({pre.size}, {post.size}), one value per (pre, post) pair, got {base.shape}")


def _check_weight(values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(values)):
        raise errors.ConnectionError(f"weight must be a finite number (nA), got {values[~np.isfinite(values)].ravel()[:5]}")
    return values


def _check_delay(values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    bad = ~np.isfinite(values) | (values < 0)
    if np.any(bad):
        raise errors.ConnectionError(f"delay must be finite and >= 0 ms, got {values[bad].ravel()[:5]}")
    max_delay = simulator.state.max_delay  # inf unless setup() was given one
    if np.any(values > max_delay):
        raise errors.ConnectionError(f"delay must be <= max_delay={max_delay} ms (set in "
                                     f"setup()), got {values[values > max_delay].ravel()[:5]}")
    return values


class Connection(common.Connection):
    """A view of one connection of a projection; setting weight/delay writes through."""

    def __init__(self, projection, position: int):
        self._projection = projection
        self._position = position

    @property
    def presynaptic_index(self) -> int:
        return int(self._projection._pre_index[self._position])

    @property
    def postsynaptic_index(self) -> int:
        return int(self._projection._post_index[self._position])

    @property
    def weight(self) -> float:
        return float(self._projection._weight[self._position])

    @weight.setter
    def weight(self, value):
        self._projection._weight[self._position] = _check_weight(value)

    @property
    def delay(self) -> float:
        return float(self._projection._delay[self._position])

    @delay.setter
    def delay(self, value):
        self._projection._delay[self._position] = _check_delay(value)

    def as_tuple(self, *attribute_names):
        return tuple(getattr(self, name) for name in attribute_names)


def _check_list_indices(connector, n_pre: int, n_post: int) -> None:
    """A FromListConnector's (FromFileConnector's) indices must name neurons. PyNN treats
    a target outside the post population as living on another MPI process and drops it,
    which in one process silently loses a connection the user asked for."""
    conn_list = getattr(connector, "conn_list", None)
    if conn_list is None or not len(conn_list):
        return
    conn_list = np.asarray(conn_list, dtype=float)
    for column, side, population, size in ((0, "presynaptic", "pre", n_pre),
                                           (1, "postsynaptic", "post", n_post)):
        indices = conn_list[:, column]
        bad = indices[(indices < 0) | (indices >= size) | (indices != np.round(indices))]
        if bad.size:
            raise errors.ConnectionError(
                f"{side} index {bad[0]:g} in the connection list is outside [0, {size - 1}] "
                f"(the {population} population's size is {size})")


_ATTRIBUTES = ("weight", "delay", "weights", "delays", "presynaptic_index",
               "postsynaptic_index")


class Projection(common.Projection):
    __doc__ = common.Projection.__doc__
    _simulator = simulator
    _static_synapse_class = StaticSynapse

    def __init__(self, presynaptic_population, postsynaptic_population, connector,
                 synapse_type=None, source=None, receptor_type=None, space=Space(), label=None):
        _check_current(presynaptic_population, "presynaptic")
        _check_current(postsynaptic_population, "postsynaptic")
        _check_synapse_arrays(synapse_type, presynaptic_population, postsynaptic_population)
        for celltype in _celltypes(postsynaptic_population):
            if not isinstance(celltype, IF_curr_exp_ttfs):
                raise errors.ConnectionError(
                    f"the postsynaptic cells of a projection must be IF_curr_exp_ttfs, "
                    f"got {celltype.__class__.__name__}")
        if synapse_type is not None and not isinstance(synapse_type, StaticSynapse):
            raise errors.ConnectionError(
                f"pynn_ttfs supports only StaticSynapse, got {synapse_type.__class__.__name__}")
        common.Projection.__init__(self, presynaptic_population, postsynaptic_population,
                                   connector, synapse_type, source, receptor_type, space, label)
        self._n = 0
        self._pre_index = np.zeros(0, dtype=np.int64)
        self._post_index = np.zeros(0, dtype=np.int64)
        self._weight = np.zeros(0)
        self._delay = np.zeros(0)
        _check_list_indices(connector, self.pre.size, self.post.size)
        connector.connect(self)
        self._shrink()
        # connectors add connections post by post; PyNN reads a 1-D list of values given
        # to set() in row-major (pre, post) order, so the connections are kept in that
        # order (a pair's multiple synapses in creation order): get(format="list") then
        # round-trips through set() as on NEST
        order = np.lexsort((self._post_index, self._pre_index))
        for name in ("_pre_index", "_post_index", "_weight", "_delay"):
            setattr(self, name, getattr(self, name)[order])
        simulator.state.register_projection(self)

    # -- storage ----------------------------------------------------------------------
    def _reserve(self, extra: int) -> None:
        need = self._n + extra
        if need > self._pre_index.size:
            capacity = max(need, 2 * self._pre_index.size, 64)
            for name in ("_pre_index", "_post_index", "_weight", "_delay"):
                old = getattr(self, name)
                new = np.zeros(capacity, dtype=old.dtype)
                new[:self._n] = old[:self._n]
                setattr(self, name, new)

    def _shrink(self) -> None:
        for name in ("_pre_index", "_post_index", "_weight", "_delay"):
            setattr(self, name, getattr(self, name)[:self._n].copy())

    def _convergent_connect(self, presynaptic_indices, postsynaptic_index,
                            location_selector=None, **connection_parameters):
        if location_selector is not None:
            raise NotImplementedError("pynn_ttfs neurons are single-compartment (no location_selector)")
        if len(presynaptic_indices) and isinstance(presynaptic_indices[0], common.IDMixin):
            presynaptic_indices = self.pre.id_to_index(np.asarray(presynaptic_indices, dtype=int))
        if isinstance(postsynaptic_index, common.IDMixin):
            postsynaptic_index = self.post.id_to_index(int(postsynaptic_index))
        pre = np.asarray(presynaptic_indices, dtype=np.int64).ravel()
        n = pre.size
        if n == 0:
            return
        # PyNN checks only the upper end; a negative index would wrap to a real neuron
        bad = pre[(pre < 0) | (pre >= self.pre.size)]
        if bad.size:
            raise errors.ConnectionError(f"presynaptic index {int(bad[0])} is outside "
                                         f"[0, {self.pre.size - 1}] (the pre population's size "
                                         f"is {self.pre.size})")
        if not 0 <= int(postsynaptic_index) < self.post.size:
            raise errors.ConnectionError(f"postsynaptic index {int(postsynaptic_index)} is outside "
                                         f"[0, {self.post.size - 1}] (the post population's "
                                         f"size is {self.post.size})")
        weight = _check_weight(connection_parameters.get("weight", 0.0))
        delay = connection_parameters.get("delay")
        delay = _check_delay(simulator.state.min_delay if delay is None else delay)
        self._reserve(n)
        sl = slice(self._n, self._n + n)
        self._pre_index[sl] = pre
        self._post_index[sl] = int(postsynaptic_index)
        self._weight[sl] = np.broadcast_to(weight, (n,))
        self._delay[sl] = np.broadcast_to(delay, (n,))
        self._n += n
        unknown = set(connection_parameters) - {"weight", "delay"}
        if unknown:
            raise errors.ConnectionError(f"StaticSynapse has no parameters {sorted(unknown)}")

    def __len__(self):
        return self._n

    def __getitem__(self, i):
        if isinstance(i, (int, np.integer)):
            if not -self._n <= i < self._n:
                raise IndexError(f"connection index {i} out of range for {self._n} connections")
            return Connection(self, int(i) % self._n)
        return [Connection(self, int(j)) for j in np.arange(self._n)[i]]

    @property
    def connections(self) -> List[Connection]:
        return [Connection(self, j) for j in range(self._n)]

    def _arrays(self) -> Dict[str, np.ndarray]:
        n = self._n
        return {"presynaptic_index": self._pre_index[:n], "postsynaptic_index": self._post_index[:n],
                "weight": self._weight[:n], "delay": self._delay[:n]}

    # -- get / set --------------------------------------------------------------------
    def get(self, attribute_names, format, gather=True, with_address=True,
            multiple_synapses="sum"):
        names = [attribute_names] if isinstance(attribute_names, str) else list(attribute_names)
        for name in names:  # PyNN's translation fails with a bare KeyError
            if name not in _ATTRIBUTES:
                raise errors.NonExistentParameterError(name, "StaticSynapse", ["weight", "delay"])
        return super().get(attribute_names, format, gather=gather, with_address=with_address,
                           multiple_synapses=multiple_synapses)

    def _get_attributes_as_list(self, names):
        arrays = self._arrays()
        columns = []
        for name in names:
            key = {"weights": "weight", "delays": "delay"}.get(name, name)
            if key not in arrays:
                raise errors.NonExistentParameterError(name, "StaticSynapse", ["weight", "delay"])
            columns.append(arrays[key].tolist())
        return list(zip(*columns))

    def _get_attributes_as_arrays(self, names, multiple_synapses="sum"):
        arrays = self._arrays()
        pre, post = arrays["presynaptic_index"], arrays["postsynaptic_index"]
        shape = (self.pre.size, self.post.size)
        absent = np.ones(shape, bool)
        absent[pre, post] = False
        result = []
        for name in names:
            key = {"weights": "weight", "delays": "delay"}.get(name, name)
            if key not in ("weight", "delay"):
                raise errors.NonExistentParameterError(name, "StaticSynapse", ["weight", "delay"])
            values = arrays[key]
            if multiple_synapses in _MULTI_SYNAPSE_AT:
                accumulate, start = _MULTI_SYNAPSE_AT[multiple_synapses]
                out = np.full(shape, start)
                accumulate(out, (pre, post), values)
            elif multiple_synapses in ("first", "last"):
                # explicit first/last occurrence of every (pre, post) pair, in creation order
                linear = pre * shape[1] + post
                if multiple_synapses == "last":
                    linear, values = linear[::-1], values[::-1]
                unique, position = np.unique(linear, return_index=True)
                out = np.zeros(shape)
                out.flat[unique] = values[position]
            else:
                raise ValueError("multiple_synapses must be one of 'sum', 'min', 'max', 'first', "
                                 f"'last', got {multiple_synapses!r}")
            out[absent] = np.nan
            result.append(out)
        return result

    def _value_list_to_array(self, attributes):
        """A 1-D list of values for set(): one per connected (pre, post) pair, in the
        order of ``get(format="list")`` (row-major), as PyNN reads it; checked here, where
        PyNN would fail with a bare numpy indexing error."""
        n_pairs = None
        for name, value in attributes.items():
            if isinstance(value, list) or (isinstance(value, np.ndarray) and value.ndim == 1):
                if n_pairs is None:
                    n_pairs = int(np.unique(self._pre_index * self.post.size + self._post_index).size)
                if len(value) != n_pairs:
                    multiple = (f" ({self._n} connections: a pair's multiple synapses all take "
                                "its one value)" if self._n != n_pairs else "")
                    raise ValueError(f"{name}: a list of values needs one per connected "
                                     f"(pre, post) pair, {n_pairs}{multiple}, in the order of "
                                     f"get(format='list'); got {len(value)}")
        return super()._value_list_to_array(attributes)

    def _set_attributes(self, parameter_space):
        arrays = self._arrays()
        pre, post = arrays["presynaptic_index"], arrays["postsynaptic_index"]
        updates = {}
        for name in parameter_space.keys():
            if name not in ("weight", "delay"):
                raise errors.NonExistentParameterError(name, "StaticSynapse", ["weight", "delay"])
            larr = parameter_space[name]
            try:
                if larr.is_homogeneous:
                    value = np.asarray(larr.evaluate(simplify=True), dtype=float)
                else:
                    # a RandomDistribution on a 1 x 1 projection evaluates to shape (1,)
                    value = np.broadcast_to(np.asarray(larr.evaluate(simplify=False), dtype=float),
                                            (self.pre.size, self.post.size))[pre, post]
            except (ValueError, TypeError) as error:  # lazyarray's message names nothing
                unit = "nA" if name == "weight" else "ms"
                raise errors.InvalidParameterValueError(
                    f"{name} must be a number ({unit}), a RandomDistribution, an (n_pre, n_post) = "
                    f"({self.pre.size}, {self.post.size}) array, a function of distance or a "
                    f"list with one value per connected pair; got {larr.base_value!r} "
                    f"({error})") from error
            updates[name] = _check_weight(value) if name == "weight" else _check_delay(value)
        for name, value in updates.items():  # all validated before any is written
            target = self._weight if name == "weight" else self._delay
            target[:self._n] = np.broadcast_to(value, (self._n,))

    # -- what the simulator needs -----------------------------------------------------
    def _projection_specs(self, labels) -> List[ProjectionSpec]:
        """This projection as graph projections between top-level populations."""
        state = simulator.state
        arrays = self._arrays()
        pre_pos, pre_local = state.locate_ids(self.pre.all_cells.astype(np.int64)[arrays["presynaptic_index"]])
        post_pos, post_local = state.locate_ids(self.post.all_cells.astype(np.int64)[arrays["postsynaptic_index"]])
        specs = []
        pairs = np.unique(np.stack([pre_pos, post_pos], axis=1), axis=0) if self._n else []
        for a, b in pairs:
            sel = (pre_pos == a) & (post_pos == b)
            pre_pop, post_pop = state.populations[a], state.populations[b]
            specs.append(ProjectionSpec(
                label=str(self.label), pre=labels[pre_pop], post=labels[post_pop],
                pre_index=pre_local[sel].astype(np.int64), post_index=post_local[sel].astype(np.int64),
                weight=arrays["weight"][sel].astype(float), delay=arrays["delay"][sel].astype(float),
            ))
        return specs
