"""PyNN's connectors, with the connection list checked where PyNN's own code fails with a
numpy message that names nothing (rows of different lengths, a flat list, a file whose
rows differ)."""
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
