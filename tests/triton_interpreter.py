"""Triton's CPU interpreter without its repeated patching: the kernel tests' largest avoidable cost.

Under TRITON_INTERPRET=1 a launch patches triton.language's builtins for its whole grid, and then every call of a
``@triton.jit`` helper inside a program patches them again (Triton 3.8, ``InterpretedFunction.__call__``), each
time scanning the modules with ``inspect.getmembers``: about a third of the CPU time of an interpreted forward and
backward of our kernels. Once a launch has patched a helper's modules (its own patch, or a helper's: those are
never undone), a repeat changes nothing, so it is skipped; everything else stays Triton's code, and outputs are
bitwise the same. A Triton whose interpreter lacks these internals is left as it is.
"""

from __future__ import annotations

import inspect
import threading


def skip_repatching_inside_launches() -> bool:
    """Install the shortcut; False (and nothing changed) when this Triton's interpreter is not the expected one."""
    try:
        import triton.language as tl
        from triton.runtime import interpreter

        patch_lang, launch, empty_scope = (interpreter._patch_lang, interpreter.GridExecutor.__call__,
                                           interpreter._LangPatchScope)
    except (ImportError, AttributeError):
        return False
    if hasattr(patch_lang, "__wrapped__"):  # installed already (pytest imports conftest.py under two names)
        return True
    launches = threading.local()  # per thread: for each running launch, the ids of the modules patched in it

    def language_modules(fn) -> set[int]:  # the modules _patch_lang patches for fn
        return {id(value) for value in fn.__globals__.values() if inspect.ismodule(value) and value in (tl, tl.core)}

    def patch_once(fn):
        stack = launches.__dict__.setdefault("stack", [])
        modules = language_modules(fn)
        if stack and modules <= stack[-1]:
            return empty_scope()
        scope = patch_lang(fn)
        if stack:
            stack[-1] |= modules
        return scope

    def run_launch(self, *args, **kwargs):
        stack = launches.__dict__.setdefault("stack", [])
        stack.append(set())
        try:
            return launch(self, *args, **kwargs)
        finally:
            stack.pop()

    patch_once.__wrapped__, run_launch.__wrapped__ = patch_lang, launch  # for tests that compare with Triton's
    interpreter._patch_lang = patch_once
    interpreter.GridExecutor.__call__ = run_launch
    return True
