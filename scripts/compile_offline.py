"""Compile the Triton kernels for an H100 (sm_90a) without a GPU and tabulate what the compile reports.

For each kernel x autotune config x dtype variant: whether it compiles, the shared memory it asks for against
``launch.shared_memory_estimate`` and the H100's limit (does ``launch.usable_configs`` keep or prune it, and is
that right), registers, spills and ptxas's performance notices, the main loop's SASS instructions and wgmma
instructions (nvdisasm of the cubin), and the compile's seconds. Nothing runs: the numbers depend only on the
Triton and ptxas versions, so a CPU machine shows what a GPU would allocate before one is at hand.

    .venv/bin/python scripts/compile_offline.py --out benchmarks/results/offline-compile-sm90a.md

writes the markdown report and, next to it, the same records as JSON (``--json``, default: --out with .json),
one per compile, for tools (the deterministic-config test, the GPU quick check's compile-time estimate). Each
has one section per Triton version: a run replaces its own version's section and keeps the others. Needs torch
(to import fekernels) and a Triton with its NVIDIA backend (the wheel bundles ptxas and nvdisasm). For another
Triton's section, run it with that Triton's Python; if its venv has no torch, put a folder of
links to the project venv's site-packages, less triton, on PYTHONPATH (the Triton 3.6 section was made so).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import io
import json
import multiprocessing
import os
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

#: Bytes of shared memory an H100 block may opt in to (227 KB): what Triton checks a launch against.
H100_SHARED_MEMORY = 232448
TARGET = ("cuda", 90, 32)  # compute capability 9.0, warp size 32: Triton compiles it for sm_90a
#: Index of the tile ``usable_configs`` falls back to when no config fits (not among the autotuned configs).
FALLBACK = -1
GEMM_KERNELS = ("forward_down", "forward_up", "grad_h", "grad_x")
KERNELS = GEMM_KERNELS
ACTIVATION_KERNELS = ("forward_down", "grad_h")
#: The kernels with the temporal conv (in their epilogues): the only ones whose code depends on K.
CONV_KERNELS = ("forward_down", "grad_h")
#: The kernels' integer arguments (every other non-constexpr argument is a pointer); at run time Triton
#: specializes ints divisible by 16, which C and R usually are (and PART_STRIDE, R * (K + 2) + C at most, with
#: them); M, N, T, P and dilation it does not specialize (``launch.NOT_SPECIALISED``).
INTEGERS = {"M", "N", "C", "R", "T", "P", "dilation", "PART_STRIDE"}
DIVISIBLE_BY_16 = {"C", "R", "PART_STRIDE"}
#: Boolean switches, all on unless a job's variant turns one off.
SWITCHES = ("HAS_BD", "HAS_BC", "HAS_BU", "NEED_DZ", "NEED_WEIGHT_GRADS")
#: Dtype variant -> (triton.language dtype, IEEE switch of the GEMM kernels; None: the kernel has none).
DTYPES = {"bf16": ("bfloat16", False), "fp16": ("float16", False), "fp32 (TF32)": ("float32", False),
          "fp32 (IEEE)": ("float32", True), "fp32": ("float32", None)}
TITLE = ("# Offline compile of the Triton kernels for sm_90a (H100)\n\n"
         "Made by `scripts/compile_offline.py`, one section per Triton version; see docs/kernels.md, Autotuning.\n\n")


@dataclasses.dataclass(frozen=True)
class Job:
    """One compile: ``config`` indexes ``launch.KERNELS[kernel].configs`` (or is FALLBACK)."""

    kernel: str
    config: int
    dtype: str
    kernel_size: int
    activation: str | None = None
    switches_off: tuple[str, ...] = ()


@dataclasses.dataclass
class Result:
    """What one compile reported; sizes in bytes. ``kept``: launch.usable_configs keeps it on an H100;
    ``pruned_unclean``: it prunes the tile as one this Triton compiles unclean (launch.UNCLEAN_TILES)."""

    job: Job
    config: str
    error: str | None = None
    shared: int | None = None
    estimate: int | None = None
    kept: bool | None = None
    pruned_unclean: bool = False
    registers: int | None = None
    spill_stores: int | None = None
    spill_loads: int | None = None
    notices: dict[str, str] = dataclasses.field(default_factory=dict)
    main_loop_instructions: int | None = None
    main_loop_wgmma: int | None = None
    seconds: float | None = None
    cpu_seconds: float | None = None


#: The Ks compiled: every odd K up to 9 for bf16 and fp16 (the kernels with a conv, CONV_KERNELS, are the only
#: ones whose code depends on K: the others compile once, at K = 3), K = 3 for fp32 with TF32 (``--full``: 9 too).
KERNEL_SIZES = (3, 5, 7, 9)


def default_jobs(full: bool = False) -> list[Job]:
    """Every kernel and config in bf16 and fp16 at K 3, 5, 7 and 9 and in fp32 with TF32 at K 3, with no activation
    and with GELU, every switch on; plus grad_h without weight gradients (K 3, bf16). The fallback tile only where
    ``usable_configs`` would run it on an H100 (no config fits). ``full`` adds fp32 at K 9, fp32 without TF32 (which
    the op routes to the reference) and every activation."""
    launch = _launch_module()
    from fekernels._activations import ACTIVATIONS

    dtypes = ["bf16", "fp16", "fp32 (TF32)", *(["fp32 (IEEE)"] if full else [])]
    activations = ACTIVATIONS if full else (None, "gelu")
    jobs = []
    for kernel in KERNELS:
        configs = launch.KERNELS[kernel].configs
        acts = activations if kernel in ACTIVATION_KERNELS else (None,)
        for dtype in dtypes:
            sizes = KERNEL_SIZES if dtype in ("bf16", "fp16") or full else KERNEL_SIZES[:1]
            element_size = {"bfloat16": 2, "float16": 2, "float32": 4}[DTYPES[dtype][0]]
            for k in sizes if kernel in CONV_KERNELS else sizes[:1]:
                falls_back = all(launch.shared_memory_estimate(kernel, config, k, element_size) > H100_SHARED_MEMORY
                                 for config in configs)
                indices = [*range(len(configs)), *([FALLBACK] if falls_back else [])]
                jobs += [Job(kernel, config, dtype, k, act) for config in indices for act in acts]
        if kernel == "grad_h":
            jobs += [Job(kernel, config, "bf16", 3, act, ("NEED_WEIGHT_GRADS",))
                     for config in range(len(configs)) for act in acts]
    return jobs


def toolchain_problem() -> str | None:
    """Why this Triton cannot compile for sm_90a (no NVIDIA backend, no ptxas), or None."""
    try:
        from triton.backends.nvidia.compiler import get_ptxas
    except ImportError as error:
        return f"this Triton build has no NVIDIA backend ({error})"
    try:
        path = get_ptxas(TARGET[1]).path
    except Exception as error:  # noqa: BLE001 (Triton raises various errors when the binary is missing)
        return f"Triton finds no ptxas ({error})"
    return None if path and os.access(path, os.X_OK) else f"ptxas at {path!r} is not an executable"


def _launch_module():
    """fekernels' launch module, imported with the interpreter off (under it the kernels would not compile and
    ``launch.KERNELS`` would hold the interpreter's single config)."""
    os.environ["TRITON_INTERPRET"] = "0"
    import triton

    from fekernels.triton_kernels import launch

    if not isinstance(launch.kernels.forward_up_kernel, triton.runtime.JITFunction):
        raise RuntimeError("fekernels was imported under TRITON_INTERPRET=1 in this process; "
                           "run this tool in a fresh process with TRITON_INTERPRET unset or 0")
    return launch


