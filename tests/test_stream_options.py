"""`StreamOptions` (issue 26, item 6): a stream's settings are one frozen, validated dataclass that
`StreamSession` takes whole (its constructor has at most 8 parameters, none of them ``**kwargs``);
bad values and unknown names are one-line `ConfigError`s naming the field. No model is loaded."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from vidsift.errors import ConfigError
from vidsift.stream import StreamOptions, StreamSession, open_session
from vidsift.types import Budget


def test_the_session_takes_its_settings_as_one_options_object():
    params = list(inspect.signature(StreamSession.__init__).parameters.values())[1:]  # less self
    assert len(params) <= 8, [p.name for p in params]
    assert not any(p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in params)
    assert "options" in [p.name for p in params]
    with pytest.raises(ConfigError, match="^options: must be a StreamOptions"):
        StreamSession(None, "lavfi:testsrc2", {"budget": 64})  # type: ignore[arg-type]


def test_options_are_frozen_and_parse_budgets_as_ask_does():
    options = StreamOptions(budget="25%", fps=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.fps = 4  # type: ignore[misc]
    assert options.budget == Budget(fraction=0.25) and StreamOptions(budget="512").budget == Budget(tokens=512)
    assert StreamOptions.of(options, fps=4) == dataclasses.replace(options, fps=4) and options.fps == 2


@pytest.mark.parametrize("settings, message", [
    ({"fps": 0}, "^fps: must be > 0 frames per second"),
    ({"every_s": 5}, "^every: needs a --query"),
    ({"respond": "auto"}, "^respond: auto needs a --query"),
    ({"query": "q", "respond": "auto", "trigger": 1.5}, r"^trigger: must be a probability in \[0, 1\]"),
    ({"cooldown_s": -1}, "^cooldown: must be >= 0"),
    ({"duration_s": 0}, "^duration: must be > 0"),
    ({"max_new_tokens": 0}, "^max_new_tokens: must be >= 1"),
    ({"budget": "lots"}, "lots"),
])
def test_bad_values_name_the_field(settings, message):
    with pytest.raises(ConfigError, match=message) as err:
        StreamOptions(**settings)
    assert "\n" not in str(err.value)


def test_unknown_settings_name_themselves_and_the_known_ones():
    with pytest.raises(ConfigError, match=r"^fsp: unknown stream option; options: .*\bfps\b"):
        StreamOptions.of(fsp=2)
    with pytest.raises(ConfigError, match="^fsp: unknown stream option"):
        open_session(None, "lavfi:testsrc2", fsp=2)  # type: ignore[arg-type]  (before any model is used)
