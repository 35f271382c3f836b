"""The lmms-eval plugin: registered through lmms-eval's model registry, answers lmms-eval
requests about a video with a tiny real model. Skipped with a reason when lmms-eval is not
installed (it pins av<16, which conflicts with vidsift's av>=18.1, so it lives in its own env)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("lmms_eval", reason="lmms-eval is not installed (pip install lmms-eval, in a separate env)")

from vidsift.bench import synthesize_video  # noqa: E402


def test_plugin_registers_and_answers_video_requests(tmp_path: Path) -> None:
    from lmms_eval.api.instance import Instance
    from lmms_eval.models.registry_v2 import ModelRegistryV2

    from vidsift.eval.lmms_plugin import VidsiftLMM, manifest

    registry = ModelRegistryV2()
    registry.register_manifest(manifest())
    cls = registry.get_model_class("vidsift")  # validates: an lmms subclass, simple model
    assert cls is VidsiftLMM
    try:  # when vidsift is installed with its entry points, lmms-eval finds it by itself
        from lmms_eval.models import MODEL_REGISTRY_V2

        found = "vidsift" in MODEL_REGISTRY_V2.list_model_names()
    except Exception:  # noqa: BLE001 - optional: the global registry needs lmms-eval's full deps
        found = None
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
    if found is not None:
        assert found, "vidsift entry point not visible to lmms-eval (reinstall vidsift: pip install -e .)"