def _on_h100(launch, name: str, configs: list, kernel_size: int, element_size: int) -> list:
    """``launch.usable_configs`` at the H100's shared-memory limit."""
    return launch.usable_configs(name, configs, kernel_size, element_size, limit=H100_SHARED_MEMORY)


def _describe(config) -> str:
    size = "x".join(str(config.kwargs[key]) for key in ("BLOCK_M", "BLOCK_N", "BLOCK_K") if key in config.kwargs)
    return f"{size} w{config.num_warps} s{config.num_stages}"


def _compile_arguments(fn, job: Job, config) -> tuple[dict, dict, dict]:
    """The signature, constexprs and attributes that JITFunction.run would derive for this job's launch:
    16-byte aligned pointers (fp32 for the per-tile partial sums), ints as in INTEGERS/DIVISIBLE_BY_16."""
    import triton.language as tl

    from fekernels._activations import ACTIVATION_CODES

    dtype, ieee = DTYPES[job.dtype]
    element = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}[dtype]
    values = {"K": job.kernel_size, "ACTIVATION": ACTIVATION_CODES[job.activation], "DTYPE": getattr(tl, dtype),
              "UPCAST": False, "IEEE": ieee, **config.kwargs}
    values.update({switch: switch not in job.switches_off for switch in SWITCHES})
    signature, constexprs, attrs = {}, {}, {}
    for index, param in enumerate(fn.params):
        name = param.name
        if param.is_constexpr:
            if values.get(name) is None:
                raise ValueError(f"{fn.__name__}: no value for constexpr {name} (update scripts/compile_offline.py)")
            signature[name], constexprs[name] = "constexpr", values[name]
        elif name in INTEGERS:
            signature[name] = "i32"
            if name in DIVISIBLE_BY_16:
                attrs[(index,)] = [["tt.divisibility", 16]]
        else:
            signature[name] = "*fp32" if name.endswith("_PART") else f"*{element}"
            attrs[(index,)] = [["tt.divisibility", 16]]
    return signature, constexprs, attrs


