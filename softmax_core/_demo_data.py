"""The data sets of ``python -m softmax_core``, all available offline.

Design: each loader returns a :class:`DemoData` with a train/test split whose
features are standardized on the training part (StandardScaler), so the
three classifiers of the comparison see the same well-scaled problem.

* ``digits``: scikit-learn's bundled 8x8 digits (1797 samples, 64 features,
  10 classes), split 75/25, stratified, fixed seed.
* ``mnist1d``: MNIST-1D (40 features, 10 classes) from the ``mnist1d``
  package, which is not a dependency.  The package's ``get_dataset``
  downloads a pickle; this loader never does: it *generates* the data set
  with ``make_dataset`` and the package's default arguments (5000 samples,
  seed 42, its own 80/20 split; several seconds).  Without the package,
  :class:`DatasetUnavailable` says how to get it.
* ``synthetic``: ``sklearn.datasets.make_classification`` of a chosen size
  (one cluster per class, half of the features informative), split 75/25.

``quick=True`` shrinks what is not chosen explicitly: 1000 MNIST-1D samples
instead of 5000, a 2000 x 20 synthetic problem with 5 classes instead of
20000 x 100 with 10.
"""

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["DATASETS", "DatasetUnavailable", "DemoData", "load_dataset", "mnist1d_available"]

DATASETS = ("digits", "mnist1d", "synthetic")
SYNTHETIC_DEFAULT = {"n_samples": 20_000, "n_features": 100, "n_classes": 10}
SYNTHETIC_QUICK = {"n_samples": 2_000, "n_features": 20, "n_classes": 5}
MNIST1D_QUICK_SAMPLES = 1_000


class DatasetUnavailable(RuntimeError):
    """A data set that cannot be had here (its package is not installed)."""


@dataclass
class DemoData:
    """A standardized train/test split and a one-line description of it."""

    name: str
    description: str
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray

    def summary(self):
        """The sizes of the problem as a JSON-ready dict."""
        return {
            "name": self.name,
            "description": self.description,
            "n_train": int(self.X_train.shape[0]),
            "n_test": int(self.X_test.shape[0]),
            "n_features": int(self.X_train.shape[1]),
            "n_classes": int(np.unique(np.concatenate([self.y_train, self.y_test])).size),
        }


def mnist1d_available():
    """Return None if MNIST-1D can be generated here, else the reason it cannot."""
    try:
        import mnist1d.data  # noqa: F401  (imports requests as well)
    except ImportError as exc:
        return (f"the MNIST-1D data set needs the mnist1d package, which is not "
                f"installed ({exc}); install it with `pip install mnist1d` (it is in "
                f"softmax-core's [bench] extra), or choose --dataset digits or synthetic")
    return None


def _split(X, y, random_state):
    from sklearn.model_selection import train_test_split

    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=random_state)


def _standardized(name, description, X_train, X_test, y_train, y_test):
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(X_train)
    return DemoData(name, description, scaler.transform(X_train), scaler.transform(X_test),
                    np.asarray(y_train), np.asarray(y_test))


def _digits(random_state):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return _standardized("digits", "scikit-learn's bundled 8x8 handwritten digits",
                         *_split(X, y, random_state))


def _mnist1d(n_samples):
    reason = mnist1d_available()
    if reason is not None:
        raise DatasetUnavailable(reason)
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    if n_samples is not None:
        args.num_samples = n_samples
    # make_dataset seeds NumPy's legacy global generator: leave it as it was
    state = np.random.get_state()  # noqa: NPY002
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(state)  # noqa: NPY002
    return _standardized("mnist1d",
                         f"MNIST-1D, {args.num_samples} samples generated locally "
                         f"(mnist1d.make_dataset, seed {args.seed})",
                         data["x"], data["x_test"], data["y"], data["y_test"])


def check_synthetic_size(n_samples, n_features, n_classes):
    """Raise ValueError with a readable message for an impossible synthetic size."""
    if n_classes < 2:
        raise ValueError(f"a classification problem needs at least 2 classes, not {n_classes}")
    if n_samples < 4 * n_classes:
        raise ValueError(f"{n_samples} samples are too few for {n_classes} classes: the "
                         f"stratified 75/25 split needs at least {4 * n_classes}")
    needed = max(1, math.ceil(math.log2(n_classes)))
    if n_features < needed:
        raise ValueError(f"{n_classes} classes need at least {needed} features "
                         f"(make_classification puts one class per corner of a hypercube "
                         f"in the informative features), not {n_features}")


def _synthetic(n_samples, n_features, n_classes, random_state):
    from sklearn.datasets import make_classification

    check_synthetic_size(n_samples, n_features, n_classes)
    n_informative = max(math.ceil(math.log2(n_classes)), n_features // 2)
    X, y = make_classification(n_samples=n_samples, n_features=n_features,
                               n_informative=n_informative, n_redundant=0,
                               n_classes=n_classes, n_clusters_per_class=1,
                               random_state=random_state)
    return _standardized("synthetic",
                         f"make_classification({n_samples} x {n_features}, {n_classes} classes, "
                         f"{n_informative} informative features)",
                         *_split(X, y, random_state))


def load_dataset(name="digits", *, n_samples=None, n_features=None, n_classes=None,
                 quick=False, random_state=0):
    """Return the standardized train/test split of one demo data set.

    Parameters
    ----------
    name : {"digits", "mnist1d", "synthetic"}, default="digits"
        Which data set (see the module docstring).
    n_samples, n_features, n_classes : int, optional
        The size of the synthetic problem (``n_samples`` also sets how many
        MNIST-1D samples are generated); the defaults depend on ``quick``.
    quick : bool, default=False
        Smaller defaults, for a run of a few seconds.
    random_state : int, default=0
        Seed of the split and of the synthetic problem.

    Returns
    -------
    data : DemoData
        The split, standardized on its training part.

    Raises
    ------
    DatasetUnavailable
        For ``"mnist1d"`` when the ``mnist1d`` package is not installed.
    ValueError
        For an unknown name or an impossible synthetic size.

    Examples
    --------
    >>> from softmax_core._demo_data import load_dataset
    >>> data = load_dataset("synthetic", n_samples=400, n_features=6, n_classes=3)
    >>> data.summary()["n_train"], data.summary()["n_test"], data.summary()["n_classes"]
    (300, 100, 3)
    """
    if name == "digits":
        return _digits(random_state)
    if name == "mnist1d":
        return _mnist1d(n_samples if n_samples is not None
                        else (MNIST1D_QUICK_SAMPLES if quick else None))
    if name == "synthetic":
        size = dict(SYNTHETIC_QUICK if quick else SYNTHETIC_DEFAULT)
        for key, value in (("n_samples", n_samples), ("n_features", n_features),
                           ("n_classes", n_classes)):
            if value is not None:
                size[key] = value
        return _synthetic(random_state=random_state, **size)
    raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
