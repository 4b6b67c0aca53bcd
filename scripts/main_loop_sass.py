"""Instructions per wgmma in the main loops of the Triton kernels, compiled for sm_90a (H100) without a GPU.

A main loop that issues little besides its wgmma instructions keeps the tensor cores busy; one that computes
its operands (a conv on load, a sum of an operand) spends its issue slots on that instead. This compiles the
jobs given on the command line with ``compile_offline.compile_job``'s arguments, disassembles them (the SASS
Triton keeps, made with the nvdisasm its wheel bundles) and counts the instructions of the loop with the most
wgmma (HGMMA) instructions in it: from its label to the branch back to it.

    .venv/bin/python scripts/main_loop_sass.py forward_up:0:bf16:3 grad_h:0:bf16:9:gelu

A job is ``kernel:config index:dtype:K[:activation]`` as in compile_offline.py (config -1: the fallback tile).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compile_offline  # noqa: E402


def main_loop(sass: str) -> tuple[int, int] | None:
    """(instructions, wgmma instructions) of the loop with the most wgmma instructions, or None without one."""
    lines = sass.splitlines()
    labels = {match.group(1): index for index, line in enumerate(lines)
              if (match := re.match(r"\s*(\.?L\w+|LBB\w+):", line))}
    best = None
    for end, line in enumerate(lines):
        match = re.search(r"\bBRA\s+`?\(?(\.?L\w+|LBB\w+)", line)
        if match and labels.get(match.group(1), end) < end:
            body = [text for text in lines[labels[match.group(1)]:end + 1] if text.rstrip().endswith(";")]
            wgmma = sum("HGMMA" in text for text in body)
            if wgmma and (best is None or wgmma > best[1] or (wgmma == best[1] and len(body) > best[0])):
                best = (len(body), wgmma)
    return best


def _parse_job(text: str) -> compile_offline.Job:
    kernel, config, dtype, kernel_size, *activation = text.split(":")
    if kernel not in compile_offline.KERNELS or dtype not in compile_offline.DTYPES:
        raise argparse.ArgumentTypeError(f"bad job {text!r}: kernel in {compile_offline.KERNELS}, "
                                         f"dtype in {list(compile_offline.DTYPES)}")
    return compile_offline.Job(kernel, int(config), dtype, int(kernel_size), activation[0] if activation else None)


def measure(job: compile_offline.Job) -> str:
    """One line: the job, registers, spills, notices, and the main loop's instruction count per wgmma."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    os.environ.update(TRITON_DUMP_PTXAS_LOG="1", TRITON_ALWAYS_COMPILE="1")
    launch = compile_offline._launch_module()
    tuned = launch.KERNELS[job.kernel]
    element_size = 4 if job.dtype.startswith("fp32") else 2
    config = (compile_offline._on_h100(launch, job.kernel, [], job.kernel_size, element_size)[0]
              if job.config == compile_offline.FALLBACK else tuned.configs[job.config])
    result = compile_offline.Result(job, compile_offline._describe(config))
    signature, constexprs, attrs = compile_offline._compile_arguments(tuned.fn, job, config)
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        compiled = triton.compile(ASTSource(tuned.fn, signature, constexprs, attrs),
                                  target=GPUTarget(*compile_offline.TARGET),
                                  options={"num_warps": config.num_warps, "num_stages": config.num_stages})
    compile_offline._parse_ptxas(log.getvalue(), result)
    loop = main_loop(compiled.asm["sass"])
    per = f"{loop[0]} instructions for {loop[1]} wgmma" if loop else "no wgmma loop"
    return (f"{job.kernel} {result.config} {job.dtype} K={job.kernel_size} {job.activation or 'none'}: "
            f"{result.registers} registers, spills {result.spill_stores or 0}/{result.spill_loads or 0}, "
            f"notices {sorted(result.notices) or '-'}; main loop: {per}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("jobs", nargs="+", type=_parse_job, help="kernel:config:dtype:K[:activation]")
    args = parser.parse_args(argv)
    if problem := compile_offline.toolchain_problem():
        sys.exit(f"cannot compile for sm_90a: {problem}")
    versions = compile_offline._versions()
    print(f"Triton {versions['triton']}, ptxas {versions['ptxas']}, sm_90a")
    for job in args.jobs:
        print(measure(job), flush=True)


if __name__ == "__main__":
    main()
