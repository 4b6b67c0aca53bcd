"""fekernels: the FE-Adapter op (down-projection, temporal depthwise conv, up-projection, residual).

``fe_adapter`` is the public entry point; ``fe_adapter_reference`` is the pure-PyTorch ground truth.
This package never imports ``fe_adapter`` (the user-facing library builds on it, not the reverse).
"""

from fekernels._activations import ACTIVATIONS
from fekernels.op import IMPLS, fe_adapter, resolve_impl
from fekernels.reference import fe_adapter_reference

__all__ = ["ACTIVATIONS", "IMPLS", "fe_adapter", "fe_adapter_reference", "resolve_impl"]
