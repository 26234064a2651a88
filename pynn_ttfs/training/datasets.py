"""Datasets and their encoding into first-spike times.

* Yin-Yang (Kriener, Göltz, Petrovici 2021): generated, no download. The generator draws
  from numpy's legacy ``RandomState(seed)`` in the same order as the published one, so the
  published splits come out exactly (class counts train 1681/1702/1617 for seed 42,
  validation 316/336/348 for seed 41, test 350/316/334 for seed 40).
* MNIST from the standard IDX files (``.gz`` or raw) in a directory the user names
  (argument, environment variable ``PYNN_TTFS_MNIST_DIR``, or torchvision's ``DIR/MNIST/raw``
  layout). Reference split: first 50000 training images train, last 10000 validate, the
  official 10000 test. The 16x16 variant centre-crops 24x24 and resizes to 16x16.

Encoding (times in units of tau_s): ``t = t_early + v * (t_late - t_early)`` with
``t_early = 0.15`` and ``t_late = 2.0``; MNIST values are inverted first (bright pixels spike
early); in the 16x16 variant pure-black pixels do not spike at all (``inf``).
"""
from __future__ import annotations

import functools
import gzip
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .recipe import _check

DATASET_NAMES = ("yinyang", "mnist16", "mnist")
T_EARLY = 0.15  # tau_s
T_LATE = 2.0  # tau_s
MNIST_ENV_VAR = "PYNN_TTFS_MNIST_DIR"

YINYANG_SPLITS = {"train": (5000, 42), "val": (1000, 41), "test": (1000, 40)}
YINYANG_CLASS_NAMES = ("yin", "yang", "dot")


@dataclass
class Split:
    """One split of a dataset.

    ``values``: (N, n_features) float64 in [0, 1] (already inverted for MNIST, so 0 = bright);
    ``times``: (N, n_features) float64 input spike times in tau_s units (``inf`` = no spike);
    ``labels``: (N,) int64.
    """

    values: np.ndarray
    times: np.ndarray
    labels: np.ndarray
    #: (height, width) when the features are the pixels of an image, row by row (MNIST);
    #: what shift augmentation needs
    image_shape: Optional[Tuple[int, int]] = None
    #: input time of an empty (black) pixel, tau_s: what a shift moves into the image
    blank_time: float = math.inf

    def __post_init__(self):
        # rows are samples in all three: a mismatch would index out of range mid-epoch
        if np.ndim(self.times) != 2 or np.ndim(self.values) != 2 or np.ndim(self.labels) != 1:
            raise ValueError(f"a Split needs values and times of shape (N, n_features) and labels "
                             f"of shape (N,), got {np.shape(self.values)}, {np.shape(self.times)}, "
                             f"{np.shape(self.labels)}")
        if not len(self.values) == len(self.times) == len(self.labels):
            raise ValueError(f"a Split's values, times and labels must hold the same number of "
                             f"samples, got {len(self.values)}, {len(self.times)} and {len(self.labels)}")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, n: Optional[int]) -> "Split":
        """The first ``n`` samples (all of them if n is None or larger)."""
        if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0):
            raise ValueError(f"subset size must be an integer >= 0 or None, got {n!r}")
        if n is None or n >= len(self):
            return self
        return Split(self.values[:n], self.times[:n], self.labels[:n], self.image_shape,
                     self.blank_time)

    def concat(self, other: "Split") -> "Split":
        """This split's samples followed by ``other``'s (same features and encoding)."""
        if self.times.shape[1:] != other.times.shape[1:] or self.image_shape != other.image_shape:
            raise ValueError(f"cannot join splits of {self.times.shape[1:]} and "
                             f"{other.times.shape[1:]} features")
        return Split(np.concatenate([self.values, other.values]),
                     np.concatenate([self.times, other.times]),
                     np.concatenate([self.labels, other.labels]), self.image_shape, self.blank_time)


