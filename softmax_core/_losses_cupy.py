"""CuPy backend of the fused cross-entropy: the CUDA kernels of ``_cupy`` where
they cover a call (class-index targets), else None (the caller then takes
the array-API path).  Nothing here runs without CuPy."""

from . import _losses_generic as generic

__all__ = ["cross_entropy_with_grad"]


def cross_entropy_with_grad(inputs):
    """``(loss, grad)`` of checked ``LossInputs`` as rows, or None."""
    try:
        from . import _cupy
    except ImportError:  # pragma: no cover - CuPy path not built
        return None
    if inputs.kind != "index":
        return None
    xp = inputs.xp
    sample_weight = inputs.sample_weight
    if sample_weight is not None:
        sample_weight = generic.rows_to_batch(xp, sample_weight)
    return _cupy.cross_entropy_with_grad(
        generic.to_rows(xp, inputs.x), generic.rows_to_batch(xp, inputs.target),
        weight=inputs.weight, ignore_index=inputs.ignore_index, reduction=inputs.reduction,
        label_smoothing=inputs.label_smoothing, sample_weight=sample_weight)
