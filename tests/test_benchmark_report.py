"""The benchmark tooling: report.py's ratios and tables, the correctness check that precedes every timing,
and the headline script on tiny shapes."""

from __future__ import annotations

import json

import pytest
import torch

import fekernels
from benchmarks import cases, headline, report


def _bench(group, impl, median, roofline=None):
    info = {"impl": impl, "passes": "forward", "roofline_s": roofline, "bandwidth_bytes_per_s": 2e12,
            "matmul_flops_per_s": 5e14, "matmul_dtype": "bfloat16"}
    return {"group": group, "stats": {"median": median, "iqr": median / 10, "rounds": 10}, "extra_info": info}


def test_report_ratios_and_files(tmp_path):
    run = {
        "machine_info": {"device": "NVIDIA H100 80GB HBM3", "torch": "2.11", "triton": "3.6", "timm": "1.0",
                         "cpu_threads": 16},
        "benchmarks": [
            _bench("vit_b16-B1-fwd", "eager_st", 4e-3), _bench("vit_b16-B1-fwd", "torch", 2e-3),
            _bench("vit_b16-B1-fwd", "compiled", 1.6e-3), _bench("vit_b16-B1-fwd", "compiled_max_autotune", 1e-3),
            _bench("vit_b16-B1-fwd", "triton", 5e-4, roofline=4e-4),
            _bench("vit_b16-B8-fwd", "eager_st", 2e-2), _bench("vit_b16-B8-fwd", "triton", 2e-3, roofline=1e-3),
        ],
    }
    (tmp_path / "run.json").write_text(json.dumps(run))
    markdown = report.main([str(tmp_path / "run.json"), "--out", str(tmp_path / "results")])
    rows = {(r["group"], r["impl"]): r for r in json.loads(markdown.with_suffix(".json").read_text())["rows"]}
    triton = rows[("vit_b16-B1-fwd", "triton")]
    assert triton["speedup_vs_eager_st"] == 8.0 and triton["speedup_vs_torch"] == 4.0
    assert triton["speedup_vs_compiled"] == 2.0  # against the best compiled variant
    assert abs(triton["fraction_of_roofline"] - 0.8) < 1e-12
    text = markdown.read_text()
    assert markdown.name.startswith("nvidia-h100-80gb-hbm3-")
    assert "| vit_b16-B1-fwd | triton | 0.500 | 0.050 | 8.00x | 4.00x | 2.00x | 80% |" in text
    assert "copy 2000 GB/s, bfloat16 matmul 500.00 TFLOP/s" in text
    assert markdown.with_suffix(".png").is_file()  # time vs batch: B1 and B8 for eager_st and triton


def test_a_wrong_implementation_is_refused_before_it_is_timed():
    shape = cases.OpShape("tiny", 1, 2, 5, 16, 8, 3, 1, torch.float32)
    item = cases.input_sets(shape, torch.device("cpu"), with_grad=True)[0]
    cases.check_op(fekernels.fe_adapter_reference, item, shape.options, with_backward=True)

    def off_by_a_little(x, *weights, **options):
        return fekernels.fe_adapter_reference(x, *weights, **options) * (1 + 1e-3)

    def wrong_gradient(x, *weights, **options):  # right values, but x's gradient is lost
        return fekernels.fe_adapter_reference(x.detach(), *weights, **options) + 0 * x.sum()

    with pytest.raises(AssertionError, match="out: error"):
        cases.check_op(off_by_a_little, item, shape.options, with_backward=False)
    with pytest.raises(AssertionError, match="x: error"):
        cases.check_op(wrong_gradient, item, shape.options, with_backward=True)


def test_headline_table_on_tiny_shapes(tmp_path):
    result = headline.run(tmp_path, quick=True, command="python -m benchmarks.headline --quick")
    assert {row["pass"] for row in result["ops"]} == {"forward", "forward+backward"}
    for row in result["ops"]:
        assert {"torch", "eager_st", "compiled"} <= set(row["seconds"]) and all(t > 0 for t in row["seconds"].values())
    assert {(row["impl"], row["compiled"]) for row in result["training"]} >= {("torch", False), ("torch", True)}
    text = (tmp_path / "headline.md").read_text()
    assert text.startswith("# Headline benchmarks on ") and "| training step | impl |" in text
    assert json.loads((tmp_path / "headline.json").read_text())["command"] == "python -m benchmarks.headline --quick"
