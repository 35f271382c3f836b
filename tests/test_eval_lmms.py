"""The lmms-eval plugin: declared as an entry point (checked always), registered through lmms-eval's
model registry, answers lmms-eval requests about a video with a tiny real model. The tests that
run lmms-eval skip with a reason when it is not installed (it pins av<16, which conflicts with
vidsift's av>=18.1, so it lives in its own env)."""

from __future__ import annotations

import ast
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from vidsift.bench import synthesize_video

NOT_INSTALLED = "lmms-eval is not installed (pip install lmms-eval, in a separate env)"


def test_the_entry_point_names_the_plugin_manifest():
    """What lmms-eval loads by itself: the installed ``lmms_eval.models`` entry point ``vidsift``
    names a ``manifest`` function that the plugin module defines (read without importing it)."""
    found = [ep for ep in entry_points(group="lmms_eval.models") if ep.name == "vidsift"]
    assert [ep.value for ep in found] == ["vidsift.eval.lmms_plugin:manifest"], "reinstall vidsift: pip install -e ."
    import vidsift.eval

    source = (Path(vidsift.eval.__file__).parent / "lmms_plugin.py").read_text(encoding="utf-8")
    assert "manifest" in {node.name for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)}


def test_plugin_registers_and_answers_video_requests(tmp_path: Path) -> None:
    pytest.importorskip("lmms_eval", reason=NOT_INSTALLED)
    from lmms_eval.api.instance import Instance
    from lmms_eval.models.registry_v2 import ModelRegistryV2

    from vidsift.eval.lmms_plugin import VidsiftLMM, manifest

    registry = ModelRegistryV2()
    registry.register_manifest(manifest())
    cls = registry.get_model_class("vidsift")  # validates: an lmms subclass, simple model
    assert cls is VidsiftLMM
    model = cls.create_from_arg_string("pretrained=random:tiny-qwen2.5-vl,budget=25%,device=cpu,max_new_tokens=3")
    video = str(synthesize_video(tmp_path / "v.mp4", seconds=2, fps=4, width=64, height=48))
    model.task_dict = {"toy": {"test": {0: {"video": video}, 1: {"video": video}}}}
    requests = [Instance(request_type="generate_until", arguments=(f"Question {i}? A. x B. y", {"max_new_tokens": 2, "until": ["\n\n"]},
                                                                    lambda doc: [doc["video"]], i, "toy", "test"),
                         idx=0, metadata={"task": "toy", "doc_id": i, "repeats": 1}) for i in (0, 1)]
    answers = model.generate_until(requests)
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    assert [s["new_tokens"] for s in model.last_stats] == [2, 2]
    assert all(s["tokens_in_prompt"] < s["tokens_full"] for s in model.last_stats)  # the 25% budget applied
    with pytest.raises(NotImplementedError):
        model.loglikelihood(requests)


def test_lmms_eval_finds_the_plugin_by_itself():
    """With vidsift installed, lmms-eval's global registry lists ``vidsift`` from the entry point."""
    pytest.importorskip("lmms_eval", reason=NOT_INSTALLED)
    try:
        from lmms_eval.models import MODEL_REGISTRY_V2
    except Exception as err:  # noqa: BLE001 - the global registry imports every model's optional deps
        pytest.skip(f"lmms-eval's global model registry does not load here: {type(err).__name__}: {err}")
    assert "vidsift" in MODEL_REGISTRY_V2.list_model_names(), "reinstall vidsift: pip install -e ."
