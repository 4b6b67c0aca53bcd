"""The native kernel's tests again, under AddressSanitizer: an out-of-bounds write fails them even where it would
not crash (issue 22's overrun of a partial-sums buffer did not).

The instrumented library is build-asan/'s (``make test`` builds it; fekernels loads it through
FEKERNELS_NATIVE_LIBRARY). Python itself is not instrumented, so the child pytest preloads the sanitizer's runtime
(with libstdc++, whose exceptions it intercepts: Triton's import throws one), leak checking (Python never frees
it all) is off, and the report goes straight to stderr (--capture=sys). The child runs two OpenMP threads, so the
kernel's split reductions run split; the property test draws fewer examples (``HYPOTHESIS_PROFILE=sanitize``: an
instrumented example costs ten times as much). Run alone with ``make sanitize``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.training_cases import REPOSITORY

_BUILD = REPOSITORY / "build-asan"
_TESTS = ["tests/test_native_kernel.py", "tests/test_impl_contract.py", "tests/test_impl_properties.py"]


def _runtime_libraries() -> str:
    """The sanitizer's runtime and libstdc++ of the compiler that built build-asan/ (LD_PRELOAD's value)."""
    cache = (_BUILD / "CMakeCache.txt").read_text()
    compiler = re.search(r"^CMAKE_CXX_COMPILER:\w+=(.+)$", cache, re.MULTILINE).group(1)
    paths = [subprocess.run([compiler, f"-print-file-name={name}"], capture_output=True, text=True,
                            check=True).stdout.strip() for name in ("libasan.so", "libstdc++.so")]
    return " ".join(paths)


def test_the_native_kernel_tests_pass_under_address_sanitizer():
    library = _BUILD / "libfekernels_native.so"
    if not library.is_file():
        pytest.skip("build-asan/ is not built (make test and make sanitize build it)")
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_XDIST")}
    env.update(FEKERNELS_NATIVE_LIBRARY=str(library), LD_PRELOAD=_runtime_libraries(), OMP_NUM_THREADS="2",
               ASAN_OPTIONS="detect_leaks=0:abort_on_error=1", HYPOTHESIS_PROFILE="sanitize")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--capture=sys", "-k",
                          "native", *_TESTS], capture_output=True, text=True, cwd=REPOSITORY, env=env, timeout=1200)
    output = run.stdout + run.stderr
    report = output.find("ERROR: AddressSanitizer")  # its head names the access and the kernel's file:line
    assert run.returncode == 0, output[report:report + 4000] if report >= 0 else output[-6000:]
    assert re.search(r"\b\d+ passed\b", run.stdout) and " skipped" not in run.stdout, run.stdout[-2000:]
