"""softmax-core: fast, numerically careful softmax-family functions.

Softmax, log-softmax, logsumexp, negative log-likelihood and cross-entropy
(values and gradients) for NumPy through compiled kernels, for any array-API
library (torch, CuPy, JAX, array_api_strict, dask) in its own namespace, and a
scikit-learn multinomial classifier, :class:`SoftmaxRegression`, trained by
minibatch SGD on those kernels.
"""

from ._build_info import show_config
from ._losses import cross_entropy, cross_entropy_with_grad, nll_loss
from ._regression import SoftmaxRegression
from ._softmax import log_softmax, log_softmax_backward, logsumexp, softmax, softmax_backward

__version__ = "0.1.0"

__all__ = [
    "softmax",
    "log_softmax",
    "logsumexp",
    "softmax_backward",
    "log_softmax_backward",
    "nll_loss",
    "cross_entropy",
    "cross_entropy_with_grad",
    "SoftmaxRegression",
    "show_config",
]
