"""benchmarks/report.py: ratios, roofline fraction and the markdown table from a pytest-benchmark run."""

from __future__ import annotations

import json

from benchmarks import report


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
