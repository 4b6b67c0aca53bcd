"""Record what a piece of code launches on the device: every Triton kernel and every ATen op that does work.

Triton launches are seen by wrapping the ``run`` of the kernels' class (JITFunction, or the interpreter's
InterpretedFunction), so a kernel counts however the launcher reaches it. ATen ops are seen by a
TorchDispatchMode, which also steps into the fekernels custom ops (redispatching them below the Python key
with the mode pushed again), so the ops around the Triton kernels inside the op count too, and so do the ones
autograd adds around it (a zero-filled gradient, a cast). An ATen op counts as a launch unless it only
allocates (``empty`` and kin) or returns its input's memory without writing it (views, ``.to`` or
``.contiguous()`` that change nothing); that is decided from what it returned and from its schema (an op
that writes into an argument, like ``fill_`` or ``zero_``, counts), not from a list of names.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes
from torch.utils._pytree import tree_leaves

from fekernels.triton_kernels import kernels

#: ATen ops that allocate without writing: no kernel runs.
_ALLOCATIONS = {"aten.empty.memory_format", "aten.empty_strided.default", "aten.new_empty.default",
                "aten.new_empty_strided.default", "aten.empty_like.default"}


def _storages(values) -> set[int]:
    return {t.untyped_storage().data_ptr() for t in tree_leaves(values) if isinstance(t, torch.Tensor)}


class _Recorder(TorchDispatchMode):
    def __init__(self, launches: list[str], device: torch.device):
        super().__init__()
        self.launches = launches
        self.device_key = torch._C.DispatchKeySet(
            torch._C.DispatchKey.CUDA if device.type == "cuda" else torch._C.DispatchKey.CPU)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.namespace == "fekernels":  # look inside: its body runs with this mode again
            with self:
                return func.redispatch(self.device_key, *args, **kwargs)
        result = func(*args, **kwargs)
        name = str(func)
        fresh = _storages(result) - _storages((args, kwargs))
        if func._schema.is_mutable or (fresh and name not in _ALLOCATIONS):
            self.launches.append(name)
        return result


@contextlib.contextmanager
def recorded_launches(device: torch.device | str) -> Iterator[list[str]]:
    """Yield a list that fills with one entry per launch while the block runs: "triton:<kernel name>" for a
    Triton kernel, the ATen op's name (e.g. "aten.zeros.default") for an ATen op that does work."""
    launches: list[str] = []
    kind = type(kernels.forward_up_kernel)
    original = kind.run

    def run(self, *args, **kwargs):
        launches.append(f"triton:{self.fn.__name__ if hasattr(self, 'fn') else self.__name__}")
        with _disable_current_modes():  # the interpreter's own tensor copies are not the op's launches
            return original(self, *args, **kwargs)

    kind.run = run
    try:
        with _Recorder(launches, torch.device(device)):
            yield launches
    finally:
        kind.run = original
