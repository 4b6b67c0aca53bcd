"""Start-up time of the command line: how long a user waits for ``--help``, a usage error, a refusal that needs no
model, and ``import fe_adapter``; ``import torch`` and ``import timm`` for comparison.

    python -m benchmarks.startup                  # this checkout; results in benchmarks/results/
    python -m benchmarks.startup --compare 3c5b744  # also an older commit, the same cases (git archive)

Every case is a fresh process (``python -m fe_adapter ...`` or ``python -c ...``, this environment's Python),
timed from launch to exit; one untimed run first (the file cache warm), then ``--runs`` timed ones, the code
versions taking turns: the median and the range are reported. The load average of the machine is recorded
before and after, since other work on the CPU moves every number. An older commit is timed by exporting it
(``git archive``) into a temporary folder put first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from benchmarks.timing import cpu_name
from fe_adapter._json import write_json

ROOT = Path(__file__).resolve().parent.parent


def cases(folder: Path) -> dict[str, list[str]]:
    """Name -> the arguments after ``python``; the files they need are made in ``folder``."""
    held = folder / "run"
    held.mkdir(exist_ok=True)
    (held / "last.pt").write_bytes(b"")
    (folder / "adapters.safetensors").write_bytes(b"")
    return {
        "fe-adapter --help": ["-m", "fe_adapter", "--help"],
        "fe-adapter predict --help": ["-m", "fe_adapter", "predict", "--help"],
        "usage error: fe-adapter predict clip.mp4 (no --checkpoint)": ["-m", "fe_adapter", "predict", "clip.mp4"],
        "refusal: fe-adapter train into a folder that holds a run": ["-m", "fe_adapter", "train",
                                                                     f"run.out_dir={held}"],
        "refusal: fe-adapter predict missing.mp4": ["-m", "fe_adapter", "predict", str(folder / "missing.mp4"),
                                                     "--checkpoint", str(folder / "adapters.safetensors")],
        "import fe_adapter": ["-c", "import fe_adapter"],
        "import torch": ["-c", "import torch"],
        "import timm": ["-c", "import timm"],
        "python -c pass (the interpreter alone)": ["-c", "pass"],
    }


def time_case(arguments: list[str], runs: int, sources: dict[str, Path], cwd: Path) -> dict[str, dict]:
    """Per code version (label -> its folder, first on the path): seconds from launch to exit of
    ``python arguments`` and the exit status. The versions take turns, run by run, so that a change in the load
    of the machine falls on all of them alike."""
    seconds: dict[str, list[float]] = {label: [] for label in sources}
    status: dict[str, int] = {}
    for run in range(runs + 1):
        for label, source in sources.items():
            path = os.pathsep.join(filter(None, [str(source), os.environ.get("PYTHONPATH")]))
            started = time.perf_counter()
            finished = subprocess.run([sys.executable, *arguments], cwd=cwd, env={**os.environ, "PYTHONPATH": path},
                                      capture_output=True)
            if run:  # the first run warms the file cache
                seconds[label].append(time.perf_counter() - started)
            status[label] = finished.returncode
    return {label: {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "runs": runs,
                    "exit_status": status[label]} for label, times in seconds.items()}


def _checkout(commit: str, folder: Path) -> Path:
    """``commit``'s files in ``folder`` (git archive), for timing older code."""
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def _commit(ref: str) -> str:
    return subprocess.run(["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="timed runs per case (default 10)")
    parser.add_argument("--compare", metavar="COMMIT", help="also time this commit's code (e.g. the one before)")
    parser.add_argument("--name", help="results file name (default: startup-<cpu>-<date>)")
    args = parser.parse_args(argv)

    sources = {f"{_commit('HEAD')}{'' if not _dirty() else ' + uncommitted changes'}": ROOT}
    load_before = os.getloadavg()
    results: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if args.compare:
            sources[_commit(args.compare)] = _checkout(args.compare, scratch / "compare")
        (scratch / "work").mkdir()
        for name, arguments in cases(scratch / "work").items():
            results[name] = time_case(arguments, args.runs, sources, scratch / "work")
            print(f"{name}: " + ", ".join(f"{result['median_s']:.2f} s [{label}]"
                                          for label, result in results[name].items()), file=sys.stderr)
    load_after = os.getloadavg()

    import torch

    cpu = cpu_name()
    report = {"command": " ".join(["python -m benchmarks.startup", *(argv if argv is not None else sys.argv[1:])]),
              "date": date.today().isoformat(),
              "machine": {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
                          "torch": torch.__version__, "load_average_1min_before_after": [load_before[0],
                                                                                         load_after[0]]},
              "code": list(sources), "results": results}
    name = args.name or f"startup-{re.sub(r'[^a-z0-9]+', '-', cpu.lower()).strip('-')}-{date.today()}"
    path = ROOT / "benchmarks" / "results" / f"{name}.json"
    write_json(path, report)
    table = markdown(report)
    path.with_suffix(".md").write_text(table)
    print(table)
    print(f"wrote {path} and {path.with_suffix('.md')}", file=sys.stderr)
    return 0


def _dirty() -> bool:
    return bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip())


def markdown(report: dict) -> str:
    """The results as a table: median (min to max) seconds per case and code version."""
    machine = report["machine"]
    lines = [f"# Start-up of the command line, {report['date']}", "",
             f"`{report['command']}` on {machine['cpu']} ({machine['cores']} cores), Python {machine['python']}, "
             f"torch {machine['torch']}; load average (1 min) {machine['load_average_1min_before_after'][0]:.2f} "
             f"before, {machine['load_average_1min_before_after'][1]:.2f} after. Seconds from launch to exit of a "
             "fresh process: median (min to max) over "
             f"{next(iter(next(iter(report['results'].values())).values()))['runs']} runs; exit status in brackets.",
             "", "| case | " + " | ".join(f"code {label}" for label in report["code"]) + " |",
             "|---|" + "---|" * len(report["code"])]
    for name, by_code in report["results"].items():
        cells = [f"{r['median_s']:.2f} ({r['min_s']:.2f} to {r['max_s']:.2f}) [{r['exit_status']}]"
                 for r in (by_code[label] for label in report["code"])]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
