"""The probe's generator, tokenizer and training path (no trained weights needed)."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter

import numpy as np
import pytest
import torch

from vidsift.eval.items import EvalItem
from vidsift.eval.prompt import MCPrompt
from vidsift.frames import open_video, sample
from vidsift.probe import LONG_FAMILIES, generate, generate_long, load_items, make_long_scene
from vidsift.probe.generate import NOW_SHAPES, VERSION, WHEN, draw_scene
from vidsift.probe.model import RELEVANCE_PROMPT, build_tokenizer, build_untrained
from vidsift.probe.scene import COLOURS, render


def _decode(path: str):
    reader = open_video(path)
    try:
        return sample(reader, fps=1.0)
    finally:
        reader.close()


def test_generate_is_deterministic_and_files_show_the_rendered_world(tmp_path):
    a = generate(tmp_path / "a", seed=5, videos=2, stream_videos=1)
    b = generate(tmp_path / "b", seed=5, videos=2, stream_videos=1)
    c = generate(tmp_path / "c", seed=6, videos=2, stream_videos=0)
    assert [i.to_json() for i in a] == [i.to_json() for i in b]
    assert [i.to_json() for i in a][:6] != [i.to_json() for i in c][:6]
    assert sorted({i.family for i in a if not i.stream}) == sorted(["needle", "count", "order", "when", "global", "now"])
    assert sorted({i.family for i in a if i.stream}) == ["now", "recall"]
    fa, fb = _decode(str(tmp_path / "a" / a[0].video)), _decode(str(tmp_path / "b" / b[0].video))
    # the same pictures (x264 output can differ in a few low bits between encodes of one input)
    assert np.abs(fa.data.astype(np.int16) - fb.data).mean() < 1.0
    # the Pipeline's 1 fps sample lands on whole seconds, as training renders them
    assert np.allclose(fa.pts_seconds, np.arange(len(fa)))
    header, items = load_items(tmp_path / "a")
    assert header["seed"] == 5 and [i.to_json() for i in items] == [i.to_json() for i in a]


def test_decoded_frames_match_the_renderer_within_codec_noise(tmp_path):
    rng = random.Random(11)
    scene, _ = draw_scene(rng, 30.0)
    from vidsift.probe.scene import write_video

    path = write_video(scene, tmp_path / "x.mp4")
    frames = _decode(str(path))
    assert len(frames) == 30
    ref = np.stack([render(scene, float(t)) for t in frames.pts_seconds]).astype(np.int16)
    err = np.abs(frames.data.astype(np.int16) - ref)
    assert err.mean() < 3.0  # the codec changes the picture by a few grey levels at most
    # and a frame from another moment differs far more (the check can fail)
    assert np.abs(frames.data[5].astype(np.int16) - ref[20]).mean() > 3 * err.mean()


@pytest.mark.parametrize("seed", range(16))
def test_answers_follow_from_the_scene(seed):
    rng = random.Random(seed)
    scene, q = draw_scene(rng, rng.uniform(20, 32))
    ev = {e.shape: [] for e in scene.events}
    for e in scene.events:
        ev[e.shape].append(e)
    ans = lambda fam: q[fam]["options"][q[fam]["answer"]]  # noqa: E731
    star = ev["star"][0]
    assert ans("needle") == star.colour and q["needle"]["options"] == list(COLOURS)
    assert q["needle"]["evidence"] == [(round(star.start_s, 3), round(star.end_s, 3))]
    assert ans("count") == str(len(ev.get("triangle", [])))
    sq, cr = ev["square"][0], ev["cross"][0]
    assert ans("order") == ("square" if sq.start_s < cr.start_s else "cross")
    final = [e for e in scene.events if e.visible(scene.duration_s - 0.01)]
    assert len(final) == 1 and final[0].shape in NOW_SHAPES and ans("now") == final[0].shape
    assert q["now"]["evidence"] == [(round(final[0].start_s, 3), round(final[0].end_s, 3))]
    share = scene.background_share()
    assert ans("global") == max(share, key=share.get) and share[ans("global")] >= 0.55
    # when: the star sits inside the named third of the time before the final shape
    third = WHEN.index(ans("when"))
    span = (final[0].start_s - 1.0) / 3
    assert third * span <= star.start_s and star.end_s <= (third + 1) * span
    # every event before the final shape lasts 1-2 s (a triangle 1-4 s), ends >= 1 s before the
    # final window and covers at least one whole-second sample
    for e in scene.events:
        if e is not final[0]:
            assert 1.0 <= e.end_s - e.start_s <= (4.0 if e.shape == "triangle" else 2.0) + 1e-9
            assert e.end_s <= final[0].start_s - 1.0 + 1e-9
            assert any(e.start_s <= t < e.end_s for t in range(int(scene.duration_s) + 1))
    # triangles are apart: at 1 fps in Qwen's 2-frame temporal patches, an empty patch lies between
    # any two of them, so each appearance is its own run of tokens
    tri = sorted((e.start_s, e.end_s) for e in ev.get("triangle", []))
    patches = [{t // 2 for t in range(int(scene.duration_s) + 1) if a <= t < b} for a, b in tri]
    assert all(min(q) - max(p) >= 2 for p, q in zip(patches, patches[1:])), patches
    # the star is drawn exactly inside its evidence: its colour at its centre
    for t in np.arange(0, scene.duration_s, 0.5):
        centre = render(scene, float(t))[star.y, star.x]
        if star.visible(t):
            assert np.abs(centre.astype(int) - COLOURS[star.colour]).max() <= 1


def test_v4_clips_hold_no_shortcut():
    """Generator v4 (issue 25's audit of v3): the main background opens the clip in about half the
    clips (v3: all), opens and closes neither in some; a now-type shape appears before the final
    window in a good share (v3: never); many triangles span >= 3 one-fps samples (v3: none, they
    lasted <= 2 s), so counting frames and counting appearances disagree; `order` and `when` answers balanced."""
    rng = random.Random(0)
    n, opens, neither, early, tri, long_tri, order, when = 240, 0, 0, 0, 0, 0, Counter(), Counter()
    for _ in range(n):
        scene, q = draw_scene(rng, rng.uniform(20, 32))
        main = q["global"]["options"][q["global"]["answer"]]
        opens += scene.backgrounds[0][1] == main
        neither += scene.backgrounds[0][1] != main and scene.backgrounds[-1][1] != main
        final_start = q["now"]["evidence"][0][0]
        early += any(e.shape in NOW_SHAPES and e.end_s <= final_start for e in scene.events)
        for e in scene.events:
            if e.shape == "triangle":
                tri += 1
                long_tri += sum(e.visible(t) for t in range(int(scene.duration_s) + 1)) >= 3
        order[q["order"]["answer"]] += 1
        when[q["when"]["answer"]] += 1
    assert 0.35 * n <= opens <= 0.65 * n, opens
    assert neither >= 0.15 * n, neither
    assert early >= 0.4 * n, early
    assert long_tri >= 0.2 * tri, (long_tri, tri)  # v3: none (at most 2 s, so at most two samples)
    assert min(order.values()) >= 0.4 * n, order
    assert sorted(when) == [0, 1, 2] and min(when.values()) >= 0.25 * n, when


@pytest.mark.parametrize("seed", range(6))
def test_long_scene_layout(seed):
    """`make_long_scene`: the families a fixed budget can answer, one star of 1.5-2 s in the named
    third of the whole video, a square and a cross once, 0-2 triangles of 1-2 s, a distractor
    about every 12 s, background changes every 20-90 s; no two events within 1 s."""
    rng = random.Random(seed)
    D = rng.choice([120.0, 600.0, 1800.0])
    scene, q = make_long_scene(rng, D)
    assert tuple(q) == LONG_FAMILIES == ("needle", "when", "order", "count") and scene.duration_s == D
    ans = lambda fam: q[fam]["options"][q[fam]["answer"]]  # noqa: E731
    by = lambda shape: [e for e in scene.events if e.shape == shape]  # noqa: E731
    (star,), (sq,), (cr,) = by("star"), by("square"), by("cross")
    assert 1.5 <= star.end_s - star.start_s <= 2.0 and ans("needle") == star.colour
    assert star.start_s >= WHEN.index(ans("when")) * D / 3 and star.end_s <= (WHEN.index(ans("when")) + 1) * D / 3
    assert ans("order") == ("square" if sq.start_s < cr.start_s else "cross")
    tri = by("triangle")
    assert ans("count") == str(len(tri)) and len(tri) <= 2 and all(1.0 <= e.end_s - e.start_s <= 2.0 for e in tri)
    others = [e for e in scene.events if e.shape in NOW_SHAPES]
    assert D / 20 <= len(others) <= D / 9, len(others)
    ivs = sorted((e.start_s, e.end_s) for e in scene.events)
    assert all(b0 - a1 >= 1.0 - 1e-9 for (_, a1), (b0, _) in zip(ivs, ivs[1:]))
    starts = [s for s, _ in scene.backgrounds]
    assert starts[0] == 0 and all(20 - 1e-3 <= b - a <= 90 + 1e-3 for a, b in zip(starts, starts[1:]))
    assert all(a[1] != b[1] for a, b in zip(scene.backgrounds, scene.backgrounds[1:]))


def test_generate_long_writes_the_long_split(tmp_path):
    items = generate_long(tmp_path / "l", seed=2, durations=(120,), videos=2)
    assert [i.family for i in items] == list(LONG_FAMILIES) * 2 and items[0].video == "videos/long120_0.mp4"
    header, again = load_items(tmp_path / "l")
    assert header == {"probe": VERSION, "long": True, "seed": 2, "durations": [120], "videos": 2}
    assert [i.to_json() for i in again] == [i.to_json() for i in items]
    reader = open_video(str(tmp_path / "l" / items[0].video))
    try:
        assert abs(reader.info.fps - 2) < 1e-6 and abs(reader.info.duration_s - 120) < 1
    finally:
        reader.close()
    # its own seeds: not the short split's clips of the same seed
    assert items[0].evidence != generate(tmp_path / "s", seed=2, videos=1, stream_videos=0)[0].evidence


def test_every_count_is_about_as_likely():
    """The number of triangles is kept while layouts are tried, so four (which needs a long clip)
    is not rarer than the rest (drawn anew with each layout it was 9% of 20-32 s clips)."""
    rng = random.Random(0)
    counts = Counter(draw_scene(rng, rng.uniform(20, 32))[1]["count"]["answer"] for _ in range(250))
    assert sorted(counts) == [0, 1, 2, 3, 4] and min(counts.values()) >= 0.15 * 250, counts


def test_time_scale_stretches_every_interval():
    s1, q1 = draw_scene(random.Random(3), 30.0)
    s4, q4 = draw_scene(random.Random(3), 30.0, time_scale=4.0)
    assert s4.duration_s == 4 * s1.duration_s
    for fam in q1:
        assert q4[fam]["answer"] == q1[fam]["answer"]
        assert np.allclose(np.array(q4[fam]["evidence"]), 4 * np.array(q1[fam]["evidence"]), atol=0.01)
    assert np.array_equal(render(s1, 7.0), render(s4, 28.0))


def test_word_tokenizer_covers_every_prompt_and_round_trips(tmp_path):
    tok = build_tokenizer()
    unk = tok.convert_tokens_to_ids("<unk>")
    scene, q = draw_scene(random.Random(1), 32.0)
    for fam, item in q.items():
        mc = MCPrompt()(EvalItem("probe", fam, "", item["question"], item["options"], item["answer"]))
        for text in (mc, RELEVANCE_PROMPT.format(question=mc)):
            words = tok.backend_tokenizer.pre_tokenizer.pre_tokenize_str(text)
            ids = tok(text, add_special_tokens=False)["input_ids"]
            assert len(ids) == len(words)
            # the scorer's template glues the question's last "." to its "?": the one <unk>
            assert [w for (w, _), i in zip(words, ids) if i == unk] in ([], [".?"]), text
    assert unk in tok("zebra", add_special_tokens=False)["input_ids"]  # the check can fail
    for letter in "ABCDE":
        assert tok.decode(tok.encode(letter + "<|im_end|>"), skip_special_tokens=True) == letter
    path = build_untrained(tmp_path / "ckpt")
    from transformers import AutoTokenizer

    again = AutoTokenizer.from_pretrained(str(path))
    assert again("What colour was the star?")["input_ids"] == tok("What colour was the star?")["input_ids"]


def test_training_batches_equal_the_stock_forward(tmp_path):
    """The training forward (vision once per clip, features shared by its questions, padded
    batch) gives the same next-token logits as the stock transformers path on each example."""
    from vidsift.pipeline.loader import load_adapter
    from vidsift.probe.train import Examples, TrainConfig

    path = build_untrained(tmp_path / "ckpt", seed=1)
    adapter = load_adapter(str(path), device="cpu", dtype="float32")
    ex = Examples(adapter, TrainConfig(videos=2, questions=2, relevance=2, images=2, frame_captions=2,
                                       duration_s=(18.0, 24.0), long_clips=1, long_uniform=0.0))
    batch = ex.batch(random.Random(2), np.random.default_rng(2), 1.0)
    assert [b["family"] for b in batch].count("relevance") == 2
    assert any(b["family"].startswith("long/") for b in batch)  # a long clip: explicit positions for the batch
    with torch.no_grad():
        _, logits = ex.forward(batch)
        for i, b in enumerate(batch):
            ref = adapter.model(**adapter.pixel_inputs(b["frames"], b["text"])).logits[0, -1]
            assert torch.allclose(logits[i], ref, atol=1e-4), (i, (logits[i] - ref).abs().max())
        # a batch whose examples are shuffled against their clips gives other logits (can fail)
        other = next(b["frames"] for b in batch if b["frames"] is not batch[0]["frames"])  # another clip's
        wrong = [dict(b, frames=other) for b in batch[:2]]
        _, bad = ex.forward(wrong)
        assert not torch.allclose(bad[0], logits[0], atol=1e-4)


def test_training_positions_of_irregular_frames_are_the_pipelines(tmp_path):
    """A long clip sampled as a search plan keeps it (coverage frames plus 1 fps inside the
    evidence: groups unevenly spaced in time) is trained with the M-RoPE positions the Pipeline
    gives the same frames at full budget (the adapter places each group by its real time), not the
    stock forward's evenly spread ones; and the next-token logits agree. Fails when the training
    forward drops ``pixel_inputs``' ``position_ids``."""
    from vidsift.frames.types import FrameBatch
    from vidsift.pipeline import Pipeline
    from vidsift.probe.train import Examples, TrainConfig, _frames

    pipe = Pipeline.from_pretrained(str(build_untrained(tmp_path / "ckpt", seed=3)), budget="100%")
    adapter = pipe.adapter
    ex = Examples(adapter, TrainConfig(noise=0.0, long_uniform=0.0))
    rng = random.Random(4)
    scene, qs, times, families = ex.long_clip(rng)
    assert len(set(np.round(np.diff(times), 3))) > 2 and times[-1] > 100  # irregular, minutes apart
    frames = _frames(scene, times, np.random.default_rng(0), 0.0)
    text = ex.mc_text(qs[families[0]])
    inputs, _ = pipe.prepare(frames, text)
    want = inputs.kwargs["position_ids"][:, 0]  # (4, L)
    example = {"frames": frames, "text": text, "target": ex.word("red"), "family": "long"}
    stock = [adapter.pixel_inputs(frames, text)]
    n = stock[0]["input_ids"].shape[1]
    got = ex.positions([example], stock, n + 2)[:, 0]
    assert torch.equal(got[:, :n], want) and torch.equal(got[1:, n:], want[1:, -1:] + torch.tensor([1, 2]))
    plain = adapter.model.model.get_rope_index(stock[0]["input_ids"], mm_token_type_ids=stock[0]["mm_token_type_ids"],
                                               video_grid_thw=stock[0]["video_grid_thw"],
                                               second_per_grid_ts=stock[0]["second_per_grid_ts"])[0][:, 0]
    assert not torch.equal(plain, want[1:])  # the stock positions differ: the check can fail
    with torch.no_grad():
        _, logits = ex.forward([example])
        ref = adapter.model(**inputs.kwargs).logits[0, -1]
    assert torch.allclose(logits[0], ref, atol=1e-4), (logits[0] - ref).abs().max()
    assert isinstance(frames, FrameBatch)


def test_train_runs_and_writes_a_loadable_checkpoint(tmp_path):
    from vidsift.pipeline import Pipeline
    from vidsift.probe.train import TrainConfig, train, write_manifest

    cfg = TrainConfig(steps=2, pretrain_steps=1, pretrain_batch=2, frame_captions=1, videos=1, questions=2,
                      relevance=1, images=1, eval_every=2, eval_videos=1, duration_s=(18.0, 20.0))
    summary = train(tmp_path / "ckpt", cfg, log=lambda _: None)
    assert summary["steps"] == 2 and np.isfinite(summary["history"][-1]["loss"])
    manifest = write_manifest(tmp_path / "ckpt", summary)
    assert "model.safetensors" in manifest["files"] and manifest["seed"] == 0
    pipe = Pipeline.from_pretrained(str(tmp_path / "ckpt"))
    assert pipe.adapter.family == "qwen2_5_vl"
    # a continued run (--init) keeps the first run's log and chains both commands in its manifest
    more = train(tmp_path / "more", dataclasses.replace(cfg, seed=1, init=str(tmp_path / "ckpt")), log=lambda _: None)
    assert [r["history"] for r in more["earlier"]] == [summary["history"]] and more["history"] != summary["history"]
    first, second = write_manifest(tmp_path / "more", more)["reproduce"].split(" && ")
    assert first == manifest["reproduce"].replace("--out DIR", "--out STAGE1") and "--seed" not in first
    assert second.startswith("python -m vidsift.probe.train --out DIR --seed 1 --steps 2 ") and second.endswith("--init STAGE1")


def _colours_in(frame: np.ndarray) -> set[str]:
    """The shape colours a rendered frame shows (at least 12 pixels of exactly that RGB)."""
    flat = frame.reshape(-1, 3)
    return {name for name, rgb in COLOURS.items() if (flat == np.array(rgb, dtype=np.uint8)).all(1).sum() >= 12}


def test_training_pairs_and_captions_say_what_the_pixels_show(tmp_path):
    """Two-frame questions and frame captions, checked against the rendered pixels: the needle
    answer is the only shape colour on screen, a caption names exactly the colours each frame
    shows, and in many pairs the star fills only one of the two frames (as 1-2 s events do in a
    1 fps video)."""
    from vidsift.pipeline.loader import load_adapter
    from vidsift.probe.train import Examples, TrainConfig

    adapter = load_adapter(str(build_untrained(tmp_path / "ckpt")), device="cpu", dtype="float32")
    ex = Examples(adapter, TrainConfig(noise=0.0))
    rng, nrng = random.Random(3), np.random.default_rng(3)
    half = 0
    for _ in range(60):
        scene, _, times = ex.clip(rng, frac=1.0)
        pair, word = ex._frame_pair(rng, scene, "needle", times)
        assert len(pair) in (1, 2) and (len(pair) == 1 or np.isclose(pair[1] - pair[0], times[1] - times[0]))
        seen = [_colours_in(render(scene, t)) for t in pair]
        star = [e for e in scene.events if e.shape == "star"][0]
        assert word == star.colour and any(word in c for c in seen), (word, seen)
        half += len(pair) == 2 and sum(star.visible(t) for t in pair) == 1
    assert half >= 15, half
    vocab = adapter.tokenizer.convert_ids_to_tokens
    for _ in range(40):
        cap = ex.frame_caption(rng, nrng, 1.0)
        words = " ".join(vocab(cap["target"])).split(" , ")
        assert len(words) == len(cap["frames"])
        for frame, text in zip(cap["frames"].data, words):
            named = set(text.split()) & set(COLOURS)
            assert named == _colours_in(frame), (text, _colours_in(frame))


@pytest.mark.parametrize("seed", range(8))
def test_every_shape_fills_one_token_cell(seed):
    """Each event is drawn inside one cell of the frame's 2x2 grid of 28-px cells (one LLM token
    of a 2x2 merge of 14-px patches), read from the pixels of the event's colour."""
    rng = random.Random(seed)
    scene, _ = draw_scene(rng, rng.uniform(20, 32))
    cells = set()
    for e in scene.events:
        frame = render(scene, (e.start_s + e.end_s) / 2).astype(int)
        ys, xs = np.nonzero((np.abs(frame - COLOURS[e.colour]).max(-1) <= 1))
        assert len(ys) > 100, e  # the shape is there
        assert ys.min() // 28 == ys.max() // 28 and xs.min() // 28 == xs.max() // 28, (e, ys.min(), ys.max(), xs.min(), xs.max())
        cells.add((ys.min() // 28, xs.min() // 28))
    assert len(cells) > 1  # not one fixed place


def test_clip_captions_carry_the_time_line_the_questions_mean(tmp_path):
    """A clip's caption opens each third with its word, and the word before the star's first
    frame is the `when` answer; each triangle's first frame carries the running count, whose last
    value is the `count` answer (generate.py's answers are the oracle)."""
    from vidsift.pipeline.loader import load_adapter
    from vidsift.probe.train import Examples, TrainConfig

    adapter = load_adapter(str(build_untrained(tmp_path / "ckpt")), device="cpu", dtype="float32")
    ex = Examples(adapter, TrainConfig(noise=0.0))
    rng, nrng = random.Random(5), np.random.default_rng(5)
    vocab = adapter.tokenizer.convert_ids_to_tokens
    counts = set()
    for _ in range(40):
        scene, qs, times = ex.clip(rng, frac=1.0)
        words = vocab(ex.caption(scene, times, nrng, timeline=True)["target"])
        assert [w for w in words if w in WHEN] == list(WHEN)
        frames = [f.split() for f in " ".join(words).split(" , ")]
        assert len(frames) == len(times)
        first = next(i for i, f in enumerate(frames) if "star" in f)
        phase = [w for f in frames[: first + 1] for w in f if w in WHEN][-1]
        assert phase == qs["when"]["options"][qs["when"]["answer"]], (phase, frames)
        numbers = [w for f in frames for w in f if w.isdigit()]
        answer = qs["count"]["options"][qs["count"]["answer"]]
        assert numbers == [str(i) for i in range(1, int(answer) + 1)], (numbers, answer)
        for f in frames:  # a number only right after a triangle
            assert all(f[i - 1] == "triangle" for i, w in enumerate(f) if w.isdigit()), f
        counts.add(answer)
    assert len(counts) >= 3


def test_a_probe_folder_of_another_seed_or_generator_version_is_refused(tmp_path):
    """Items are reused only when seed and generator version match: an older generator's clips
    (shapes drawn elsewhere) would be scored against answers the model was not trained for."""
    import json

    from vidsift.errors import ConfigError
    from vidsift.probe.evaluate import ensure_items

    root = tmp_path / "p"
    items = ensure_items(root, seed=3, videos=1, stream_videos=0)
    assert [i.qid for i in ensure_items(root, seed=3, videos=1, stream_videos=0)] == [i.qid for i in items]
    with pytest.raises(ConfigError, match="seed 3, not 4"):
        ensure_items(root, seed=4, videos=1, stream_videos=0)
    lines = (root / "items.jsonl").read_text().splitlines()
    (root / "items.jsonl").write_text("\n".join([json.dumps({**json.loads(lines[0]), "probe": 1}), *lines[1:]]) + "\n")
    with pytest.raises(ConfigError, match=f"generator version 1, not {VERSION}"):
        ensure_items(root, seed=3, videos=1, stream_videos=0)


def test_count_windows_count_the_triangles_their_samples_show(tmp_path):
    """A count window is a stretch of >= 4 consecutive samples of its clip, and its answer is the
    number of triangle intervals (generate.py's `count` evidence) holding one of its samples."""
    from vidsift.pipeline.loader import load_adapter
    from vidsift.probe.train import Examples, TrainConfig

    adapter = load_adapter(str(build_untrained(tmp_path / "ckpt")), device="cpu", dtype="float32")
    ex = Examples(adapter, TrainConfig(noise=0.0))
    rng, nrng = random.Random(7), np.random.default_rng(7)
    answers, partial = set(), 0
    for _ in range(40):
        scene, qs, times = ex.clip(rng, frac=1.0)
        got = ex.count_window(rng, scene, qs["count"], times, nrng)
        window = got["frames"].pts_seconds
        start = int(np.nonzero(np.isclose(times, window[0]))[0][0])
        assert 4 <= len(window) < len(times) and np.allclose(window, times[start:start + len(window)])
        want = sum(any(a <= t < b for t in window) for a, b in qs["count"]["evidence"])
        assert got["target"] == ex.word(str(want)) and got["text"] == ex.mc_text(qs["count"])
        answers.add(want)
        partial += want < len(qs["count"]["evidence"])
    assert len(answers) >= 3 and partial >= 5  # windows do cut triangles out


def test_train_cli_refuses_an_init_that_is_not_a_checkpoint(tmp_path, capsys):
    """``--init`` of a folder without a checkpoint: one usage line and exit 2, before any training."""
    from vidsift.probe.train import main

    with pytest.raises(SystemExit) as exit_:
        main(["--out", str(tmp_path / "out"), "--init", str(tmp_path / "missing")])
    assert exit_.value.code == 2 and "not a checkpoint folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_count_holds_keep_the_number_of_appearances(tmp_path):
    """A count-hold example (`count_holds`) shows its clip with one triangle held 1-4 samples longer
    or the video frozen 1-4 samples on one picture, frame times still evenly spaced; its answer is
    the number of triangles that appeared, not of the samples showing one: the copy's time-line
    caption names the running count once per triangle, and most copies show a triangle in more
    samples than the clip does."""
    from vidsift.pipeline.loader import load_adapter
    from vidsift.probe.train import Examples, TrainConfig

    adapter = load_adapter(str(build_untrained(tmp_path / "ckpt")), device="cpu", dtype="float32")
    ex = Examples(adapter, TrainConfig(noise=0.0))
    vocab = adapter.tokenizer.convert_ids_to_tokens
    rng, nrng = random.Random(11), np.random.default_rng(11)
    longer, frozen = 0, 0
    for _ in range(40):
        scene, qs, times = ex.clip(rng, frac=1.0)
        question, caption = ex.count_hold(rng, scene, qs["count"], times, nrng, caption=True)
        n = len(qs["count"]["evidence"])
        frames = question["frames"]
        assert question["target"] == ex.word(str(n)) and question["text"] == ex.mc_text(qs["count"])
        assert caption["frames"] is frames and np.allclose(np.diff(frames.pts_seconds), times[1] - times[0])
        words = vocab(caption["target"])
        assert [w for w in words if w.isdigit()] == [str(i) for i in range(1, n + 1)]
        before = vocab(ex.caption(scene, times, nrng, timeline=True)["target"]).count("triangle")
        longer += words.count("triangle") > before
        frozen += len(frames) > len(times)
    assert longer >= 15 and 10 <= frozen <= 35, (longer, frozen)


def test_long_triangles_keep_every_answer(tmp_path):
    """`long_triangles` clips (`Examples.lengthen_triangles`) show their triangles in more samples,
    up to ten, with the same number of appearances and every other family's answer unchanged: the
    time-line caption still numbers each triangle once, and the scene's other events are untouched."""
    from vidsift.pipeline.loader import load_adapter
    from vidsift.probe.train import Examples, TrainConfig

    adapter = load_adapter(str(build_untrained(tmp_path / "ckpt")), device="cpu", dtype="float32")
    ex = Examples(adapter, TrainConfig(noise=0.0))
    vocab = adapter.tokenizer.convert_ids_to_tokens
    rng, nrng = random.Random(5), np.random.default_rng(5)
    spans = []
    for _ in range(40):
        scene, qs, times = ex.clip(rng, frac=1.0)
        long = ex.lengthen_triangles(rng, scene, times)
        assert [e for e in long.events if e.shape != "triangle"] == [e for e in scene.events if e.shape != "triangle"]
        assert long.backgrounds == scene.backgrounds
        tris = [e for e in long.events if e.shape == "triangle"]
        assert len(tris) == len(qs["count"]["evidence"])
        words = vocab(ex.caption(long, times, nrng, timeline=True)["target"])
        assert [w for w in words if w.isdigit()] == [str(i) for i in range(1, len(tris) + 1)]
        spans += [sum(e.visible(float(t)) for t in times) for e in tris]
    assert max(spans) >= 7 and min(spans) >= 1, spans