def _parse_ptxas(log: str, result: Result) -> None:
    """Registers, spills and the performance notices (codes C7xxx) from ptxas's -v log."""
    if match := re.search(r"Used (\d+) registers", log):
        result.registers = int(match.group(1))
    if match := re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", log):
        result.spill_stores, result.spill_loads = map(int, match.groups())
    for code, text in re.findall(r"\((C7\d{3})\) (.*)", log):
        result.notices.setdefault(code, re.sub(r" in the function '\w+'", "", text).strip())


#: A SASS instruction line of nvdisasm: "        /*2ce0*/               @P6 BRA `(.L_x_1) ;".
_SASS_INSTRUCTION = re.compile(r"^\s*/\*[0-9a-f]+\*/\s+(.*?)\s*;?\s*$")
_SASS_LABEL = re.compile(r"^(\.L_x_\d+):")
_SASS_BRANCH = re.compile(r"\bBRA\b.*\((\.L_x_\d+)\)")
_SASS_WGMMA = re.compile(r"\b[A-Z]*GMMA\.")  # wgmma.mma_async: HGMMA (fp16/bf16/tf32), IGMMA, QGMMA


def parse_main_loop(sass: str) -> tuple[int | None, int | None]:
    """(instructions, wgmma instructions) of the kernel's main loop in nvdisasm's listing: of the loops (a backward
    branch to a label), the one with the most wgmma instructions, then the longest; (None, None) without a loop."""
    labels: dict[str, int] = {}
    instructions: list[str] = []
    loops: list[tuple[int, int]] = []
    for line in sass.splitlines():
        if match := _SASS_LABEL.match(line):
            labels[match.group(1)] = len(instructions)
        elif match := _SASS_INSTRUCTION.match(line):
            instructions.append(match.group(1))
            branch = _SASS_BRANCH.search(match.group(1))
            if branch and branch.group(1) in labels and labels[branch.group(1)] < len(instructions) - 1:
                loops.append((labels[branch.group(1)], len(instructions)))
    if not loops:
        return None, None
    counted = [(sum(bool(_SASS_WGMMA.search(i)) for i in instructions[start:end]), end - start)
               for start, end in loops]
    wgmma, length = max(counted)
    return length, wgmma


