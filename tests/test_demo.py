"""The demo's claim, checked on its quick setting: FE-Adapter learns the temporal order that frame averaging
cannot see, and matches the baseline on the expressions single frames show."""

from __future__ import annotations

import json
import math
import stat
import statistics

import pytest
import torch

from fe_adapter import cli, data, demo

pytestmark = pytest.mark.xdist_group(__name__)  # its module fixtures are built once, on one worker


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    """One `fe-adapter demo --quick` run (seed 0), shared by the tests below (~40 s of CPU time)."""
    out = tmp_path_factory.mktemp("demo")
    assert cli.main(["demo", "--quick", "--out", str(out)]) == 0
    return out, json.loads((out / "demo.json").read_text())


def test_quick_demo_writes_the_comparison(quick_demo):
    out, results = quick_demo
    assert results["seed"] == 0 and set(results["models"]) == set(demo.MODELS)
    for name, folder in demo.MODELS.items():
        model = results["models"][name]
        assert (out / folder / "report" / "confusion.png").is_file() and (out / f"confusion_{folder}.png").is_file()
        assert [record["epoch"] for record in model["history"]] == list(range(1, demo.QUICK.epochs + 1))
    assert (out / "curves.png").is_file() and (out / "image_model" / "last.safetensors").is_file()
    assert "recall happy_onset (order only)" in (out / "summary.md").read_text()
    (out.parent / "reference").write_text("")  # a file made as any other, under this process's umask
    expected = stat.S_IMODE((out.parent / "reference").stat().st_mode)
    modes = {str(path.relative_to(out)): stat.S_IMODE(path.stat().st_mode) for path in out.rglob("*") if path.is_file()}
    assert modes == dict.fromkeys(modes, expected)  # the image model's weights were 0600
    fe_adapter = results["models"]["FE-Adapter"]
    assert fe_adapter["trainable_parameters"] <= 0.10 * fe_adapter["total_parameters"]
    assert results["image_accuracy"] >= 0.9  # the frozen image model knows the expressions single frames show


def test_fe_adapter_learns_the_order_that_frame_averaging_cannot_see(quick_demo):
    """The demo's claim on its quick setting.

    The order-only pair's n test clips (a smile's onset and offset, n/2 each) show the same frames in opposite
    order (tests/test_synthetic.py). A model blind to temporal order, like the frame-averaging baseline, thus
    predicts onset (or offset) with the same probability p_on (p_off) for a clip of either class, so it gets on
    average n/2 * (p_on + p_off) <= n/2 clips right; the clips are independent, and by Hoeffding's inequality
    P(correct >= n/2 + t) <= exp(-2 t^2 / n). With t such that this bound is 1/1000 (32 of 40 clips), FE-Adapter
    must reach n/2 + t, which an order-blind model reaches by luck less than once in a thousand, and the baseline
    must stay below it (else frame-level cues leak into the pair). Both must also tell the four expressions that
    single frames show: the difference is time, not a weaker baseline.
    """
    _, results = quick_demo
    fe_adapter, baseline = (results["models"][name] for name in demo.MODELS)
    clips = fe_adapter["order_only"]["clips"]
    threshold = clips / 2 + math.sqrt(clips * math.log(1000) / 2)
    assert clips == 2 * demo.QUICK.test_clips // len(data.SYNTHETIC_CLASSES)
    assert fe_adapter["order_only"]["correct"] >= threshold, fe_adapter["order_only"]
    assert baseline["order_only"]["correct"] < threshold, baseline["order_only"]
    for model in (fe_adapter, baseline):
        assert statistics.fmean(model["per_class_recall"][name] for name in data.FRAME_CLASSES) >= 0.8


def _demo_model(name: str, tmp_path) -> torch.nn.Module:
    """The video model the demo trains as ``name`` (its config, a random frozen backbone), in eval mode."""
    from fe_adapter.training import config_from_dict
    from fe_adapter.training.builders import build_model

    settings = demo._video_config(tmp_path, tmp_path / "unused.safetensors", demo.PLACEMENTS[name], demo.QUICK, 0)
    settings["model"].update(checkpoint=None, random_backbone=True)
    config = config_from_dict(settings)
    torch.manual_seed(0)
    model = build_model(config.model, len(data.SYNTHETIC_CLASSES), config.data.num_frames, data.SYNTHETIC_CLASSES,
                        config.data.img_size)
    with torch.no_grad():  # trained weights, not the zero start at which the adapters add exactly nothing
        for param in model.parameters():
            if param.requires_grad:
                param.normal_(0.0, 0.2)
    return model.eval()


def test_the_baseline_is_blind_to_frame_order_and_the_adapters_are_not(tmp_path):
    """The demo's comparison rests on this: the baseline's logits for a clip and for the same clip reversed are
    equal (up to float rounding: a mean summed in another order), those of FE-Adapter differ clearly."""
    generator = torch.Generator().manual_seed(1)
    size = demo.BACKBONE_KWARGS["img_size"]
    clips = torch.randn(3, demo.NUM_FRAMES, 3, size, size, generator=generator)
    with torch.no_grad():
        gaps = {}
        for name in demo.MODELS:
            model = _demo_model(name, tmp_path / name)
            forward, backward = model(clips).double(), model(clips.flip(1)).double()
            gaps[name] = float((forward - backward).abs().max() / forward.abs().max())
    assert gaps["frame-averaging baseline"] < 1e-5, gaps
    assert gaps["FE-Adapter"] > 1e-2, gaps  # a thousand times the bound above


def test_image_classifier_batches_hold_whole_identities():
    """data.group_size=4, as the demo's image model trains: every batch holds each of its identities' four faces."""
    from fe_adapter.data.image_dataset import GroupSampler

    def batches(seed: int) -> list[list[int]]:
        order = list(GroupSampler(24, 4, torch.Generator().manual_seed(seed)))
        return [order[start:start + 8] for start in range(0, 24, 8)]

    assert demo._image_config(demo.Path("x"), 24, 1, 0)["data"]["group_size"] == 4
    assert sorted(index for batch in batches(0) for index in batch) == list(range(24))
    for batch in batches(0):  # an identity's four images (4k .. 4k+3, one per expression) share a batch
        assert all(set(range(4 * (index // 4), 4 * (index // 4) + 4)) <= set(batch) for index in batch)
    assert batches(0) != batches(1)


def test_demo_replaces_only_its_own_earlier_output(tmp_path, capsys):
    earlier = tmp_path / "earlier"
    (earlier / "fe_adapter").mkdir(parents=True)
    (earlier / "demo.json").write_text("{}")
    demo._fresh_output_folder(earlier)
    assert list(earlier.iterdir()) == []

    mixed = tmp_path / "mixed"
    (mixed / "fe_adapter").mkdir(parents=True)
    (mixed / "thesis.tex").write_text("mine")
    assert cli.main(["demo", "--out", str(mixed)]) == 2
    assert "holds 'thesis.tex', which the demo does not write" in capsys.readouterr().err
    assert (mixed / "thesis.tex").read_text() == "mine" and (mixed / "fe_adapter").is_dir()

    assert cli.main(["demo", "--seed", "-1", "--out", str(tmp_path / "new")]) == 2
    assert "seed must be >= 0" in capsys.readouterr().err
