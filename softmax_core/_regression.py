"""``SoftmaxRegression``: a scikit-learn multinomial classifier trained by minibatch SGD.

Design: the estimator validates and encodes its input with scikit-learn's
helpers, then hands the arrays to the optimizer in ``_sgd.py``.  NumPy input
(dense or CSR) runs in NumPy on the compiled loss kernel and BLAS; with
``sklearn.set_config(array_api_dispatch=True)`` any other array-API input
(torch, CuPy, array_api_strict) is trained and predicted in its own namespace
and on its device, and the fitted arrays live there too.  Namespaces come from
``sklearn.utils._array_api.get_namespace`` only.  Dask input goes to
``_dask_fit.py`` (out-of-core training) and ``_dask_predict.py`` (lazy
predictions) before any validation that would compute it.

Two classes: the optimizer always trains the multinomial model with one row of
weights per class, ``W = [w0, w1]``.  As in scikit-learn's linear classifiers
``coef_`` then has one row, ``coef_ = w1 - w0`` (``intercept_`` likewise): the
logit difference, whose sign picks ``classes_[1]`` and whose sigmoid is the
probability of ``classes_[1]`` -- exactly the two-class softmax.  Starting from
zero the SGD updates keep ``w0 = -w1``, so warm starts rebuild
``W = [-coef_ / 2, coef_ / 2]``.
"""

import copy
import inspect
import math
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedShuffleSplit
from sklearn.utils import check_random_state, compute_class_weight
from sklearn.utils._array_api import (
    _convert_to_numpy,
    _is_numpy_namespace,
    _max_precision_float_dtype,
    check_same_namespace,
    get_namespace,
    get_namespace_and_device,
    move_to,
)
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ._array_cache import cached_allocations, cached_allocations_in
from ._bridge import back, bridgeable, to_numpy
from ._caller import warn_at_caller
from ._dask_blocks import is_dask_collection
from ._dask_fit import fit_dask
from ._dask_predict import predict_dask, score_dask
from ._optimality import newton_decrement
from ._preconditioner import Preconditioner, estimate_curvature, fit_preconditioner
from ._sgd import SGDConfig, SGDState, normalize_weights, run_sgd
from ._softmax import log_softmax, softmax

__all__ = ["SoftmaxRegression"]


# the derived step 1 / L(m) is a worst-case bound (the softmax Hessian reaches
# its bound 1/2 only for two equally likely classes); this multiple of it was
# chosen by measurement (benchmarks/bench_convergence.py, user guide)
_AUTO_STEP_MULTIPLIER = 1.0

# SGDClassifier's and MLPClassifier's names for what is spelled differently here
_FOREIGN_PARAMETERS = {
    "eta0": "the initial step size is learning_rate ('auto' or a float).",
    "learning_rate_init": "the initial step size is learning_rate ('auto' or a float).",
    "n_iter": "the number of epochs is max_iter.",
    "penalty": "the penalty is set by alpha and l1_ratio (elastic net; l1_ratio=0 is L2).",
    "loss": "the loss is always the multinomial cross-entropy (SGDClassifier's 'log_loss').",
    "average": "averaged SGD is not offered (it measured worse than the default schedule).",
}
_SCHEDULE_NAMES = {"constant", "invscaling", "adaptive"}

# the final optimality check runs on training sets of at most this many rows
_OPTIMALITY_ROWS = 20_000


def _float_dtypes(xp, device):
    if _max_precision_float_dtype(xp, device) == xp.float32:
        return [xp.float32]
    return [xp.float64, xp.float32]


def _to_numpy(a):
    return _convert_to_numpy(a, get_namespace(a)[0])


def _compute_namespace(xp):
    """The namespace the optimizer runs in: plain NumPy for NumPy (and sparse) data."""
    return np if _is_numpy_namespace(xp) else xp


