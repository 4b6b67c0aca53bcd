"""The native C++ CPU kernel (fekernels/csrc, built by CMake) as a torch op with autograd.

The shared library is loaded at import when it has been built (``make`` builds it into
``fekernels/_native/``); without it ``impl="auto"`` falls back to the reference on the CPU and says so once,
at debug level. The C++ side registers ``fekernels_native::forward`` and ``::backward`` (activation by name,
an unknown one refused); this module adds their fake (meta) implementations for torch.compile and the autograd
formula, the same registration as the Triton ops' (``fekernels._registration``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch import Tensor

from fekernels import _registration

log = logging.getLogger("fekernels")
#: The built library: fekernels/_native/ (``make native``), or the file FEKERNELS_NATIVE_LIBRARY names (``make
#: sanitize`` points it at an AddressSanitizer build).
LIBRARY = Path(os.environ.get("FEKERNELS_NATIVE_LIBRARY")
               or Path(__file__).parent / "_native" / "libfekernels_native.so")
DTYPES = (torch.float32, torch.bfloat16)


def _load() -> str | None:
    """Load the library if it was built; return why it is not usable (None when it is)."""
    if not LIBRARY.is_file():
        log.debug("native CPU kernel not built (%s missing): impl='auto' uses the reference on the CPU", LIBRARY)
        return "not built"
    try:
        torch.ops.load_library(str(LIBRARY))
    except (OSError, RuntimeError) as error:  # built against another torch, or for another CPU
        # The user built it, so a failure to load is news: say so (rebuilding with `make native` fixes it).
        log.warning("native CPU kernel %s does not load (%s): impl='auto' uses the reference on the CPU; "
                    "rebuild it with `make native`", LIBRARY, error)
        return f"{LIBRARY} does not load: {error}"
    return None


#: Why the built library is not usable: None when it loaded, "not built", or the loader's error.
LOAD_ERROR: str | None = _load()
AVAILABLE = LOAD_ERROR is None

if AVAILABLE:
    _registration.register("fekernels_native::forward", "fekernels_native::backward")


def fe_adapter_native(
    x: Tensor, w_down: Tensor, b_down: Tensor | None, w_conv: Tensor, b_conv: Tensor | None,
    w_up: Tensor, b_up: Tensor | None, *,
    num_frames: int, dilation: int = 1, activation: str | None = None, num_prefix_tokens: int = 0,
) -> Tensor:
    """The op through the native CPU kernel (same contract as the reference)."""
    if not AVAILABLE:
        raise ValueError(f"impl='native' needs the C++ kernel, which is not built ({LIBRARY} missing): run make")
    if x.device.type != "cpu" or x.dtype not in DTYPES:
        raise ValueError(f"impl='native' runs float32 and bfloat16 CPU tensors, got {x.dtype} on {x.device}")
    return _registration.run_forward(torch.ops.fekernels_native.forward, x, w_down, b_down, w_conv, b_conv, w_up,
                                     b_up, num_frames=num_frames, dilation=dilation, activation=activation,
                                     num_prefix_tokens=num_prefix_tokens)
