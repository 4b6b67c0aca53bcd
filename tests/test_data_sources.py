"""Split-file parsers of DFEW, FERV39K, MAFW, generic lists and folder trees, on fixture files."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from fe_adapter import data
from tests.media import numbered_frames, write_frame_folder, write_video

# Literal copies of the official label lists (docs/data.md; DFEW numbers its labels 1..7 in this order), so an
# edit of the tuples in fe_adapter/data/sources.py cannot pass unnoticed.
OFFICIAL_DFEW = ("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear")
OFFICIAL_FERV39K = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
OFFICIAL_MAFW = ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise", "contempt", "anxiety",
                 "helplessness", "disappointment")


def test_class_orders_are_the_official_ones():
    assert data.DFEW_CLASSES == OFFICIAL_DFEW
    assert data.FERV39K_CLASSES == OFFICIAL_FERV39K
    assert data.MAFW_CLASSES == OFFICIAL_MAFW


def _dfew_root(tmp_path: Path) -> Path:
    root = tmp_path / "DFEW"
    split = root / "EmoLabel_DataSplit" / "train(single-labeled)"
    split.mkdir(parents=True)
    (split / "set_1.csv").write_text("video_name,label\n1,1\n00002,7\n3,3\n")
    for name in ("00001", "00002", "00003"):
        write_frame_folder(root / "Clip" / "clip_224x224" / name, numbered_frames(4))
    return root


def test_dfew(tmp_path):
    clips = data.dfew(_dfew_root(tmp_path), fold=1, split="train")
    assert clips.class_names == OFFICIAL_DFEW
    assert [clips.class_names[item.label] for item in clips.items] == ["happy", "fear", "neutral"]  # 1, 7, 3
    assert [(item.path.name, item.label) for item in clips.items] == [("00001", 0), ("00002", 6), ("00003", 2)]
    assert clips.items[1].origin.endswith("set_1.csv:3")


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda root: None, "fold must be one of"),
        (lambda root: (root / "EmoLabel_DataSplit/train(single-labeled)/set_1.csv").write_text("1,8\n"),
         "set_1.csv:1: label 8 out of range 1..7"),
        (lambda root: (root / "EmoLabel_DataSplit/train(single-labeled)/set_1.csv").write_text("1;2\n"),
         "set_1.csv:1: expected 'video_name,label'"),
        (lambda root: (root / "EmoLabel_DataSplit/train(single-labeled)/set_1.csv").unlink(),
         "DFEW split file not found"),
    ],
)
def test_dfew_errors_name_the_file_and_line(tmp_path, mutate, message):
    root = _dfew_root(tmp_path)
    mutate(root)
    fold = 6 if message.startswith("fold") else 1
    with pytest.raises(data.DatasetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        data.dfew(root, fold=fold)
    with pytest.raises(data.DatasetError, match="DFEW root not found"):
        data.dfew(tmp_path / "nowhere")


def test_ferv39k(tmp_path):
    root = tmp_path / "FERV39K"
    (root / "4_setups" / "All_scenes").mkdir(parents=True)
    (root / "4_setups" / "All_scenes" / "test_All.csv").write_text("Street/Happy/0001 Happy\nRoom/Fear/0002 Fear\n")
    for name in ("Street/Happy/0001", "Room/Fear/0002"):
        write_frame_folder(root / "2_ClipsforFaceCrop" / name, numbered_frames(3))
    clips = data.ferv39k(root, split="test")
    assert [item.label for item in clips.items] == [3, 2]
    assert clips.class_names == OFFICIAL_FERV39K
    (root / "4_setups" / "All_scenes" / "test_All.csv").write_text("Street/Happy/0001 Joy\n")
    with pytest.raises(data.DatasetError, match="test_All.csv:1: unknown class 'Joy'"):
        data.ferv39k(root, split="test")


def test_mafw_clips_and_frames(tmp_path):
    root = tmp_path / "MAFW"
    split = root / "split" / "single" / "no_caption" / "set_2"
    split.mkdir(parents=True)
    (split / "test.txt").write_text("03747.mp4 anger\n00012.mp4 disappointment\n")
    for name in ("03747", "00012"):
        write_video(root / "data" / "clips" / f"{name}.mp4", numbered_frames(5))
        write_frame_folder(root / "data" / "frames" / name, numbered_frames(5))
    clips = data.mafw(root, fold=2, split="test")
    assert [(item.path.name, item.label) for item in clips.items] == [("03747.mp4", 0), ("00012.mp4", 10)]
    assert clips.class_names == OFFICIAL_MAFW
    frames = data.mafw(root, fold=2, split="test", media="frames")
    assert [item.path.name for item in frames.items] == ["03747", "00012"]


@pytest.mark.parametrize(
    "text, kwargs",
    [
        ("a 1\nb 0\n", {}),
        ("a 12 1\nb 30 0\n", {}),
        ("path,label\na,1\nb,0\n", {}),
        ("# made by hand\npath,label\na,1\nb,0\n", {}),
        ("a happy\nb sad\n", {"class_names": ["sad", "happy"]}),
        ("a 2\nb 1\n", {"label_base": 1}),
    ],
    ids=["path-label", "path-frames-label", "csv", "csv-after-comment", "names", "one-based"],
)
def test_generic_list_formats(tmp_path, text, kwargs):
    for name in ("a", "b"):
        write_frame_folder(tmp_path / name, numbered_frames(2))
    (tmp_path / "list.txt").write_text(text)
    clips = data.list_file(tmp_path / "list.txt", **kwargs)
    assert [(item.path.name, item.label) for item in clips.items] == [("a", 1), ("b", 0)]
    assert len(clips.class_names) == 2


def test_generic_list_errors(tmp_path):
    (tmp_path / "list.txt").write_text("a happy\n")
    with pytest.raises(data.DatasetError, match="class_names must be given"):
        data.list_file(tmp_path / "list.txt")
    (tmp_path / "list.txt").write_text("a 5\n")
    with pytest.raises(data.DatasetError, match="list.txt:1: label 5 out of range 0..1"):
        data.list_file(tmp_path / "list.txt", class_names=["x", "y"])
    (tmp_path / "list.txt").write_text("a\n")
    with pytest.raises(data.DatasetError, match="list.txt:1: expected '<path> <label>'"):
        data.list_file(tmp_path / "list.txt")


@pytest.mark.parametrize(
    "line, message",
    [
        ("my clip.mp4 neutral", "'my clip.mp4 neutral' is not '<path> <label>' or '<path> <num_frames> <label>' "
         "('clip.mp4' is not a frame count); a path with spaces? write the line in the CSV form 'path,label': "
         "my clip.mp4,neutral"),
        ("my holiday clip.mp4 1", "(4 fields); a path with spaces? write the line in the CSV form 'path,label': "
         "my holiday clip.mp4,1"),
        ("clip.mp4,12,neutral,x", "4 comma-separated fields in 'clip.mp4,12,neutral,x', expected 'path,label'"),
    ],
    ids=["space-in-path", "spaces-in-path", "csv-extra-field"],
)
def test_a_list_line_with_more_fields_than_its_form_allows_names_file_line_and_the_csv_form(tmp_path, line,
                                                                                              message):
    write_frame_folder(tmp_path / "a", numbered_frames(2))
    (tmp_path / "list.txt").write_text(f"a 0\n{line}\n")
    with pytest.raises(data.DatasetError) as caught:
        data.list_file(tmp_path / "list.txt", class_names=["neutral", "happy"])
    assert str(caught.value).startswith(f"{tmp_path / 'list.txt'}:2: ") and message in str(caught.value)


def test_the_csv_form_holds_paths_with_spaces_and_quoted_commas(tmp_path):
    for name in ("my clip", "a, b"):
        write_frame_folder(tmp_path / name, numbered_frames(2))
    (tmp_path / "list.csv").write_text('path,label\nmy clip,neutral\n"a, b",happy\n')
    clips = data.list_file(tmp_path / "list.csv", class_names=["neutral", "happy"])
    assert [(item.path.name, item.label) for item in clips.items] == [("my clip", 0), ("a, b", 1)]


def test_folder_tree(tmp_path):
    write_video(tmp_path / "sad" / "x.mp4", numbered_frames(3))
    write_frame_folder(tmp_path / "happy" / "y", numbered_frames(3))
    (tmp_path / "happy" / "notes.txt").write_text("not a clip")
    clips = data.folder_tree(tmp_path)
    assert clips.class_names == ("happy", "sad")
    assert [(item.path.name, item.label) for item in clips.items] == [("y", 0), ("x.mp4", 1)]


def test_missing_clips_are_left_out_or_fail_below_threshold(tmp_path):
    root = _dfew_root(tmp_path)
    import shutil

    shutil.rmtree(root / "Clip" / "clip_224x224" / "00003")
    with pytest.warns(UserWarning, match=r"set_1.csv \(train split of fold 1\): 1 of 3 listed clips are missing "
                                         r"and left out \(ClipList.missing\): .*00003 \(.*set_1.csv:4\)") as caught:
        clips = data.dfew(root)
    assert len(caught) == 1
    assert len(clips.items) == 2 and clips.missing[0].path.name == "00003"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned when the list was built, not again
        data.ClipDataset(clips, num_frames=2, min_readable=0.5)
    with pytest.raises(data.DatasetError, match="only 2 of 3 listed clips exist"):
        data.ClipDataset(clips, num_frames=2, min_readable=0.9)


def test_missing_clips_warning_names_the_first_few(tmp_path):
    lines = [f"videos/{index}.mp4 {index % 2}" for index in range(6)]
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    write_video(tmp_path / "videos" / "0.mp4", numbered_frames(3))
    with pytest.warns(UserWarning, match=r"list.txt: 5 of 6 listed clips are missing") as caught:
        clips = data.list_file(tmp_path / "list.txt")
    message = str(caught[0].message)
    assert all(f"{index}.mp4" in message for index in (1, 2, 3)) and "4.mp4" not in message
    assert message.endswith("and 2 more") and [item.path.name for item in clips.missing][-1] == "5.mp4"