@dataclass
class Dataset:
    name: str
    train: Split
    val: Split
    test: Split
    n_classes: int

    @property
    def n_inputs(self) -> int:
        return self.train.times.shape[1]

    def training_splits(self, train_on_val: bool = False) -> Tuple[Split, Optional[Split]]:
        """(the samples to train on, the validation split or None).

        ``train_on_val`` (the recipe field): train on the training and validation samples
        together (MNIST: all 60000 training images) and validate on nothing; the test
        split is never trained on."""
        if train_on_val:
            return self.train.concat(self.val), None
        return self.train, self.val


def encode_times(values: np.ndarray, t_early: float = T_EARLY, t_late: float = T_LATE,
                 silent: Optional[np.ndarray] = None) -> np.ndarray:
    """Linear time code ``t_early + v (t_late - t_early)`` (tau_s units); ``silent`` -> inf."""
    # finite: an infinite t_late made every time inf (Yin-Yang) or NaN (0 * inf, MNIST)
    _check("t_early", t_early, low=0.0)
    _check("t_late", t_late, low=t_early, low_open=True)
    times = t_early + np.asarray(values, dtype=np.float64) * (t_late - t_early)
    if silent is not None:
        times = np.where(silent, np.inf, times)
    return times


# --------------------------------------------------------------------------- Yin-Yang

def yinyang_class(x: float, y: float, r_small: float = 0.1, r_big: float = 0.5) -> int:
    """0 = yin, 1 = yang, 2 = dot, for a point inside the big circle."""
    d_right = np.sqrt((x - 1.5 * r_big) ** 2 + (y - r_big) ** 2)
    d_left = np.sqrt((x - 0.5 * r_big) ** 2 + (y - r_big) ** 2)
    if d_right < r_small or d_left < r_small:
        return 2
    is_class1 = (
        d_right <= r_small
        or (r_small < d_left <= 0.5 * r_big)
        or (y > r_big and d_right > 0.5 * r_big)
    )
    return int(is_class1)


def yinyang_points(size: int, seed: int, r_small: float = 0.1,
                   r_big: float = 0.5) -> Tuple[np.ndarray, np.ndarray]:
    """``size`` points (x, y) and labels, drawn as the published generator does.

    The random stream is consumed in the published order: one ``randint(3)`` for the target
    class of each sample, then ``rand(2)`` pairs until a point inside the big circle has
    that class (rejection sampling keeps the classes balanced).
    """
    if size < 0:
        raise ValueError(f"size must be >= 0, got {size}")
    rng = np.random.RandomState(seed)
    points = np.empty((size, 2))
    labels = np.empty(size, dtype=np.int64)
    for k in range(size):
        goal = rng.randint(3)
        while True:
            x, y = rng.rand(2) * 2.0 * r_big
            if np.sqrt((x - r_big) ** 2 + (y - r_big) ** 2) > r_big:
                continue
            if yinyang_class(x, y, r_small, r_big) == goal:
                break
        points[k] = (x, y)
        labels[k] = goal
    return points, labels


def yinyang_features(points: np.ndarray) -> np.ndarray:
    """(x, y, 1-x, 1-y): the mirrored coordinates make every point's mean input equal."""
    points = np.asarray(points, dtype=np.float64)
    return np.concatenate([points, 1.0 - points], axis=1)