def _cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (ptxas): what a compile costs on an idle core, which
    a loaded machine inflates far less than wall-clock seconds."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _disassemble(cubin: bytes) -> str:
    """nvdisasm's listing of a cubin (the nvdisasm next to the ptxas Triton uses)."""
    from triton.backends.nvidia.compiler import get_ptxas

    nvdisasm = Path(get_ptxas(TARGET[1]).path).with_name("nvdisasm")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as file:
        file.write(cubin)
        file.flush()
        return subprocess.run([str(nvdisasm), "-c", file.name], capture_output=True, text=True, check=True).stdout


def compile_job(job: Job) -> Result:
    """Compile one job for sm_90a and collect what the compile reports (a failed compile is a result too).
    Sets Triton's environment switches in this process, so call it in a worker or a subprocess."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    os.environ.update(TRITON_DUMP_PTXAS_LOG="1", TRITON_ALWAYS_COMPILE="1")  # the log is printed when ptxas runs
    launch = _launch_module()
    tuned = launch.KERNELS[job.kernel]
    element_size = {"bfloat16": 2, "float16": 2, "float32": 4}[DTYPES[job.dtype][0]]
    if job.config == FALLBACK:
        config = _on_h100(launch, job.kernel, [], job.kernel_size, element_size)[0]
    else:
        config = tuned.configs[job.config]
    result = Result(job, _describe(config))
    if job.kernel in GEMM_KERNELS:
        result.estimate = launch.shared_memory_estimate(job.kernel, config, job.kernel_size, element_size)
        result.kept = job.config == FALLBACK or config in _on_h100(
            launch, job.kernel, [config], job.kernel_size, element_size)
        result.pruned_unclean = (not result.kept and result.estimate <= H100_SHARED_MEMORY
                                 and launch.config_tile(config) in launch.unclean_tiles(job.kernel))
    log = io.StringIO()
    try:
        signature, constexprs, attrs = _compile_arguments(tuned.fn, job, config)
        start, cpu_start = time.perf_counter(), _cpu_seconds()
        with contextlib.redirect_stdout(log):
            compiled = triton.compile(ASTSource(tuned.fn, signature, constexprs, attrs), target=GPUTarget(*TARGET),
                                      options={"num_warps": config.num_warps, "num_stages": config.num_stages})
        result.seconds = round(time.perf_counter() - start, 2)
        result.cpu_seconds = round(_cpu_seconds() - cpu_start, 2)
    except Exception as error:  # noqa: BLE001 (a kernel that does not compile is what the table reports)
        result.error = f"{type(error).__name__}: {str(error).strip()}"
    else:
        result.shared = compiled.metadata.shared
        _parse_ptxas(log.getvalue(), result)
        result.main_loop_instructions, result.main_loop_wgmma = parse_main_loop(_disassemble(compiled.asm["cubin"]))
    return result


def _versions() -> dict[str, str]:
    import triton
    from triton.backends.nvidia.compiler import get_ptxas_version

    ptxas = get_ptxas_version(TARGET[1])
    match = re.search(r"release ([\d.]+), (V[\d.]+)", ptxas)
    return {"triton": triton.__version__, "ptxas": f"{match.group(1)} ({match.group(2)})" if match else ptxas}


def _h100_verdict(result: Result) -> str:
    """What usable_configs does with the config on an H100, flagged where the measured allocation disagrees."""
    if result.kept is None:
        verdict = "not pruned"
    elif result.job.config == FALLBACK:
        verdict = "fallback"
    elif result.pruned_unclean:
        return "pruned: unclean under this Triton"
    else:
        verdict = "kept" if result.kept else "pruned"
    if result.shared is None:
        return verdict
    fits = result.shared <= H100_SHARED_MEMORY
    if verdict == "pruned" and fits:
        return "pruned, **but fits**"
    if verdict != "pruned" and not fits:
        return f"{verdict}, **does not fit**"
    return verdict


def _row(result: Result) -> str:
    job = result.job
    status = "ok" if result.error is None else "**error**: " + result.error.splitlines()[0][:100].replace("|", "\\|")
    estimate = "-" if result.estimate is None else str(result.estimate)
    if result.estimate is not None and result.shared is not None and result.shared > result.estimate:
        estimate += " **< measured**"
    spills = "-" if not (result.spill_stores or result.spill_loads) else f"{result.spill_stores}/{result.spill_loads}"
    activation = (job.activation or "none") if job.kernel in ACTIVATION_KERNELS else "-"
    cells = [job.kernel, result.config, job.dtype, job.kernel_size, activation,
             ", ".join(f"{s}=False" for s in job.switches_off) or "-", status, _or_dash(result.shared), estimate,
             _h100_verdict(result), _or_dash(result.registers), spills, ", ".join(sorted(result.notices)) or "-",
             _or_dash(result.main_loop_instructions), _or_dash(result.main_loop_wgmma), _or_dash(result.seconds),
             _or_dash(result.cpu_seconds)]
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def _or_dash(value) -> str:
    return "-" if value is None else str(value)


def _summary(results: list[Result]) -> list[str]:
    """Counts computed from the rows: compile errors, estimate below measured, wrong pruning, spills."""
    compiled = [r for r in results if r.error is None]
    estimated = [r for r in compiled if r.estimate is not None]
    verdicts = [_h100_verdict(r) for r in results]
    margins = [r.estimate - r.shared for r in estimated]
    return [
        f"- {len(results)} compiles: {len(compiled)} ok, {len(results) - len(compiled)} failed.",
        f"- Estimate vs measured shared memory (GEMM kernels, {len(estimated)} compiles): the estimate is below the "
        f"measured allocation in {sum(m < 0 for m in margins)} of them"
        + (f"; estimate - measured ranges from {min(margins)} to {max(margins)} bytes." if margins else "."),
        f"- On an H100: {sum(v.startswith('pruned') for v in verdicts)} pruned, "
        f"{sum(r.pruned_unclean for r in results)} of them as unclean under this Triton "
        f"(`launch.UNCLEAN_TILES`); {sum(v.endswith('but fits**') for v in verdicts)} pruned although they would fit; "
        f"{sum(v.endswith('does not fit**') for v in verdicts)} kept although the allocation exceeds "
        f"{H100_SHARED_MEMORY} bytes.",
        f"- Registers at ptxas's cap of 255 in {sum(r.registers == 255 for r in compiled)} of {len(compiled)} "
        f"compiles, spills in {sum(bool(r.spill_stores or r.spill_loads) for r in compiled)}"
        + (f"; no ptxas log in {unparsed}." if (unparsed := sum(r.registers is None for r in compiled)) else "."),
    ]


def render(results: list[Result], command: str) -> str:
    """The markdown report: header, summary, one table row per compile, the notices' texts and the errors."""
    versions = _versions()
    notices = {code: text for r in results for code, text in r.notices.items()}
    lines = [
        f"## Triton {versions['triton']}, ptxas {versions['ptxas']}, sm_90a (H100)", "",
        f"Compiled on {datetime.date.today().isoformat()} without a GPU by `{command}`. Shared memory: the bytes "
        "the launch requests (`metadata.shared`); estimate: `launch.shared_memory_estimate`; H100: whether "
        f"`launch.usable_configs` keeps the config at the H100's limit of {H100_SHARED_MEMORY} bytes (fallback: "
        "the tile it returns when none fits; pruned: unclean under this Triton: a tile `launch.UNCLEAN_TILES` "
        "prunes for this Triton version although it fits). Registers, spills (stores/loads, bytes) and notices: "
        "ptxas -v of the same compile. Main loop: SASS instructions of the loop with the most wgmma instructions "
        "(nvdisasm of the cubin), and how many of those are wgmma; seconds: the compile's wall-clock time on this "
        "machine (loaded: see the load average in the JSON), CPU seconds: its CPU time, ptxas included, which load "
        "inflates far less. Pointers 16-byte aligned, C and R divisible by 16, other ints not specialized; every "
        "switch on unless the variant says otherwise.", "",
        *_summary(results), "",
        "| kernel | config | dtype | K | activation | variant | status | shared memory | estimate | H100 "
        "| registers | spills | ptxas notices | main loop instructions | wgmma | seconds | CPU seconds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *(_row(r) for r in results), "",
    ]
    lines += [f"- {code}: {text}" for code, text in sorted(notices.items())]
    for r in (r for r in results if r.error is not None):
        lines += ["", f"Error, {r.job.kernel} {r.config} {r.job.dtype} K={r.job.kernel_size}:", "```",
                  *r.error.splitlines()[:30], "```"]
    return "\n".join(lines) + "\n"


