"""A command's imports without the cyclic garbage collector's repeated full passes over them.

Importing torch, then timm with the torchvision and ``torch._dynamo`` it imports, makes a heap of long-lived
objects, and CPython's collector walks all of them in every full collection: six full collections while
``fe-adapter predict`` imported its libraries and two more later walking the same heap again, 0.7 s of an 11-s run
on a 2-core CPU (timed with ``gc.callbacks``). In the ``fe-adapter`` program (``fe_adapter.cli.console``) a command
imports its libraries with the collector off, then freezes everything the collector tracks at that moment
(``gc.freeze``: the modules, and what the command had made before, its arguments): all of it lives until the exit,
so no collection needs to walk it. Nothing is collected before the freeze (with the collector off nothing was
promoted, so even a young-generation pass would walk the whole heap: a third of a second): the garbage of the
imports stays frozen with it, for predict about 9,000 unreachable objects, some 7 MB, under 1% of its memory. So the
block holds imports only: models, data and everything else are made after it, under the collector as usual.
Called through ``fe_adapter.cli.main`` from Python (tests, a notebook) nothing changes: the caller's objects are
not frozen.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_in_program = False


def as_program() -> None:
    """Mark this process as the ``fe-adapter`` program: ``imports`` blocks freeze what they import."""
    global _in_program
    _in_program = True


@contextmanager
def imports() -> Iterator[None]:
    """In the program: the collector off for the block (the command's imports, nothing else), then everything
    frozen and the collector on again, also when the block raises. Elsewhere: nothing."""
    if not _in_program or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
