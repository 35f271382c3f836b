"""`Pipeline.clear_cache`, which `vidsift bench` calls before every run: after it, the next
question decodes and encodes the video again; without it, the cached frames/tokens are reused."""

from __future__ import annotations

import pytest

from vidsift.bench import synthesize_video

MODEL = "random:tiny-qwen2.5-vl"


@pytest.fixture(scope="module")
def pipe():
    from vidsift.pipeline.pipeline import Pipeline

    return Pipeline.from_pretrained(MODEL, device="cpu")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> str:
    return str(synthesize_video(tmp_path_factory.mktemp("cache") / "clip.mp4", seconds=4, fps=4, width=112, height=84))


def test_clear_cache_makes_the_next_question_encode_again(pipe, clip: str) -> None:
    first = pipe.ask(clip, "What moves?", frames=4, max_new_tokens=1)
    calls = pipe.encode_calls
    again = pipe.ask(clip, "What moves?", frames=4, max_new_tokens=1)
    assert pipe.encode_calls == calls  # cached: the vision tower did not run
    assert again.text == first.text
    pipe.clear_cache()
    fresh = pipe.ask(clip, "What moves?", frames=4, max_new_tokens=1)
    assert pipe.encode_calls == calls + 1  # cleared: decoded and encoded again
    assert fresh.text == first.text and fresh.stats["tokens_in_prompt"] == first.stats["tokens_in_prompt"]
    pipe.clear_cache()
    pipe.clear_cache()  # idempotent on empty caches