def record(result: Result) -> dict:
    """One compile as a JSON record."""
    job = result.job
    return {"kernel": job.kernel, "config": result.config, "dtype": job.dtype, "K": job.kernel_size,
            "activation": job.activation, "variant": [f"{s}=False" for s in job.switches_off],
            "error": result.error, "shared": result.shared, "estimate": result.estimate, "kept": result.kept,
            "h100": _h100_verdict(result), "registers": result.registers, "spill_stores": result.spill_stores,
            "spill_loads": result.spill_loads, "C7515": "C7515" in result.notices,
            "notices": sorted(result.notices), "main_loop_instructions": result.main_loop_instructions,
            "main_loop_wgmma": result.main_loop_wgmma, "compile_seconds": result.seconds,
            "compile_cpu_seconds": result.cpu_seconds}


def merge_json(existing: dict, results: list[Result], command: str) -> dict:
    """``existing`` (this tool's JSON, or {}) with this Triton version's section replaced by ``results``."""
    versions = _versions()
    sections = dict(existing.get("sections", {}))
    sections[versions["triton"]] = {**versions, "target": "sm_90a", "date": datetime.date.today().isoformat(),
                                    "command": command, "machine": _machine(), "cpus": os.cpu_count(),
                                    "load_average_at_end": [round(load, 2) for load in os.getloadavg()],
                                    "records": [record(r) for r in results]}
    return {"title": TITLE.splitlines()[0].removeprefix("# "), "sections": sections}


