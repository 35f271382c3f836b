"""``load_adapter``: folders, Hub ids offline, ``random:<arch>``, and its one-line errors."""

from __future__ import annotations

import json

import pytest
import torch

from vidsift.errors import ConfigError, ModelError
from vidsift.pipeline import loader
from vidsift.pipeline.archs import build_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return build_checkpoint("tiny-llava-onevision", tmp_path_factory.mktemp("llava"))


def test_loads_folder_with_family_adapter(ckpt):
    adapter = loader.load_adapter(ckpt, device="cpu")
    assert adapter.family == "llava_onevision" and not adapter.model.training
    assert adapter.model.dtype == torch.float32 and adapter.device.type == "cpu"
    # the video preprocessor's settings win over the image one's
    assert adapter.preprocessor == json.loads((ckpt / "video_preprocessor_config.json").read_text())
    assert loader.load_adapter(ckpt, dtype="bf16").model.dtype == torch.bfloat16


def test_random_arch_is_built_once(tmp_path):
    first = loader.random_checkpoint("tiny-llava-onevision", cache_dir=tmp_path)
    stamp = (first / "config.json").stat().st_mtime_ns
    again = loader.random_checkpoint("tiny-llava-onevision", cache_dir=tmp_path)
    assert again == first and (again / "config.json").stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == ["tiny-llava-onevision"]  # no temp dirs left


def _one_line(err: pytest.ExceptionInfo, subject: str, reason: str) -> None:
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"{subject}: ") and reason in text


def test_hub_id_offline_is_one_line(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelError) as err:
        loader.load_adapter("some-org/some-video-model")
    _one_line(err, "some-org/some-video-model", "not in the local Hugging Face cache and the Hub is unreachable (offline); "
              "download it first with `hf download some-org/some-video-model` or pass a local folder")


def test_unsupported_vlm_family(tmp_path):
    from transformers import LlavaConfig

    LlavaConfig().save_pretrained(tmp_path)
    with pytest.raises(ModelError) as err:
        loader.load_adapter(tmp_path)
    _one_line(err, str(tmp_path), "unsupported model family 'llava'")


def test_bad_config_and_options(tmp_path, ckpt):
    (tmp_path / "config.json").write_text('{"model_type": "no-such-model"}')
    with pytest.raises(ModelError) as err:
        loader.load_adapter(tmp_path)
    _one_line(err, str(tmp_path), "unsupported or unknown model type")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelError) as err:
        loader.load_adapter(tmp_path)
    _one_line(err, str(tmp_path), "cannot read config.json")
    file = tmp_path / "model.bin"
    file.write_bytes(b"x")
    with pytest.raises(ModelError, match="not a model folder"):
        loader.load_adapter(file)
    with pytest.raises(ConfigError, match="unknown dtype"):
        loader.load_adapter(ckpt, dtype="int3")
    with pytest.raises(ConfigError, match="unknown device"):
        loader.load_adapter(ckpt, device="tpu:banana")