@functools.lru_cache(maxsize=8)
def _yinyang_split_cached(size: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    points, labels = yinyang_points(size, seed)
    points.setflags(write=False)
    labels.setflags(write=False)
    return points, labels


def yinyang_split(size: int, seed: int, t_early: float = T_EARLY,
                  t_late: float = T_LATE) -> Split:
    points, labels = _yinyang_split_cached(size, seed)
    values = yinyang_features(points)
    return Split(values, encode_times(values, t_early, t_late), labels.copy())


def _checked_sizes(sizes: Optional[Dict[str, int]]) -> Dict[str, int]:
    """``sizes`` with its None entries dropped; a ValueError names a split that is not
    train/val/test or a size that is not a whole number >= 0."""
    checked = {}
    for name, size in (sizes or {}).items():
        if name not in ("train", "val", "test"):
            raise ValueError(f"sizes: unknown split {name!r}; the splits are 'train', 'val', 'test'")
        if size is None:
            continue
        if (isinstance(size, bool) or not isinstance(size, (int, float, np.integer))
                or not float(size).is_integer() or size < 0):
            raise ValueError(f"sizes[{name!r}] must be a whole number of samples >= 0, got {size!r}")
        checked[name] = int(size)
    return checked


def load_yinyang(t_early: float = T_EARLY, t_late: float = T_LATE,
                 sizes: Optional[Dict[str, int]] = None) -> Dataset:
    """The published Yin-Yang splits (train 5000 seed 42, val 1000 seed 41, test 1000 seed 40).

    ``sizes`` may shorten a split (the first N samples of the same stream, so the
    published data stay a prefix).
    """
    sizes = _checked_sizes(sizes)
    splits = {}
    for name, (size, seed) in YINYANG_SPLITS.items():
        size = sizes.get(name, size)
        splits[name] = yinyang_split(size, seed, t_early, t_late)
    return Dataset("yinyang", splits["train"], splits["val"], splits["test"], n_classes=3)


# --------------------------------------------------------------------------- MNIST

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MNIST_N_TRAIN = 50000  # the rest of the 60000 official training images validate


def read_idx(path: os.PathLike) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into a numpy array of its dtype."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    type_code, n_dims = data[2], data[3]
    if type_code not in dtypes:
        raise ValueError(f"{path}: unknown IDX data type 0x{type_code:02x}")
    shape = struct.unpack(f">{n_dims}I", data[4:4 + 4 * n_dims])
    dtype = np.dtype(dtypes[type_code])
    expected = int(np.prod(shape)) * dtype.itemsize
    body = data[4 + 4 * n_dims:]
    if len(body) != expected:
        raise ValueError(f"{path}: IDX header promises {expected} bytes of data, found {len(body)}")
    return np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: os.PathLike, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (``.gz`` -> compressed). Used by tests and tools."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as handle:
        handle.write(header + array.tobytes())


def mnist_search_dirs(data_dir: Optional[os.PathLike] = None) -> List[Path]:
    """Directories searched for the IDX files, in order: under ``data_dir`` if one is given
    (a mistyped one must not quietly fall back to another copy), else under
    ``$PYNN_TTFS_MNIST_DIR``."""
    roots = []
    env = os.environ.get(MNIST_ENV_VAR)
    if data_dir is not None:
        roots.append(Path(data_dir))
    elif env:
        roots.append(Path(env))
    dirs = []
    for root in roots:
        for candidate in (root, root / "MNIST" / "raw", root / "raw"):
            if candidate not in dirs:
                dirs.append(candidate)
    return dirs


def find_mnist_files(data_dir: Optional[os.PathLike] = None) -> Dict[str, Path]:
    """Locate the four IDX files (each ``.gz`` or raw); FileNotFoundError says what and where."""
    dirs = mnist_search_dirs(data_dir)
    if not dirs:
        raise FileNotFoundError(
            "MNIST needs its IDX files (" + ", ".join(f + "[.gz]" for f in MNIST_FILES.values())
            + f"): pass a directory (--data-dir / data_dir=) or set {MNIST_ENV_VAR}"
        )
    for directory in dirs:
        found = {}
        for key, stem in MNIST_FILES.items():
            for name in (stem + ".gz", stem):
                if (directory / name).is_file():
                    found[key] = directory / name
                    break
        if len(found) == len(MNIST_FILES):
            return found
    missing_report = []
    for directory in dirs:
        missing = [stem for stem in MNIST_FILES.values()
                   if not (directory / stem).is_file() and not (directory / (stem + ".gz")).is_file()]
        missing_report.append(f"{directory}: missing {', '.join(missing)}")
    raise FileNotFoundError(
        "MNIST IDX files not found (each may be .gz or uncompressed); searched "
        + "; ".join(missing_report)
    )


@functools.lru_cache(maxsize=4)
def _load_mnist_raw(files_key: Tuple[Tuple[str, str], ...]) -> Dict[str, np.ndarray]:
    files = dict(files_key)
    raw = {key: read_idx(files[key]) for key in MNIST_FILES}
    for kind in ("train", "test"):
        images, labels = raw[f"{kind}_images"], raw[f"{kind}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"MNIST {kind} files have inconsistent shapes "
                             f"{images.shape} and {labels.shape}")
    return raw


def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) separable resampling weights: bilinear (triangle) filter widened by
    the scale factor when shrinking, i.e. antialiased, rows normalised to 1."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    matrix = np.zeros((n_out, n_in))
    pixel_centres = np.arange(n_in) + 0.5
    for i in range(n_out):
        centre = (i + 0.5) * scale
        weights = np.clip(1.0 - np.abs(pixel_centres - centre) / support, 0.0, None)
        matrix[i] = weights / weights.sum()
    return matrix