def _machine() -> str:
    """The CPU's model name (the compile seconds depend on it)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def merge(report: str, section: str) -> str:
    """``report`` with ``section`` in place of the section of the same Triton version, or added at the end."""
    header = section.split(",", 1)[0] + ","  # "## Triton 3.8.0,"
    parts = [part.rstrip("\n") for part in re.split(r"(?m)^(?=## )", report)]
    merged = [section.rstrip("\n") if part.startswith(header) else part for part in parts]
    if merged == parts:
        merged.append(section.rstrip("\n"))
    return "\n\n".join(merged) + "\n"


def _sort_key(result: Result) -> tuple:
    from fekernels._activations import ACTIVATIONS

    job = result.job
    return (KERNELS.index(job.kernel), job.switches_off, job.config == FALLBACK, job.config,
            list(DTYPES).index(job.dtype), job.kernel_size, ACTIVATIONS.index(job.activation))


def _selected(job: Job, only: list[str], parser: argparse.ArgumentParser) -> bool:
    """Whether ``job`` passes the --only FIELD=VALUE filters (values compared as written: 3, bf16, None): for
    every field named, one of the values given for it."""
    fields = {field.name for field in dataclasses.fields(Job)}
    wanted: dict[str, set[str]] = {}
    for condition in only:
        field, _, value = condition.partition("=")
        if field not in fields or not _:
            parser.error(f"--only {condition!r}: expected FIELD=VALUE with FIELD one of {sorted(fields)}")
        wanted.setdefault(field, set()).add(value)
    return all(str(getattr(job, field)) in values for field, values in wanted.items())


def _from_record(record: dict, launch) -> Result:
    """A Result back from its JSON record (``record``'s inverse; notice texts are not recorded, only codes)."""
    configs = [_describe(config) for config in launch.KERNELS[record["kernel"]].configs]
    config = configs.index(record["config"]) if record["config"] in configs else FALLBACK
    job = Job(record["kernel"], config, record["dtype"], record["K"], record["activation"],
              tuple(variant.removesuffix("=False") for variant in record["variant"]))
    return Result(job, record["config"], record["error"], record["shared"], record["estimate"], record["kept"],
                  record["h100"] == "pruned: unclean under this Triton", record["registers"], record["spill_stores"],
                  record["spill_loads"], {code: "(text in the run that compiled it)" for code in record["notices"]},
                  record["main_loop_instructions"], record["main_loop_wgmma"], record["compile_seconds"],
                  record["compile_cpu_seconds"])


def kept_from_previous_run(previous: dict, jobs: list[Job], launch) -> tuple[list[Result], dict | None]:
    """The records of this Triton version's section in ``previous`` (this tool's JSON) whose jobs are not among
    ``jobs``, as Results, and that section (None if there is none): an --only run recompiles its jobs and keeps
    the others' rows."""
    section = previous.get("sections", {}).get(_versions()["triton"])
    if section is None:
        return [], None
    kept = [_from_record(record, launch) for record in section["records"]]
    return [result for result in kept if result.job not in set(jobs)], section


def _command(argv: list[str]) -> str:
    """This run's command line, with its PYTHONPATH, paths under the working directory made relative."""

    def relative(path: str) -> str:
        with contextlib.suppress(ValueError):
            return str(Path(path).relative_to(Path.cwd())) or "."
        return path

    words = ["python", relative(sys.argv[0]), *argv]  # the interpreter's own path says nothing to a reader
    if python_path := os.environ.get("PYTHONPATH"):
        words.insert(0, "PYTHONPATH=" + os.pathsep.join(relative(entry) for entry in python_path.split(os.pathsep)))
    return shlex.join(words)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write the markdown report here (default: stdout)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="compiles in parallel")
    parser.add_argument("--json", type=Path, help="write the JSON records here (default: --out with .json)")
    parser.add_argument("--full", action="store_true", help="add fp16 and every activation")
    parser.add_argument("--only", action="append", default=[], metavar="FIELD=VALUE",
                        help="compile only the jobs whose Job field has this value (repeatable: one of the values "
                             "given for a field, every field given; e.g. dtype=bf16, kernel_size=3, "
                             "activation=None): a subset, for a loaded machine. The other rows of this Triton's "
                             "section are kept from the previous run")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    existing = args.out.read_text() if args.out and args.out.is_file() else TITLE
    if not existing.startswith(TITLE.splitlines()[0]):
        parser.error(f"--out {args.out} exists and is not a report of this tool; refusing to change it")
    if problem := toolchain_problem():
        sys.exit(f"cannot compile for sm_90a: {problem}")
    jobs = [job for job in default_jobs(args.full) if _selected(job, args.only, parser)]
    json_path = args.json or (args.out and args.out.with_suffix(".json"))
    previous = json.loads(json_path.read_text()) if json_path and json_path.is_file() else {}
    kept, previous_section = kept_from_previous_run(previous, jobs, _launch_module()) if args.only else ([], None)
    command = _command(argv)
    with tempfile.TemporaryDirectory(prefix="triton-cache-") as cache:
        os.environ["TRITON_CACHE_DIR"] = cache  # inherited by the workers; keeps ~/.triton/cache clean
        context = multiprocessing.get_context("spawn")  # fresh workers: no CUDA or interpreter state inherited
        with context.Pool(min(args.jobs, len(jobs))) as pool:
            results = list(tqdm(pool.imap_unordered(compile_job, jobs), total=len(jobs), desc="compiling",
                                unit="kernel", file=sys.stderr))
    # An --only run keeps the other rows of its section: the section lists every run that made its rows.
    commands = [*previous_section.get("commands", [previous_section["command"]]), command] if previous_section \
        else [command]
    described = "` then `".join(commands)
    results = sorted(results + kept, key=_sort_key)
    report = merge(existing, render(results, described))
    if args.out is None:
        sys.stdout.write(report)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
        print(f"wrote {args.out}", file=sys.stderr)
    if json_path:
        merged = merge_json(previous, results, command)
        merged["sections"][_versions()["triton"]]["commands"] = commands
        json_path.write_text(json.dumps(merged, indent=1, allow_nan=False) + "\n")
        print(f"wrote {json_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
