"""Turn a pytest-benchmark JSON run into results/<device>-<date>.json and .md, plus a PNG of time vs batch.

    pytest benchmarks/ --benchmark-json=run.json
    python -m benchmarks.report run.json [--out benchmarks/results]

Each row: median time with its interquartile range, and the ratios of every implementation against
``eager_st`` (ST-Adapter's layout), ``torch`` (our reference), the best ``compiled`` variant, and the
roofline (the larger of bytes / copy bandwidth and FLOPs / matmul rate, both measured in the same run).
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

from fe_adapter._json import write_json


def _rows(run: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for bench in run["benchmarks"]:
        stats, info = bench["stats"], bench["extra_info"]
        rows.append({"group": bench["group"], "impl": info["impl"], "passes": info.get("passes"),
                     "median_s": stats["median"], "iqr_s": stats["iqr"], "rounds": stats["rounds"], **info})
    return rows


def _ratios(rows: list[dict[str, Any]]) -> None:
    """Add speed-ups against the baselines of the same group (>1: faster than the baseline)."""
    by_group: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        by_group[row["group"]][row["impl"]] = row
    for group in by_group.values():
        compiled = [r["median_s"] for name, r in group.items() if name.startswith("compiled")]
        for row in group.values():
            for baseline, time in (("eager_st", group.get("eager_st", {}).get("median_s")),
                                   ("torch", group.get("torch", {}).get("median_s")),
                                   ("compiled", min(compiled) if compiled else None)):
                row[f"speedup_vs_{baseline}"] = time / row["median_s"] if time else None
            if row.get("roofline_s"):
                row["fraction_of_roofline"] = row["roofline_s"] / row["median_s"]


def _markdown(machine: dict[str, Any], rows: list[dict[str, Any]], command: str) -> str:
    lines = [f"# Benchmarks on {machine.get('device')}", "",
             f"torch {machine.get('torch')}, triton {machine.get('triton')}, timm {machine.get('timm')}, "
             f"{machine.get('cpu_threads')} CPU threads. Command: `{command}`", ""]
    first = next((r for r in rows if r.get("bandwidth_bytes_per_s")), None)
    if first:
        lines += [f"Measured ceilings: copy {first['bandwidth_bytes_per_s'] / 1e9:.0f} GB/s, "
                  f"{first['matmul_dtype']} matmul {first['matmul_flops_per_s'] / 1e12:.2f} TFLOP/s.", ""]
    lines += ["| group | impl | median ms | IQR ms | vs eager_st | vs torch | vs compiled | of roofline |",
              "|---|---|---|---|---|---|---|---|"]

    def fmt(value: float | None, suffix: str = "x") -> str:
        return "" if value is None else f"{value:.2f}{suffix}"

    for row in sorted(rows, key=lambda r: (r["group"], r["median_s"])):
        roofline = row.get("fraction_of_roofline")
        lines.append(f"| {row['group']} | {row['impl']} | {row['median_s'] * 1e3:.3f} | {row['iqr_s'] * 1e3:.3f} | "
                     f"{fmt(row.get('speedup_vs_eager_st'))} | {fmt(row.get('speedup_vs_torch'))} | "
                     f"{fmt(row.get('speedup_vs_compiled'))} | {'' if roofline is None else f'{roofline:.0%}'} |")
    memory = [r for r in rows if r.get("peak_memory_bytes")]
    if memory:
        lines += ["", "| training step | peak memory GB |", "|---|---|"]
        lines += [f"| {r['group']} {r['impl']} | {r['peak_memory_bytes'] / 1e9:.2f} |" for r in memory]
    return "\n".join(lines) + "\n"


def _plot(rows: list[dict[str, Any]], path: Path) -> bool:
    """Time vs clips per batch for each implementation, one panel per shape family and pass."""
    families: dict[str, dict[str, list[tuple[int, float]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        match = re.search(r"-B(\d+)-", row["group"])
        if match and row.get("passes") in ("forward", "forward_backward"):
            family = row["group"].replace(match.group(0), "-")
            families[family][row["impl"]].append((int(match.group(1)), row["median_s"] * 1e3))
    families = {k: v for k, v in families.items() if any(len(points) > 1 for points in v.values())}
    if not families:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(4, len(families))
    rows_count = -(-len(families) // columns)
    figure, axes = plt.subplots(rows_count, columns, figsize=(4 * columns, 3.2 * rows_count), squeeze=False)
    for axis, (family, impls) in zip(axes.flat, sorted(families.items()), strict=False):
        for impl, points in sorted(impls.items()):
            points.sort()
            axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=impl)
        axis.set_title(family, fontsize=7)
        axis.set_xlabel("clips per batch")
        axis.set_ylabel("ms")
        axis.set_yscale("log")
    axes.flat[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="pytest-benchmark JSON (--benchmark-json)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--command", default="pytest benchmarks/ --benchmark-json=run.json")
    args = parser.parse_args(argv)
    run = json.loads(args.run.read_text())
    machine = run["machine_info"]
    rows = _rows(run)
    _ratios(rows)
    device = re.sub(r"[^A-Za-z0-9]+", "-", str(machine.get("device") or "unknown")).strip("-").lower()
    stem = args.out / f"{device}-{date.today().isoformat()}"
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(stem.with_suffix(".json"), {"machine": machine, "rows": rows})
    stem.with_suffix(".md").write_text(_markdown(machine, rows, args.command))
    _plot(rows, stem.with_suffix(".png"))
    print(stem.with_suffix(".md").read_text())
    return stem.with_suffix(".md")


if __name__ == "__main__":
    main()
