"""PyNN's connectors, with the connection list checked where PyNN's own code fails with a
numpy message that names nothing (rows of different lengths, a flat list, a file whose
rows differ), fixed-number connectors that refuse an ``n`` they cannot draw without
replacement (PyNN adds duplicate synapses), and OneToOneConnector working around a numpy 2
failure of PyNN's for one-cell populations."""
from __future__ import annotations

import numpy as np
from pyNN import connectors, errors


class FromListConnector(connectors.FromListConnector):
    __doc__ = connectors.FromListConnector.__doc__

    def __init__(self, conn_list, column_names=None, location_selector=None, safe=True,
                 callback=None):
        if not isinstance(conn_list, np.ndarray):
            rows = list(conn_list)
            lengths = set()
            for number, row in enumerate(rows):
                if np.ndim(row) != 1:
                    raise errors.ConnectionError(
                        f"conn_list row {number} must be a sequence (pre, post[, values...]), "
                        f"got {row!r}")
                lengths.add(len(row))
            if len(lengths) > 1:
                raise errors.ConnectionError(
                    f"conn_list rows must all have the same length (pre, post, then one "
                    f"value per column name), got lengths {sorted(lengths)}")
            if lengths and min(lengths) < 2:
                raise errors.ConnectionError("conn_list rows need at least (pre, post)")
        elif conn_list.size and conn_list.ndim != 2:
            raise errors.ConnectionError(
                f"conn_list must be a 2-D array (one row per connection), got shape {conn_list.shape}")
        super().__init__(conn_list, column_names=column_names,
                         location_selector=location_selector, safe=safe, callback=callback)


class _CheckedFile:
    """A PyNN connection file whose read() names the file when its rows do not parse."""

    def __init__(self, file):
        self._file = file

    def __getattr__(self, name):
        return getattr(self._file, name)

    def read(self):
        try:
            rows = self._file.read()
        except ValueError as error:  # numpy: ragged rows, a word where a number belongs
            raise errors.ConnectionError(
                f"connection file {getattr(self._file, 'name', self._file)!r} must hold one row "
                f"per connection (pre, post, then one number per column), all rows the same "
                f"length: {error}") from error
        rows = np.asarray(rows)
        if rows.size and rows.ndim == 1:
            rows = rows.reshape(1, -1)  # a file with a single connection
        return rows


class FromFileConnector(connectors.FromFileConnector):
    __doc__ = connectors.FromFileConnector.__doc__

    def __init__(self, file, distributed=False, location_selector=None, safe=True, callback=None):
        super().__init__(file, distributed=distributed, location_selector=location_selector,
                         safe=safe, callback=callback)
        self.file = _CheckedFile(self.file)


def _whole_columns(connection_map_generator):
    """PyNN yields a column of a map over a one-cell pre population as a 0-d numpy bool,
    and its _standard_connect calls nonzero() on it, which numpy 2 refuses. A scalar
    column holds one value for every pre cell: True becomes PyNN's "connect all"."""
    def generator(mask=None):
        for column in connection_map_generator(mask):
            if isinstance(column, np.bool_) and column:
                column = True
            yield column
    return generator


class OneToOneConnector(connectors.OneToOneConnector):
    __doc__ = connectors.OneToOneConnector.__doc__

    def _standard_connect(self, projection, connection_map_generator, distance_map=None):
        super()._standard_connect(projection, _whole_columns(connection_map_generator),
                                  distance_map)


def _checked_n(connector, n, pool: int, side: str, excluded: bool = False):
    """``n`` (given, or one draw of a RandomDistribution) as an int >= 0. Without
    replacement an ``n`` above the ``pool`` of cells is PyNN's documented behaviour (every
    cell once, as often as it fits, then a random remainder); only an empty pool fails."""
    name = type(connector).__name__
    given = (f"n={connector.n}" if isinstance(connector.n, int) else
             f"n drawn from RandomDistribution({connector.n.name!r}, {connector.n.parameters}) "
             f"= {n}")
    if not (np.ndim(n) == 0 and float(n) == np.floor(float(n)) and float(n) >= 0):
        raise errors.ConnectionError(f"{name}: {given}; n must be a whole number >= 0 "
                                     f"(a RandomDistribution of integers)")
    n = int(n)
    if n > 0 and pool == 0:
        raise errors.ConnectionError(
            f"{name}: {given}, but the {side} population has no cell to connect"
            f"{' other than the cell itself (allow_self_connections=False)' if excluded else ''}")
    return n


def _draw_without_replacement(rng, cells: np.ndarray, n: int) -> np.ndarray:
    """``n`` of ``cells`` as PyNN draws them without replacement: all of them as many
    times as they fit into n, then a random remainder (the same rng draws as PyNN's code,
    which fails for n = 0)."""
    if n == 0:
        return np.zeros(0, dtype=int)
    full_sets, remainder = divmod(n, cells.size)
    sets = [cells] * full_sets
    if remainder:
        sets.append(rng.permutation(cells)[:remainder])
    return np.hstack(sets)


def _self_excluded(connector, projection) -> bool:
    return not connector.allow_self_connections and projection.pre == projection.post


class FixedNumberPreConnector(connectors.FixedNumberPreConnector):
    __doc__ = connectors.FixedNumberPreConnector.__doc__

    def connect(self, projection):
        self._excluded = _self_excluded(self, projection)
        self._pool = projection.pre.size - (1 if self._excluded else 0)
        if isinstance(self.n, int):  # before any connection is made
            _checked_n(self, self.n, self._pool, "pre", self._excluded)
        if self.with_replacement:
            return super().connect(projection)

        def build_source_masks(mask=None):
            all_cells = np.arange(projection.pre.size)
            for i, n in enumerate(self._get_num_pre(projection.post.size, mask)):
                cells = all_cells[all_cells != i] if self._excluded else all_cells
                yield _draw_without_replacement(self.rng, cells, n)

        self._standard_connect(projection, build_source_masks)

    def _get_num_pre(self, size, mask=None):
        return [_checked_n(self, n, self._pool, "pre", self._excluded)
                for n in super()._get_num_pre(size, mask)]


class FixedNumberPostConnector(connectors.FixedNumberPostConnector):
    __doc__ = connectors.FixedNumberPostConnector.__doc__

    def connect(self, projection):
        # PyNN's loop, with n checked, n = 0 allowed, and the per-column lists selected
        # without np.array() (numpy 2 refuses ragged lists: an RNG with parallel_safe=False)
        excluded = _self_excluded(self, projection)
        pool = projection.post.size - (1 if excluded else 0)
        if isinstance(self.n, int):
            _checked_n(self, self.n, pool, "post", excluded)
        connections = [[] for _ in range(projection.post.size)]
        all_cells = np.arange(projection.post.size)
        for source_index in range(projection.pre.size):
            n = _checked_n(self, self._get_num_post(), pool, "post", excluded)
            if self.with_replacement:
                if excluded:
                    targets = self._rng_uniform_int_exclude(n, projection.post.size, source_index)
                else:
                    targets = self.rng.next(
                        n, 'uniform_int', {"low": 0, "high": projection.post.size}, mask=None)
            else:
                cells = all_cells[all_cells != source_index] if excluded else all_cells
                targets = _draw_without_replacement(self.rng, cells, n)
            for target_index in np.atleast_1d(targets):
                connections[target_index].append(source_index)

        def build_source_masks(mask=None):
            keep = np.ones(len(connections), bool) if mask is None else np.asarray(mask, bool)
            return [np.array(x, dtype=int) for x, k in zip(connections, keep) if k]
        self._standard_connect(projection, build_source_masks)
