"""Small synthesised datasets in the public layouts of Video-MME, MVBench, MLVU and NExT-QA,
for the eval tests. Videos are short PyAV clips; questions have known answers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from vidsift.bench.synth import synthesize_video


def _clip(path: Path, seed: int) -> str:
    return str(synthesize_video(path, seconds=2, fps=4, width=64, height=48, seed=seed))


def make_videomme(root: Path, *, fmt: str = "json") -> Path:
    rows = []
    for v, vid in enumerate(["fFjv93ACGo8", "xYz12345678"]):
        _clip(root / "data" / f"{vid}.mp4", v)
        for q in range(3):
            rows.append({"video_id": f"00{v}", "duration": "short", "domain": "Knowledge", "sub_category": "Humanity",
                         "videoID": vid, "question_id": f"00{v}-{q + 1}", "task_type": ["Counting Problem", "OCR Problems"][q % 2],
                         "question": f"How many squares in clip {v} part {q}?",
                         "options": ["A. one", "B. two", "C. three", "D. four"], "answer": "ABCD"[q]})
    (root / "videomme").mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), root / "videomme" / "test-00000-of-00001.parquet")
    else:
        (root / "videomme" / "videomme.json").write_text(json.dumps(rows))
    return root


def make_mvbench(root: Path) -> Path:
    _clip(root / "video" / "star" / "Charades_v1_480" / "6H78U.mp4", 0)
    _clip(root / "video" / "clevrer" / "video_validation" / "video_10009.mp4", 1)
    (root / "json").mkdir(parents=True, exist_ok=True)
    (root / "json" / "action_sequence.json").write_text(json.dumps([
        {"video": "6H78U.mp4", "question": "What did the person do first?", "candidates": ["Sat on the sofa.", "Took the cup."], "answer": "Took the cup."},
        {"video": "6H78U.mp4", "question": "What did the person do last?", "candidates": ["Sat on the sofa.", "Took the cup.", "Opened the door."], "answer": "Sat on the sofa."},
    ]))
    (root / "json" / "counterfactual_inference.json").write_text(json.dumps([
        {"video": "video_10009.mp4", "question": "Which will collide?", "candidates": ["The cube.", "The sphere.", "None."], "answer": "None."},
        {"video": "missing_clip.mp4", "question": "Which moves?", "candidates": ["The cube.", "The sphere."], "answer": "The cube."},
    ]))
    return root


def make_mlvu(root: Path) -> Path:
    _clip(root / "video" / "1_plotQA" / "movie101_66.mp4", 2)
    _clip(root / "video" / "3_ego" / "ego_35.mp4", 3)
    (root / "json").mkdir(parents=True, exist_ok=True)
    (root / "json" / "1_plotQA.json").write_text(json.dumps([
        {"video": "movie101_66.mp4", "duration": 246.0, "question": "What colour is the car?",
         "candidates": ["red", "blue", "green", "white"], "answer": "blue", "question_type": "plotQA"},
    ]))
    (root / "json" / "3_ego.json").write_text(json.dumps([
        {"video": "ego_35.mp4", "duration": 500.0, "question": "Where did I put the keys?",
         "candidates": ["table", "bag", "drawer", "sofa"], "answer": "drawer", "question_type": "ego"},
    ]))
    (root / "json" / "9_summary.json").write_text(json.dumps([
        {"video": "ego_35.mp4", "duration": 500.0, "question": "Summarise.", "answer": "a long text", "question_type": "summary"},
    ]))
    return root


def make_nextqa(root: Path) -> Path:
    _clip(root / "NExTVideo" / "0000" / "4010069381.mp4", 4)
    _clip(root / "NExTVideo" / "1001" / "2435100235.mp4", 5)
    (root / "map_vid_vidorID.json").write_text(json.dumps({"4010069381": "0000/4010069381", "2435100235": "1001/2435100235"}))
    header = ["video", "frame_count", "width", "height", "question", "answer", "qid", "type", "a0", "a1", "a2", "a3", "a4"]
    rows = [
        ["4010069381", 8, 64, 48, "why did the boy pick up the ball", 2, 6, "CW", "to throw", "to eat", "to play", "to sleep", "to hide"],
        ["4010069381", 8, 64, 48, "what did the girl do after falling", 0, 7, "TN", "stand up", "cry", "run", "sit", "jump"],
        ["2435100235", 8, 64, 48, "how many dogs are there", 4, 1, "DC", "one", "two", "three", "four", "five"],
    ]
    with (root / "val.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return root


MAKERS = {"videomme": make_videomme, "mvbench": make_mvbench, "mlvu": make_mlvu, "nextqa": make_nextqa}


def test_videomme_bad_row_is_counted_from_one_as_batch_counts_lines(tmp_path):
    from vidsift.errors import ConfigError
    from vidsift.eval import load_dataset

    (tmp_path / "videomme.json").write_text('[{"videoID": "v1", "question": "q?"}]')  # no options/answer
    with pytest.raises(ConfigError, match=r"row 1: not a Video-MME row"):
        load_dataset("videomme", tmp_path)


@pytest.mark.parametrize("name", ["/etc/passwd", "../../../outside.mp4", "../../../../../../../etc/hosts"])
def test_annotations_cannot_name_videos_outside_the_root(tmp_path, name):
    """An annotation naming a file outside the dataset folder is refused with one line unless
    allow_outside (--allow-outside); videos inside it load as before."""
    from vidsift.errors import ConfigError
    from vidsift.eval import load_dataset

    (tmp_path / "outside.mp4").write_bytes(b"x")
    root = tmp_path / "mvbench"
    (root / "json").mkdir(parents=True)
    _clip(root / "video" / "t" / "in.mp4", 0)
    rows = [{"video": "in.mp4", "question": "q?", "candidates": ["a", "b"], "answer": "a"},
            {"video": name, "question": "q?", "candidates": ["a", "b"], "answer": "b"}]
    (root / "json" / "t.json").write_text(json.dumps(rows))
    with pytest.raises(ConfigError) as err:
        load_dataset("mvbench", root)
    text = str(err.value)
    assert text.startswith(f"{root}: question t/1: video ") and "outside" in text and "--allow-outside" in text
    assert "\n" not in text
    items = load_dataset("mvbench", root, allow_outside=True)
    assert [i.video for i in items][0] == str(root / "video" / "t" / "in.mp4")