def downscale_mnist16(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) values in [0, 1] -> centre crop 24x24 -> (N, 16, 16) in [0, 1]."""
    images = np.asarray(images, dtype=np.float64)
    if images.shape[1:] != (28, 28):
        raise ValueError(f"images must have shape (N, 28, 28), got {images.shape}")
    cropped = images[:, 2:26, 2:26]
    resize = _resize_matrix(24, 16)
    small = np.matmul(np.matmul(resize, cropped), resize.T)
    # weights are non-negative and sum to 1: a pixel is exactly 0 only when its whole
    # footprint is black, so "pure black" survives the resize exactly
    return np.clip(small, 0.0, 1.0)


def _mnist_split(images: np.ndarray, labels: np.ndarray, small: bool, t_early: float,
                 t_late: float) -> Split:
    brightness = images.astype(np.float64) / 255.0
    if small:
        brightness = downscale_mnist16(brightness)
    side = 16 if small else 28
    brightness = brightness.reshape(len(brightness), side * side)  # also 0 images (sizes)
    values = 1.0 - brightness  # inverted: bright pixels spike early
    silent = (brightness <= 0.0) if small else None
    times = encode_times(values, t_early, t_late, silent=silent)
    return Split(values, times, labels.astype(np.int64), image_shape=(side, side),
                 blank_time=math.inf if small else t_late)


def load_mnist(data_dir: Optional[os.PathLike] = None, small: bool = False,
               t_early: float = T_EARLY, t_late: float = T_LATE,
               sizes: Optional[Dict[str, int]] = None) -> Dataset:
    """MNIST (28x28, or 16x16 if ``small``), reference split 50000/10000/10000.

    ``sizes`` may shorten splits (first N of each).
    """
    files = find_mnist_files(data_dir)
    raw = _load_mnist_raw(tuple(sorted((k, str(v)) for k, v in files.items())))
    train_images, train_labels = raw["train_images"], raw["train_labels"]
    n_train = min(MNIST_N_TRAIN, len(train_images))
    if len(train_images) > MNIST_N_TRAIN:
        val_images, val_labels = train_images[n_train:], train_labels[n_train:]
    else:  # tiny files (tests): validate on the training images
        val_images, val_labels = train_images, train_labels
    parts = {
        "train": (train_images[:n_train], train_labels[:n_train]),
        "val": (val_images, val_labels),
        "test": (raw["test_images"], raw["test_labels"]),
    }
    sizes = _checked_sizes(sizes)
    splits = {}
    for name, (images, labels) in parts.items():
        if name in sizes:
            images, labels = images[:sizes[name]], labels[:sizes[name]]
        splits[name] = _mnist_split(images, labels, small, t_early, t_late)
    return Dataset("mnist16" if small else "mnist", splits["train"], splits["val"],
                   splits["test"], n_classes=10)


def load_dataset(name: str, data_dir: Optional[os.PathLike] = None,
                 sizes: Optional[Dict[str, int]] = None, t_early: float = T_EARLY,
                 t_late: float = T_LATE) -> Dataset:
    """``name`` in ``DATASET_NAMES``."""
    if name == "yinyang":
        return load_yinyang(t_early, t_late, sizes)
    if name == "mnist16":
        return load_mnist(data_dir, small=True, t_early=t_early, t_late=t_late, sizes=sizes)
    if name == "mnist":
        return load_mnist(data_dir, small=False, t_early=t_early, t_late=t_late, sizes=sizes)
    raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DATASET_NAMES)}")


def class_counts(labels: Sequence[int], n_classes: int) -> List[int]:
    return np.bincount(np.asarray(labels), minlength=n_classes).tolist()
