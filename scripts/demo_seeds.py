"""Run the demo for several seeds and write the mean and spread of its numbers, with the machine.

    python scripts/demo_seeds.py                      # seeds 0 1 2, as `make demo` runs (default torch threads)
    python scripts/demo_seeds.py --seeds 0 1 2 --out benchmarks/results

Each seed is one ``python -m fe_adapter demo --seed N`` process (into runs/demo_seeds/seed_N), timed as a
whole and with the OpenMP setting of ``make demo``. Writes ``<out>/demo-<cpu>-<date>.json`` (every seed's
results) and ``.md`` (the table the README quotes).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fe_adapter._json import write_json  # noqa: E402
from fe_adapter.demo import MODELS  # noqa: E402

STATIC = ("neutral", "happy", "sad", "surprise")


def _cpu_seconds_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_seed(seed: int, out: Path) -> dict:
    """One whole demo process; its demo.json plus the command's wall and CPU time."""
    cpu, start, load = _cpu_seconds_of_children(), time.perf_counter(), os.getloadavg()[0]
    command = [sys.executable, "-m", "fe_adapter", "demo", "--seed", str(seed), "--out", str(out)]
    subprocess.run(command, check=True, cwd=ROOT, env={"GOMP_SPINCOUNT": "1000", **os.environ})  # as make demo
    results = json.loads((out / "demo.json").read_text())
    results["command_seconds"] = time.perf_counter() - start
    results["command_cpu_seconds"] = _cpu_seconds_of_children() - cpu
    results["load_average"] = [load, os.getloadavg()[0]]  # 1-minute load before and after: was the CPU shared?
    return results


def _numbers(results: dict) -> dict[str, float]:
    """The numbers the README reports, for one seed."""
    numbers = {"image model accuracy": results["image_accuracy"]}
    for name, model in results["models"].items():
        recall = model["per_class_recall"]
        pair = model["order_only"]
        numbers[f"{name}: UAR"] = model["uar"]
        numbers[f"{name}: correct on the order-only pair"] = pair["accuracy"]
        numbers[f"{name}: recall {pair['classes'][0]}"] = recall[pair["classes"][0]]
        numbers[f"{name}: recall {pair['classes'][1]}"] = recall[pair["classes"][1]]
        numbers[f"{name}: mean recall of the static classes"] = statistics.fmean(recall[c] for c in STATIC)
        numbers[f"{name}: trainable share"] = model["trainable_parameters"] / model["total_parameters"]
    numbers["seconds (whole command)"] = results["command_seconds"]
    numbers["CPU seconds (whole command)"] = results["command_cpu_seconds"]
    return numbers


def summarise(runs: list[dict]) -> dict[str, dict[str, float]]:
    """Mean, sample standard deviation, min and max of every reported number over the seeds."""
    per_seed = [_numbers(results) for results in runs]
    summary = {}
    for key in per_seed[0]:
        values = [numbers[key] for numbers in per_seed]
        summary[key] = {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                        "min": min(values), "max": max(values), "per_seed": values}
    return summary


def markdown(summary: dict, runs: list[dict], host: dict, command: str) -> str:
    seeds = ", ".join(str(results["seed"]) for results in runs)
    lines = [f"# The synthetic demo over seeds {seeds}", "",
             f"`{command}` on {host['cpu']} ({host['cores']} cores, torch {host['torch']} with "
             f"{host['torch_threads']} threads, OpenMP settings {host.get('openmp') or 'default'}), "
             f"{date.today().isoformat()}.", "",
             "| | mean | std | min | max |", "|---|---|---|---|---|"]
    for key, stats in summary.items():
        if "seconds" in key:
            cells = [f"{stats[s]:.0f} s" for s in ("mean", "std", "min", "max")]
        else:
            cells = [f"{stats[s]:.1%}" for s in ("mean", "std", "min", "max")]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines += ["", "Per seed:", ""]
    for results in runs:
        pairs = ", ".join(f"{name} {model['order_only']['correct']}/{model['order_only']['clips']}"
                          for name, model in results["models"].items())
        lines.append(f"- seed {results['seed']}: image model {results['image_accuracy']:.1%}; correct on the "
                     f"order-only pair: {pairs}; {results['command_seconds']:.0f} s "
                     f"({results['command_cpu_seconds']:.0f} s CPU), load average "
                     f"{results['load_average'][0]:.1f} before, {results['load_average'][1]:.1f} after")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "demo_seeds", help="the demos' output folders")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="where the summary goes")
    args = parser.parse_args(argv)
    runs = [run_seed(seed, args.runs / f"seed_{seed}") for seed in args.seeds]
    host = runs[0]["machine"]  # as the demo recorded it: with its threads and OpenMP settings
    summary = summarise(runs)
    slug = re.sub(r"[^a-z0-9]+", "-", host["cpu"].lower()).strip("-")
    stem = args.out / f"demo-{slug}-{date.today().isoformat()}"
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python scripts/demo_seeds.py" + (f" --seeds {' '.join(map(str, args.seeds))}"
                                                if args.seeds != [0, 1, 2] else "")
    write_json(stem.with_suffix(".json"), {"command": command, "machine": host, "summary": summary,
                                           "models": list(MODELS), "runs": runs})
    stem.with_suffix(".md").write_text(markdown(summary, runs, host, command))
    print(stem.with_suffix(".md").read_text())
    return stem.with_suffix(".md")


if __name__ == "__main__":
    main()