class SoftmaxRegression(ClassifierMixin, BaseEstimator):
    """Multinomial logistic (softmax) regression trained by minibatch SGD.

    Minimises the mean (sample-weighted) cross-entropy of the softmax of
    ``X @ coef_.T + intercept_`` plus an elastic-net penalty, by minibatch
    stochastic gradient descent with optional (Nesterov) momentum.  Unlike
    :class:`~sklearn.linear_model.SGDClassifier` (one-vs-rest) the model is
    multinomial, and unlike :class:`~sklearn.linear_model.LogisticRegression`
    it trains in minibatches and supports :meth:`partial_fit` (out-of-core
    learning).  For dense data with up to 128 classes each step is one call
    of a fused kernel (the logits, the softmax cross-entropy and both
    gradients); otherwise two BLAS products and the fused cross-entropy
    kernel.  float32 data trains in float32.

    Dense arrays and scipy.sparse CSR matrices are accepted.  With
    ``sklearn.set_config(array_api_dispatch=True)``, torch, CuPy and other
    array-API inputs are trained and predicted in their own namespace and on
    their device (GPU included).  Dask arrays and DataFrames train out of
    core: every epoch streams the row blocks in a fresh random order, the
    next blocks computed while one trains, and predictions on them are
    lazy dask arrays (:ref:`scaling`).

    The defaults need no tuning and no scaling of the features: the
    optimizer steps in standardized coordinates (`precondition`, which does
    not change the objective or its optimum), derives its step size from the
    curvature of the data (``learning_rate="auto"``), uses Nesterov momentum
    0.9, divides the step by 10 when the training objective stops improving
    and stops when a smaller step no longer helps.  An epoch whose objective
    diverges is rolled back and retried with a smaller step.  The user guide
    (:ref:`regression`) shows the measurements behind these choices.

    Parameters
    ----------
    alpha : float, default=1e-4
        Strength of the penalty ``alpha * ((1 - l1_ratio) / 2 * ||coef||_2^2
        + l1_ratio * ||coef||_1)`` (the intercept is not penalised).
    l1_ratio : float, default=0.0
        Elastic-net mixing in ``[0, 1]``: 0 is a pure L2 penalty, 1 a pure L1
        penalty.  The L1 part is applied by a proximal (soft-threshold) step
        after each update, which makes coefficients exactly zero.
    fit_intercept : bool, default=True
        Whether to learn one intercept per class.
    batch_size : int or "auto", default="auto"
        Number of samples per minibatch at most: an epoch has
        ``ceil(n_samples / batch_size)`` batches whose sizes differ by at most
        one (a short last batch would weigh its rows more).  ``"auto"`` takes
        256, or ``ceil(n_samples / 16)`` (at least 32) when that is smaller, so
        that small data sets still get about 16 steps per epoch.
    learning_rate : float or "auto", default="auto"
        Initial step size.  ``"auto"`` derives it from the data: ``1 / L(m)``,
        the classic safe step of minibatch SGD for batches of ``m`` rows,
        where ``L(m)`` bounds the curvature of the objective from the largest
        eigenvalue of the (preconditioned) covariance of ``X`` (a few power
        iterations on up to 4096 rows) and the largest row norm.  SGDClassifier's
        ``eta0``.
    schedule : {"constant", "invscaling", "adaptive"}, default="adaptive"
        How the step size evolves:

        - ``"constant"``: ``learning_rate`` throughout;
        - ``"invscaling"``: ``learning_rate / (epoch + 1) ** power_t``, with
          ``epoch`` counting the epochs already run (0 for the first);
        - ``"adaptive"``: ``learning_rate`` until `n_iter_no_change`
          consecutive epochs fail to improve the training objective by the
          relative `tol`; then the step is divided by 10.  Training stops
          when no epoch improved since the previous division (a smaller
          step no longer changes anything measurable).
          :meth:`partial_fit` keeps the step constant under this schedule
          (the losses of different chunks are not comparable).
    power_t : float, default=0.5
        Exponent of the ``"invscaling"`` schedule.
    momentum : float, default=0.9
        Momentum in ``[0, 1)``: the update is ``v = momentum * v - lr * grad``.
        With sparse input and ``momentum=0`` (and no L1 penalty) each step
        only touches the coefficients of the features present in the batch.
    nesterovs_momentum : bool, default=True
        Whether to use Nesterov's momentum (only used when ``momentum > 0``).
    precondition : bool, default=True
        Whether the steps are taken in standardized coordinates: dense
        features centered (with an intercept) and divided by their standard
        deviation, as a :class:`~sklearn.preprocessing.StandardScaler` would,
        while `coef_` and the penalty stay those of the original features,
        so the objective and its optimum are unchanged.  Sparse input is not
        preconditioned.  ``False`` gives plain SGD on the features as given
        (with ``momentum=0`` and a float `learning_rate`, the textbook
        update).
    max_iter : int, default=1000
        Maximum number of epochs (passes over the training data) of
        :meth:`fit`.  :meth:`partial_fit` always runs one epoch.
    tol : float or None, default=1e-3
        Relative stopping tolerance: an epoch improves when it lowers the best
        training objective so far (or, with `early_stopping`, the best
        validation log loss) by more than ``tol * max(best, 1e-3)``.  See
        `schedule` for what happens after `n_iter_no_change` epochs without
        improvement.  ``None`` disables the rule and always runs `max_iter`
        epochs.
    n_iter_no_change : int or "auto", default="auto"
        Number of epochs without improvement tolerated before the step is
        lowered or training stops (also the patience of `early_stopping`).
        ``"auto"`` is 5, or 3 when an epoch has at least 100 steps (large
        data, whose epochs are long and whose objective is less noisy from
        one epoch to the next).
    early_stopping : bool, default=False
        Whether to set aside a stratified `validation_fraction` of the training
        data, stop when its log loss has not improved for `n_iter_no_change`
        epochs, and keep the coefficients of the epoch with the lowest
        validation log loss.  The step size still follows the training
        objective.  Only used by :meth:`fit`.
    validation_fraction : float, default=0.1
        Fraction of the training data set aside with `early_stopping`.
    shuffle : bool, default=True
        Whether to shuffle the training data.  The rows are permuted once per
        call to :meth:`fit` or :meth:`partial_fit`, and every epoch visits the
        resulting minibatches in a fresh random order.  Dense C-contiguous
        NumPy data of up to 128 classes are not copied for that (the kernel
        reads each minibatch's rows in place); other data are permuted in one
        copy.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffling and the validation split.  The coefficients start
        at zero, so with ``shuffle=False`` and no early stopping training is
        deterministic anyway.
    warm_start : bool, default=False
        Whether :meth:`fit` starts from the current coefficients instead of
        zeros (the optimizer's momentum and schedule restart).  The classes
        of `y` must then be those of the previous fit (else ``ValueError``).
    class_weight : dict, "balanced" or None, default=None
        Weights ``{class_label: weight}`` multiplying the sample weights of
        each class.  ``"balanced"`` uses ``n_samples / (n_classes *
        np.bincount(y))``; it is not supported by :meth:`partial_fit`, which
        sees one chunk at a time (pass the weights of the full data as a dict).
    label_smoothing : float, default=0.0
        Label smoothing in ``[0, 1)``: each target becomes ``(1 -
        label_smoothing)`` on the true class plus ``label_smoothing /
        n_classes`` on every class (as in :func:`torch.nn.functional.cross_entropy`).
    verbose : int, default=0
        Per-epoch progress (epoch, training objective, validation log loss
        and accuracy, learning rate, elapsed time since the start of the
        fit): with 1, epochs 1 to 5, every 10th up to 100, every 100th, the
        last one and the epoch of every step change, divergence retry or stop;
        with 2 or more, every epoch.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    coef_ : ndarray of shape (n_classes, n_features) or (1, n_features)
        Weights; one row per class, or a single row (``w1 - w0``, the logit
        of ``classes_[1]`` relative to ``classes_[0]``) for two classes, as in
        scikit-learn's linear classifiers.
    intercept_ : ndarray of shape (n_classes,) or (1,)
        Intercepts (zeros when ``fit_intercept=False``), shaped like `coef_`'s rows.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when `X` has string feature names.
    n_iter_ : int
        Number of epochs run: by the last :meth:`fit`, or in total by the
        :meth:`partial_fit` calls since.
    t_ : int
        Number of training samples seen by the optimizer (epochs times
        samples).
    loss_curve_ : list of float
        Training objective (mean cross-entropy plus penalty) at the end of
        each epoch, on all training rows or a fixed random sample of 4096
        (fewer for more than 256 features: about a million entries of X).
    best_loss_ : float or None
        Lowest value in `loss_curve_`; None with `early_stopping`.
    validation_scores_ : list of float or None
        Validation accuracy after each epoch with `early_stopping`, else None.
    validation_loss_curve_ : list of float or None
        Validation log loss after each epoch with `early_stopping` (the
        stopping criterion), else None.
    best_validation_score_ : float or None
        Validation accuracy of the epoch whose coefficients are kept (the one
        of lowest validation log loss) with `early_stopping`, else None.
    optimality_gap_ : float
        After a :meth:`fit` that stopped by its rule (NumPy input of at most
        20000 rows, ``l1_ratio=0``, no `early_stopping`): the Newton
        decrement ``g^T H^-1 g / 2`` at the final coefficients, an estimate of
        how far the training objective is above its optimum (None where the
        check does not run).  A ``ConvergenceWarning`` is raised when it
        exceeds ``tol * max(objective, 1)``.
    n_divergence_retries_ : int
        Number of diverged epochs that the last call rolled back and retried
        with a smaller step (0 when none diverged).
    learning_rate_ : float
        The initial step size used (derived from the data with
        ``learning_rate="auto"``).
    batch_size_ : int
        The batch size used.

    See Also
    --------
    sklearn.linear_model.LogisticRegression : Full-batch multinomial logistic regression.
    sklearn.linear_model.SGDClassifier : One-vs-rest linear classifiers trained by SGD.

    Notes
    -----
    For two classes the penalty applies to both rows ``w0 = -w1`` of the
    multinomial model, so in terms of ``coef_ = w1 - w0`` it is
    ``alpha / 4 * ||coef_||^2`` for the L2 part (half of the binary
    logistic-regression penalty with the same `alpha`).

    If an epoch's objective becomes NaN or infinite or, in :meth:`fit`, rises
    clearly above that of the all-zero model (``log(n_classes)``) or loses
    more than half the progress made, the epoch is undone and retried with a
    step ten times smaller; after 6 such retries :meth:`fit` and
    :meth:`partial_fit` raise ``ValueError`` and leave the estimator as it
    was before the call.  A fit that ends no better than the all-zero model,
    or reaches `max_iter`, warns with a ``ConvergenceWarning``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from softmax_core import SoftmaxRegression
    >>> X, y = load_iris(return_X_y=True)
    >>> model = SoftmaxRegression(random_state=0)
    >>> clf = make_pipeline(StandardScaler(), model).fit(X, y)
    >>> clf.predict(X[:2])
    array([0, 0])
    >>> proba = clf.predict_proba(X[:2])
    >>> proba.shape, bool(proba[0, 0] > 0.9)
    ((2, 3), True)
    >>> bool(clf.score(X, y) > 0.95)
    True
    """

    # the "?" link of the HTML representation (scikit-learn's _repr_html_) to
    # this class's API page, generated/softmax_core.SoftmaxRegression.html of
    # the docs (docs/conf.py html_baseurl is the site's address)
    _doc_link_module = "softmax_core"
    _doc_link_template = ("https://softmax-core.readthedocs.io/en/latest/generated/"
                          "{estimator_module}.{estimator_name}.html")

    _parameter_constraints: dict = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
        "fit_intercept": ["boolean"],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "schedule": [StrOptions({"constant", "invscaling", "adaptive"})],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "nesterovs_momentum": ["boolean"],
        "precondition": ["boolean"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left"), None],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
        "verbose": ["verbose"],
    }

    def __new__(cls, *args, **kwargs):
        # Parameter names that users bring from SGDClassifier / MLPClassifier:
        # say which parameter to use instead of Python's bare "unexpected keyword".
        for name in kwargs:
            if name in _FOREIGN_PARAMETERS:
                raise TypeError(
                    f"{cls.__name__} has no parameter {name!r}: {_FOREIGN_PARAMETERS[name]}"
                )
        return super().__new__(cls)

    def _validate_params(self):
        if self.learning_rate == "optimal":
            raise ValueError(
                "learning_rate='optimal' is SGDClassifier's schedule 1 / (alpha * (t + t0)); "
                "here the step is learning_rate='auto' (derived from the data) or a float "
                "(SGDClassifier's eta0), and schedule is one of 'constant', 'invscaling', "
                "'adaptive'."
            )
        if isinstance(self.learning_rate, str) and self.learning_rate in _SCHEDULE_NAMES:
            raise ValueError(
                f"learning_rate={self.learning_rate!r} is a schedule name (as in "
                f"SGDClassifier): use schedule={self.learning_rate!r} (one of 'constant', "
                "'invscaling', 'adaptive') and learning_rate='auto' or a float step size "
                "(SGDClassifier's eta0)."
            )
        super()._validate_params()

    def __init__(
        self,
        *,
        alpha=1e-4,
        l1_ratio=0.0,
        fit_intercept=True,
        batch_size="auto",
        learning_rate="auto",
        schedule="adaptive",
        power_t=0.5,
        momentum=0.9,
        nesterovs_momentum=True,
        precondition=True,
        max_iter=1000,
        tol=1e-3,
        n_iter_no_change="auto",
        early_stopping=False,
        validation_fraction=0.1,
        shuffle=True,
        random_state=None,
        warm_start=False,
        class_weight=None,
        label_smoothing=0.0,
        verbose=0,
    ):
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.schedule = schedule
        self.power_t = power_t
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.precondition = precondition
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.shuffle = shuffle
        self.random_state = random_state
        self.warm_start = warm_start
        self.class_weight = class_weight
        self.label_smoothing = label_smoothing
        self.verbose = verbose

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model by minibatch SGD for up to `max_iter` epochs.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array} of shape (n_samples, n_features)
            Training data (dense or CSR; float32 data trains in float32).  A
            dask array or DataFrame trains out of core (one survey pass, then
            every epoch visits its row blocks; with a ``distributed`` client
            the training runs on the workers that hold them; chunk sizes may
            be unknown); `early_stopping` is not offered for it.
        y : array-like of shape (n_samples,)
            Target labels (any hashable, sortable labels; at least two classes).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples; the loss is their weighted
            mean.  Multiplied by `class_weight` when given.

        Returns
        -------
        self : SoftmaxRegression
            The fitted estimator.

        Raises
        ------
        ValueError
            For invalid input, or when the training loss diverges (the
            estimator is then left unchanged).

        Examples
        --------
        >>> import numpy as np
        >>> from softmax_core import SoftmaxRegression
        >>> X = np.array([[-2.0], [-1.0], [1.0], [2.0]])
        >>> clf = SoftmaxRegression(random_state=0).fit(X, ["a", "a", "b", "b"])
        >>> clf.classes_.tolist(), clf.coef_.shape
        (['a', 'b'], (1, 1))
        """
        return self._fit(X, y, sample_weight, classes=None, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Run one epoch of minibatch SGD on the given data (incremental learning).

        The optimizer state (momentum, schedule) carries over between calls.
        The batch size, the step size and the preconditioner are set from the
        first call's chunk and kept (a later ``set_params(batch_size=...)`` is
        ignored until the next :meth:`fit`): make the first chunk
        representative -- a few hundred rows or more, every feature varying
        -- or pass ``precondition=False`` and a float `learning_rate` for
        features already scaled.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array} of shape (n_samples, n_features)
            A chunk of training data.  A dask array is one pass over its row
            blocks, and its first block plays the first chunk's part.
        y : array-like of shape (n_samples,)
            Its labels; each must be one of `classes`.
        classes : array-like of shape (n_classes,), default=None
            All the classes that can appear in any chunk.  Required on the
            first call, optional (and must not change) afterwards.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples.

        Returns
        -------
        self : SoftmaxRegression
            The updated estimator.

        Raises
        ------
        ValueError
            For invalid input, ``classes`` missing on the first call or
            changed later, a label not in ``classes``, a different number of
            features than before, ``class_weight="balanced"`` (which needs the
            whole data set), or a diverging loss (the estimator is then left
            unchanged).

        Examples
        --------
        >>> import numpy as np
        >>> from softmax_core import SoftmaxRegression
        >>> rng = np.random.default_rng(0)
        >>> X = rng.standard_normal((300, 2))
        >>> y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
        >>> clf = SoftmaxRegression(random_state=0)
        >>> for chunk in np.array_split(np.arange(300), 3):
        ...     clf = clf.partial_fit(X[chunk], y[chunk], classes=[0, 1, 2])
        >>> clf.n_iter_, clf.t_, clf.coef_.shape
        (3, 300, (3, 2))
        """
        if self.class_weight == "balanced":
            raise ValueError(
                "class_weight='balanced' is not supported by partial_fit: one chunk does not "
                "give the class frequencies of the whole data. Compute them with "
                "sklearn.utils.compute_class_weight('balanced', classes=classes, y=y) on the "
                "full y and pass them as a dict."
            )
        return self._fit(X, y, sample_weight, classes=classes, incremental=True)

    def _fit(self, X, y, sample_weight, classes, incremental):
        snapshot = dict(self.__dict__)
        if "_random_state" in snapshot:  # advanced in place by the call
            snapshot["_random_state"] = copy.deepcopy(snapshot["_random_state"])
        try:
            with cached_allocations():  # a with block: no frame between the warnings and fit
                return self._fit_unsafe(X, y, sample_weight, classes, incremental)
        except Exception:
            # a failed call (a diverged loss included) leaves the estimator
            # exactly as it was: no half-updated or half-fitted state
            self.__dict__.clear()
            self.__dict__.update(snapshot)
            raise

    def _fit_unsafe(self, X, y, sample_weight, classes, incremental):
        first_call = not (incremental and hasattr(self, "classes_"))
        if incremental and first_call and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if is_dask_collection(X):
            return fit_dask(self, X, y, sample_weight, classes, incremental)
        xp_in, _, device = get_namespace_and_device(X)
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse="csr",
            dtype=_float_dtypes(xp_in, device),
            order="C",
            reset=first_call,
        )
        xp_caller, _, device = get_namespace_and_device(X)
        xp = _compute_namespace(xp_caller)
        X_caller = y_caller = None
        if xp is not np and not sp.issparse(X) and bridgeable(X, ()):
            # CPU arrays of other namespaces (torch CPU tensors, ...) train on a
            # zero-copy NumPy view with NumPy's kernels and BLAS (the labels too:
            # torch.unique alone cost more than an epoch); the fitted arrays go
            # back to the caller's namespace after _store
            X_caller, X, xp = X, to_numpy(X), np
            if type(y) is type(X_caller) and bridgeable(X_caller, (y,)):
                y_caller, y = y, to_numpy(y)
        check_classification_targets(y)
        classes_, y_idx = self._encode_targets(y, classes, first_call)
        n_classes = classes_.shape[0]
        if n_classes < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in the data, "
                f"but the data contains only one class: {classes_[0]!r}."
            )
        y_idx = xp.astype(self._to_compute(xp, device, y_idx), xp.int64)
        w = self._sample_weights(xp, device, X, sample_weight, classes_, y, y_idx)

        state = self._initial_state(xp, device, X, classes_, first_call, incremental)
        if first_call or not hasattr(self, "_random_state"):
            self._random_state = check_random_state(self.random_state)
        rng = self._random_state

        validation = None
        if self.early_stopping and not incremental:
            X, y_idx, w, validation = self._validation_split(xp, device, X, y_idx, w, rng)
        w = normalize_weights(xp, w)
        continuing = incremental and not first_call and state.batch_size is not None
        if not continuing:
            state.batch_size = self._resolved_batch_size(X.shape[0])
        cfg = self._config(state, X.shape[0])
        if not continuing:
            self._prepare_optimizer(xp, state, cfg, X, w, rng)
        cfg.learning_rate = state.initial_learning_rate
        start_loss = math.log(n_classes)
        converged = run_sgd(
            xp,
            state,
            cfg,
            X,
            y_idx,
            w,
            max_epochs=1 if incremental else self.max_iter,
            rng=rng,
            validation=validation,
            can_stop=not incremental,
            start_loss=start_loss,
        )
        self._store(xp, state, classes_, validation is not None)
        if X_caller is not None:
            self.coef_ = back(xp_caller, X_caller, self.coef_)
            self.intercept_ = back(xp_caller, X_caller, self.intercept_)
        if y_caller is not None:
            self.classes_ = back(xp_caller, y_caller, self.classes_)
        self._warn_if_poor(state, converged, start_loss, incremental)
        # (early stopping deliberately ends before the training optimum)
        if (converged and xp is np and self.l1_ratio == 0 and self.tol is not None
                and validation is None):
            self._check_optimality(state, cfg, X, y_idx, w)
        return self

    def _check_optimality(self, state, cfg, X, y_idx, w):
        """Warn when a Newton step from the end point would still gain more than
        ``tol * max(objective, 1)``: the stopping rule took a slow descent for
        convergence (see ``_optimality.py``)."""
        if X.shape[0] > _OPTIMALITY_ROWS:
            # a subsample's gradient is dominated by sampling noise, which the flat
            # directions of H^-1 amplify into false alarms; the whole data set would
            # cost as much as many epochs.  Large data are where SGD does well.
            return
        with np.errstate(all="ignore"):
            gap = newton_decrement(
                X, y_idx, w, state.W, state.b, alpha=cfg.alpha, fit_intercept=cfg.fit_intercept,
                label_smoothing=cfg.label_smoothing,
                inv_scale2=state.preconditioner.inv_scale2, offset=state.preconditioner.offset)
        if not np.isfinite(gap):
            return  # optimality_gap_ stays None: no estimate, rather than a wrong one
        self.optimality_gap_ = gap
        final = state.loss_curve[-1]
        limit = cfg.tol * max(final, 1.0)
        if gap > limit:
            warn_at_caller(
                f"{type(self).__name__}: the fit stopped after {state.epochs} epochs, but a "
                f"Newton step from the final coefficients would still lower the training "
                f"objective ({final:.6g}) by about {gap:.2g}, more than tol * max(objective, "
                f"1) = {limit:.2g}: the optimizer descends slowly here (typically a small, "
                "weakly regularized problem). Lower tol and raise max_iter, increase alpha, or "
                "use sklearn.linear_model.LogisticRegression for such data.",
                ConvergenceWarning,
            )

    def _resolved_batch_size(self, n_samples):
        """``batch_size``, or for "auto" 256 rows, fewer (down to 32) for ~16 steps per epoch."""
        if self.batch_size != "auto":
            return int(self.batch_size)
        return int(min(256, max(32, math.ceil(n_samples / 16))))

    def _prepare_optimizer(self, xp, state, cfg, X, w, rng, preconditioner=None,
                           n_samples=None):
        """The preconditioner and the initial step, from the data of this fit.

        An out-of-core fit passes the `preconditioner` of the whole data and a
        sample of its rows as ``X`` (``w``), and their number `n_samples`.
        """
        state.preconditioner = preconditioner if preconditioner is not None else \
            fit_preconditioner(xp, X, w, self.fit_intercept, self.precondition,
                               l2=cfg.alpha * (1 - cfg.l1_ratio))
        if self.learning_rate == "auto":
            curvature = estimate_curvature(xp, X, w, state.preconditioner,
                                           cfg.alpha * (1 - cfg.l1_ratio), self.fit_intercept,
                                           rng)
            if n_samples is not None:
                curvature.n_samples = n_samples
            rate = curvature.step(state.batch_size) * _AUTO_STEP_MULTIPLIER
        else:
            rate = float(self.learning_rate)
        state.learning_rate = rate
        state.initial_learning_rate = rate

    def _warn_if_poor(self, state, converged, start_loss, incremental):
        """Never return in silence a model no better than zeros, or one that stopped early."""
        name = type(self).__name__
        final = state.loss_curve[-1] if state.loss_curve else math.inf
        if not incremental and final >= start_loss * (1 - 1e-3):
            warn_at_caller(
                f"{name}: the training objective ({final:.6g}) is no better than that of the "
                f"all-zero model (log(n_classes) = {start_loss:.6g}). Scale the features "
                "(sklearn.preprocessing.StandardScaler), keep precondition=True, or lower "
                "learning_rate.",
                ConvergenceWarning,
            )
        elif not incremental and not converged and self.tol is not None:
            warn_at_caller(
                f"{name}: maximum number of epochs (max_iter={self.max_iter}) reached before "
                f"convergence (objective {final:.6g}); increase max_iter or tol. With "
                "precondition=False or a float learning_rate, also scale the features "
                "(sklearn.preprocessing.StandardScaler) or use the defaults "
                "(precondition=True, learning_rate='auto').",
                ConvergenceWarning,
            )

    def _resolved_patience(self, n_samples, batch_size):
        if self.n_iter_no_change != "auto":
            return int(self.n_iter_no_change)
        return 3 if math.ceil(n_samples / batch_size) >= 100 else 5

    def _config(self, state, n_samples):
        return SGDConfig(
            batch_size=state.batch_size,
            learning_rate=state.initial_learning_rate,
            schedule=self.schedule,
            power_t=float(self.power_t),
            momentum=float(self.momentum),
            nesterovs_momentum=self.nesterovs_momentum,
            alpha=float(self.alpha),
            l1_ratio=float(self.l1_ratio),
            fit_intercept=self.fit_intercept,
            label_smoothing=float(self.label_smoothing),
            tol=None if self.tol is None else float(self.tol),
            n_iter_no_change=self._resolved_patience(n_samples, state.batch_size),
            shuffle=self.shuffle,
            verbose=self.verbose,
        )

    # --------------------------------------------------------- fit helpers

    def _encode_targets(self, y, classes, first_call):
        """Return ``(classes_, y_idx)`` with y_idx in y's namespace."""
        xp_y, _ = get_namespace(y)
        if first_call:
            source = y if classes is None else xp_y.asarray(classes)
            classes_ = xp_y.unique_values(source)
        else:
            classes_ = self.classes_
            if _is_numpy_namespace(xp_y):  # labels bridged to NumPy, classes_ kept as the caller's
                classes_ = np.asarray(_to_numpy(classes_))
            if classes is not None:
                given = xp_y.unique_values(xp_y.asarray(classes))
                if given.shape != classes_.shape or not bool(xp_y.all(given == classes_)):
                    raise ValueError(
                        f"classes={classes!r} is not the same as on the previous call to "
                        f"partial_fit, which was {classes_!r}."
                    )
        n_classes = classes_.shape[0]
        if n_classes == 0:
            raise ValueError("classes must not be empty.")
        idx = xp_y.searchsorted(classes_, y)
        safe = xp_y.where(idx < n_classes, idx, xp_y.zeros_like(idx))
        known = (idx < n_classes) & (xp_y.take(classes_, safe) == y)
        if not bool(xp_y.all(known)):
            unseen = xp_y.unique_values(y[~known])
            raise ValueError(
                f"y contains labels not in classes_: {_convert_to_numpy(unseen, xp_y).tolist()}"
                f"; the known classes are {_convert_to_numpy(classes_, xp_y).tolist()}."
            )
        return classes_, idx

    @staticmethod
    def _to_compute(xp, device, a):
        """Move ``a`` (an index or weight array) to the compute namespace and device."""
        if xp is np:
            return np.asarray(_to_numpy(a))
        return move_to(a, xp=xp, device=device)

    def _sample_weights(self, xp, device, X, sample_weight, classes_, y, y_idx):
        """Per-sample weights (sample_weight times class_weight) or None."""
        w = None
        if sample_weight is not None:
            w = _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)
        if self.class_weight is not None:
            xp_y, _ = get_namespace(y)
            cw = compute_class_weight(
                self.class_weight,
                classes=_convert_to_numpy(classes_, xp_y),
                y=_convert_to_numpy(y, xp_y),
            )
            cw = xp.asarray(cw, dtype=X.dtype, device=None if xp is np else device)
            per_sample = xp.take(cw, y_idx, axis=0)
            w = per_sample if w is None else w * per_sample
            if not bool(xp.any(w > 0)):
                raise ValueError(
                    "The sample weights times the class weights are all zero: at least one "
                    "sample needs a non-zero weight."
                )
        return w

    def _initial_state(self, xp, device, X, classes_, first_call, incremental):
        n_features, n_classes = X.shape[1], classes_.shape[0]
        dev = None if xp is np else device
        warm = (incremental and not first_call) or (self.warm_start and hasattr(self, "coef_"))
        if warm and self.coef_.shape[-1] != n_features:
            raise ValueError(
                f"warm_start: the current coef_ has {self.coef_.shape[-1]} features but X has "
                f"{n_features}; refit with warm_start=False."
            )
        if warm and not first_call:
            pass  # partial_fit: classes_ were checked by _encode_targets
        elif warm and not np.array_equal(_to_numpy(self.classes_), _to_numpy(classes_)):
            raise ValueError(
                f"warm_start: the classes of y, {_to_numpy(classes_).tolist()!r}, do not match "
                f"the classes of the current coefficients, {_to_numpy(self.classes_).tolist()!r}"
                " (the provided coef_ does not match the data set); refit with "
                "warm_start=False."
            )
        # the optimizer owns (and may update in place) fresh arrays: W = coef.T
        if warm:
            coef = xp.astype(self._to_compute(xp, device, self.coef_), X.dtype)
            intercept = xp.astype(self._to_compute(xp, device, self.intercept_), X.dtype)
            if n_classes == 2:
                coef = xp.concat([-0.5 * coef, 0.5 * coef], axis=0)
                intercept = xp.concat([-0.5 * intercept, 0.5 * intercept], axis=0)
            W = xp.asarray(coef.T, copy=True)
            if xp is np:
                W, intercept = np.ascontiguousarray(W), intercept.copy()
        else:
            W = xp.zeros((n_features, n_classes), dtype=X.dtype, device=dev)
            intercept = xp.zeros((n_classes,), dtype=X.dtype, device=dev)
        previous = getattr(self, "_optimizer", None)
        if incremental and not first_call and previous is not None:
            state = copy.copy(previous)
            state.loss_curve = list(previous.loss_curve)
            # the momentum buffers are updated in place (NumPy): never share them
            # with the saved optimizer, which a failed call must leave intact
            # (in this call's dtype, as W: a float32 call after a float64 one
            # trains in float32 on every path)
            def own(a):  # a copy (astype copies) in this call's namespace and device
                return None if a is None else xp.astype(self._to_compute(xp, device, a),
                                                         X.dtype)

            state.vW, state.vb = own(previous.vW), own(previous.vb)
            pre = previous.preconditioner
            state.preconditioner = Preconditioner(offset=own(pre.offset),
                                                  inv_scale2=own(pre.inv_scale2))
            state.W, state.b = W, intercept
            state.retries = 0
            if self.learning_rate != "auto" and float(self.learning_rate) != \
                    state.initial_learning_rate:
                # set_params(learning_rate=...) between two partial_fit calls
                state.learning_rate = state.initial_learning_rate = float(self.learning_rate)
            return state
        return SGDState(W=W, b=intercept)

    def _validation_split(self, xp, device, X, y_idx, w, rng):
        y_np = _convert_to_numpy(y_idx, xp) if xp is not np else y_idx
        splitter = StratifiedShuffleSplit(
            n_splits=1, test_size=self.validation_fraction, random_state=rng
        )
        try:
            train, val = next(splitter.split(np.zeros((y_np.shape[0], 1)), y_np))
        except ValueError as exc:
            raise ValueError(
                f"early_stopping could not make a stratified validation set with "
                f"validation_fraction={self.validation_fraction}: {exc} Increase "
                "validation_fraction, or use early_stopping=False."
            ) from None
        if xp is not np:
            train = xp.asarray(train, device=device)
            val = xp.asarray(val, device=device)

        def take(a, idx):
            if a is None:
                return None
            if sp.issparse(a):
                return a[idx]
            return xp.take(a, idx, axis=0)

        validation = (take(X, val), take(y_idx, val), take(w, val))
        if w is not None and not bool(xp.any(validation[2] > 0)):
            raise ValueError(
                "early_stopping: the sample weights of the validation set are all zero; use "
                "another random_state or a larger validation_fraction."
            )
        return take(X, train), take(y_idx, train), take(w, train), validation

    def _store(self, xp, state, classes_, early_stopping):
        W, b = state.W, state.b  # W is (n_features, n_classes)
        if W.shape[1] == 2:
            coef = xp.reshape(W[:, 1] - W[:, 0], (1, -1))
            b = b[1:] - b[:1]
        else:
            coef = xp.asarray(W.T, copy=True)
        self.coef_ = np.ascontiguousarray(coef) if xp is np else coef
        self.intercept_ = xp.asarray(b, copy=True)
        self.classes_ = classes_
        self.n_iter_ = state.epochs
        self.t_ = state.t
        self.loss_curve_ = list(state.loss_curve)
        self.learning_rate_ = state.initial_learning_rate
        self.batch_size_ = state.batch_size
        self.optimality_gap_ = None  # set by _check_optimality where it runs
        self.n_divergence_retries_ = state.retries
        if early_stopping:
            self.validation_scores_ = list(state.validation_scores)
            self.validation_loss_curve_ = list(state.validation_losses)
            self.best_validation_score_ = (state.best_validation_score
                                           if math.isfinite(state.best_validation_score)
                                           else None)
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.validation_loss_curve_ = None
            self.best_validation_score_ = None
            self.best_loss_ = min(self.loss_curve_)
        self._optimizer = state

    # ----------------------------------------------------------- predict

    def _logits(self, X, method):
        """Validate ``X`` and return ``(xp, logits)``; logits are (n, 1) for two classes."""
        check_is_fitted(self)
        check_same_namespace(X, self, attribute="coef_", method=method)
        xp_in, _, device = get_namespace_and_device(X)
        X = validate_data(
            self, X, accept_sparse="csr", dtype=_float_dtypes(xp_in, device), reset=False
        )
        xp, _ = get_namespace(X)
        coef, intercept = self.coef_, self.intercept_
        if not _is_numpy_namespace(xp) and coef.dtype != X.dtype:
            coef, intercept = xp.astype(coef, X.dtype), xp.astype(intercept, X.dtype)
        scores = X @ coef.T
        if isinstance(scores, np.ndarray) and isinstance(intercept, np.ndarray) \
                and np.result_type(scores, intercept) == scores.dtype:
            scores += intercept  # the product is ours: no second array of logits
            return xp, scores
        return xp, scores + intercept

    def _full_logits(self, X, method):
        """Logits of every class, (n, n_classes); ``[0, d]`` for two classes."""
        xp, scores = self._logits(X, method)
        if scores.shape[1] == 1:
            scores = xp.concat([xp.zeros_like(scores), scores], axis=1)
        return xp, scores

    @cached_allocations_in
    def decision_function(self, X):
        """Logits of the samples: ``X @ coef_.T + intercept_``.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array} of shape (n_samples, n_features)
            Samples.  For a dask array or DataFrame the result is a lazy dask
            array, computed block by block.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes) or (n_samples,)
            One logit per class; for two classes a 1-D array, the logit of
            ``classes_[1]`` minus that of ``classes_[0]`` (> 0 predicts
            ``classes_[1]``).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator is not fitted yet.
        ValueError
            If `X` has a different number of features than during fit, or
            contains NaN or infinity.

        Examples
        --------
        >>> import numpy as np
        >>> from softmax_core import SoftmaxRegression
        >>> X = np.array([[-2.0], [-1.0], [1.0], [2.0]])
        >>> clf = SoftmaxRegression(random_state=0).fit(X, [0, 0, 1, 1])
        >>> (clf.decision_function(X) > 0).tolist()
        [False, False, True, True]
        """
        if is_dask_collection(X):
            return predict_dask(self, X, "decision_function")
        xp, scores = self._logits(X, "decision_function")
        if scores.shape[1] == 1:
            return xp.reshape(scores, (-1,))
        return scores

    @cached_allocations_in
    def predict(self, X):
        """Predict the class of each sample (the class of largest logit).

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array} of shape (n_samples, n_features)
            Samples.  For a dask array or DataFrame the result is a lazy dask
            array, computed block by block.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels, taken from `classes_`.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator is not fitted yet.
        ValueError
            If `X` has a different number of features than during fit, or
            contains NaN or infinity.

        Examples
        --------
        >>> import numpy as np
        >>> from softmax_core import SoftmaxRegression
        >>> X = np.array([[-2.0], [-1.0], [1.0], [2.0]])
        >>> clf = SoftmaxRegression(random_state=0).fit(X, ["neg", "neg", "pos", "pos"])
        >>> clf.predict([[-3.0], [3.0]]).tolist()
        ['neg', 'pos']
        """
        if is_dask_collection(X):
            return predict_dask(self, X, "predict")
        xp, scores = self._full_logits(X, "predict")
        indices = xp.argmax(scores, axis=1)
        if isinstance(self.classes_, np.ndarray) and isinstance(indices, np.ndarray):
            return self.classes_[indices]
        xp_classes, _, device_classes = get_namespace_and_device(self.classes_)
        indices = move_to(indices, xp=xp_classes, device=device_classes)
        y_pred = xp_classes.take(self.classes_, indices, axis=0)
        if isinstance(y_pred, np.ndarray) and y_pred.dtype.kind in "OSU":
            return y_pred  # labels that no other namespace can hold
        _, _, device = get_namespace_and_device(scores)
        return move_to(y_pred, xp=xp, device=device)

    @cached_allocations_in
    def predict_proba(self, X):
        """Class probabilities: the softmax of the logits.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array} of shape (n_samples, n_features)
            Samples.  For a dask array or DataFrame the result is a lazy dask
            array, computed block by block.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probability of each class in `classes_` order; rows sum to 1.  For
            two classes, column 1 is the sigmoid of :meth:`decision_function`.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator is not fitted yet.
        ValueError
            If `X` has a different number of features than during fit, or
            contains NaN or infinity.

        Examples
        --------
        >>> import numpy as np
        >>> from softmax_core import SoftmaxRegression
        >>> X = np.array([[-2.0], [-1.0], [1.0], [2.0]])
        >>> clf = SoftmaxRegression(random_state=0).fit(X, [0, 0, 1, 1])
        >>> proba = clf.predict_proba(X)
        >>> np.allclose(proba.sum(axis=1), 1.0), bool(proba[3, 1] > 0.5)
        (True, True)
        """
        if is_dask_collection(X):
            return predict_dask(self, X, "predict_proba")
        _, scores = self._full_logits(X, "predict_proba")
        return softmax(scores, axis=1)

    @cached_allocations_in
    def predict_log_proba(self, X):
        """Log class probabilities: the log-softmax of the logits.

        Computed directly as ``log_softmax`` (not ``log(predict_proba)``), so
        it stays finite when probabilities underflow to 0.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array} of shape (n_samples, n_features)
            Samples.  For a dask array or DataFrame the result is a lazy dask
            array, computed block by block.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log-probability of each class in `classes_` order.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator is not fitted yet.
        ValueError
            If `X` has a different number of features than during fit, or
            contains NaN or infinity.

        Examples
        --------
        >>> import numpy as np
        >>> from softmax_core import SoftmaxRegression
        >>> X = np.array([[-2.0], [-1.0], [1.0], [2.0]])
        >>> clf = SoftmaxRegression(random_state=0).fit(X, [0, 0, 1, 1])
        >>> log_proba = clf.predict_log_proba([[-1e6], [1e6]])
        >>> bool(np.isfinite(log_proba).all())
        True
        """
        if is_dask_collection(X):
            return predict_dask(self, X, "predict_log_proba")
        _, scores = self._full_logits(X, "predict_log_proba")
        return log_softmax(scores, axis=1)

    @cached_allocations_in
    def score(self, X, y, sample_weight=None):
        """Mean accuracy on the given test data and labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Test samples (a dask array: scored in one pass).
        y : array-like of shape (n_samples,)
            True labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            Mean accuracy of ``self.predict(X)`` with respect to `y`.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator is not fitted yet.
        ValueError
            If `X` has a different number of features than during fit, or
            contains NaN or infinity.

        Examples
        --------
        >>> import numpy as np
        >>> from softmax_core import SoftmaxRegression
        >>> X = np.array([[-2.0], [-1.0], [1.0], [2.0]])
        >>> clf = SoftmaxRegression(random_state=0).fit(X, [0, 0, 1, 1])
        >>> clf.score(X, [0, 0, 1, 1])
        1.0
        """
        if is_dask_collection(X):
            return score_dask(self, X, y, sample_weight)
        return super().score(X, y, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.array_api_support = True
        return tags



# __new__ (the check of SGDClassifier's parameter names) would otherwise be what
# inspect.signature(SoftmaxRegression) shows; the parameters are those of __init__
SoftmaxRegression.__signature__ = inspect.signature(SoftmaxRegression.__init__).replace(
    parameters=list(inspect.signature(SoftmaxRegression.__init__).parameters.values())[1:]
)
