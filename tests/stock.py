"""The stock transformers reference for the adapter equivalence tests, built from the checkpoint's own
files with transformers' processors wherever they run without torchvision.

transformers' video processors need torchvision, which does not load here. Everything else is stock:
`stock_inputs` runs the family's real processor class (``Qwen2_5_VLProcessor``, ``Qwen3VLProcessor``,
``LlavaOnevisionProcessor``, ``SmolVLMProcessor``) on the text that the checkpoint tokenizer's
``apply_chat_template`` renders, so the placeholder expansion, the timestamp text, the tokenization,
``mm_token_type_ids`` and Qwen2.5-VL's ``second_per_grid_ts`` are transformers' own; the model then
computes its positions itself. Only the video processor's pixel work is stood in for, by
`FramewiseVideoProcessor`: the checkpoint's stock (PIL) *image* processor on each frame, laid out as
the video processor lays out a video (Qwen: two frames share a temporal patch, an odd count repeats
the last frame; LLaVA-OneVision: the image processor's base crop, i.e. the frame resized to the
tower's size; SmolVLM2: one square frame, no splitting). What this helper writes itself is that
layout, named here, and nothing about the prompt.

SmolVLM2's processor writes the frame count with the optional ``num2words`` package; where it is not
installed the reference uses vidsift's `number_words` in its place (compared with num2words' words in
test_adapter_smolvlm), the one name of ours in the stock prompt.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoImageProcessor, AutoTokenizer, BatchFeature
from transformers.video_utils import VideoMetadata

from vidsift.types import FrameBatch

QWEN_FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe")


def _processor_class(model_type: str) -> type:
    import transformers

    return {"qwen2_vl": transformers.Qwen2VLProcessor, "qwen2_5_vl": transformers.Qwen2_5_VLProcessor,
            "qwen3_vl": transformers.Qwen3VLProcessor, "qwen3_vl_moe": transformers.Qwen3VLProcessor,
            "llava_onevision": transformers.LlavaOnevisionProcessor, "smolvlm": transformers.SmolVLMProcessor}[model_type]


class FramewiseVideoProcessor:
    """Stands in for a family's video processor (torchvision): the stock image processor on every
    frame, laid out as that family's video processor lays out a video (see the module docstring)."""

    def __init__(self, model_type: str, image_processor: Any, config: dict[str, Any]) -> None:
        self.model_type, self.image_processor = model_type, image_processor
        self.merge_size = int(config.get("merge_size", 2))
        self.temporal_patch_size = int(config.get("temporal_patch_size", 1))
        sampling = config.get("video_sampling") or {}  # SmolVLM2's apply_chat_template reads these
        self.num_frames, self.fps = sampling.get("max_frames"), sampling.get("fps")
        self.video_size = sampling.get("video_size")  # SmolVLM2's video processor resizes to this first

    def frame(self, frame: np.ndarray) -> dict[str, torch.Tensor]:
        """The stock image processor's output for one frame (SmolVLM2: no splitting and the video
        size as the longest edge, as its video processor does)."""
        kwargs = {"do_image_splitting": False, "size": self.video_size} if self.model_type == "smolvlm" else {}
        return self.image_processor(images=[frame], return_tensors="pt", **kwargs)

    def pixels(self, frames: np.ndarray) -> dict[str, torch.Tensor]:
        outs = [self.frame(f) for f in frames]
        if self.model_type in QWEN_FAMILIES:
            tp = self.temporal_patch_size
            outs += [outs[-1]] * (-len(outs) % tp)  # an odd count repeats the last frame
            _, gh, gw = (int(x) for x in outs[0]["image_grid_thw"][0])
            # an image fills every temporal slot with itself: take slot 0 of each frame of a patch
            slots = [o["pixel_values"].view(gh * gw, 3, tp, -1)[:, :, 0] for o in outs]  # (P, 3, p*p) each
            patches = torch.stack([torch.stack(slots[g:g + tp], 2) for g in range(0, len(slots), tp)])  # (G, P, 3, tp, p*p)
            return {"pixel_values_videos": patches.reshape(-1, 3 * tp * slots[0].shape[-1]),
                    "video_grid_thw": torch.tensor([[len(slots) // tp, gh, gw]])}
        if self.model_type == "llava_onevision":  # the base crop: the whole frame at the tower's size
            return {"pixel_values_videos": torch.stack([o["pixel_values"][0, 0] for o in outs])[None]}
        pixels = torch.cat([o["pixel_values"][0] for o in outs])[None]  # smolvlm: (1, N, 3, S, S)
        mask = torch.ones(pixels.shape[:2] + pixels.shape[-2:], dtype=torch.bool)  # (1, N, S, S)
        return {"pixel_values": pixels, "pixel_attention_mask": mask}

    def __call__(self, videos: Any, *, video_metadata: list[VideoMetadata], **_: Any) -> BatchFeature:
        (frames,) = videos
        return BatchFeature({**self.pixels(np.asarray(frames)), "video_metadata": video_metadata})


def stock_processor(ckpt: Path, model_type: str, *, monkeypatch: Any = None) -> Any:
    """The family's transformers processor built from the checkpoint's files, with
    `FramewiseVideoProcessor` in the video processor's place (its class check needs torchvision)."""
    cls = _processor_class(model_type)
    if model_type == "smolvlm":
        from transformers.models.smolvlm import processing_smolvlm

        if processing_smolvlm.num2words is None:  # optional package: vidsift's words in its place
            from vidsift.pipeline.adapters.smolvlm_words import number_words

            monkeypatch.setattr(processing_smolvlm, "num2words", number_words)
    tokenizer = AutoTokenizer.from_pretrained(ckpt)
    image_processor = AutoImageProcessor.from_pretrained(ckpt)
    video_file = ckpt / "video_preprocessor_config.json"
    video_config = json.loads((video_file if video_file.exists() else ckpt / "preprocessor_config.json").read_text())
    proc_file = ckpt / "processor_config.json"
    options = {k: v for k, v in (json.loads(proc_file.read_text()) if proc_file.exists() else {}).items()
               if k != "processor_class"}
    unchecked = type(cls.__name__, (cls,), {"check_argument_for_proper_class": lambda self, name, arg: type(arg)})
    return unchecked(image_processor=image_processor, tokenizer=tokenizer, chat_template=tokenizer.chat_template,
                     video_processor=FramewiseVideoProcessor(model_type, image_processor, video_config), **options)


def stock_inputs(processor: Any, frames: FrameBatch, question: str, *, fps: float, total_frames: int,
                 unwrap_video: bool = False) -> dict[str, Any]:
    """Model inputs for ``question`` about ``frames`` from the stock processor: its ``apply_chat_template``
    (the checkpoint tokenizer's template; SmolVLM2's processor swaps in its ``DEFAULT_CHAT_TEMPLATE``
    for a video turn) with one video, then the processor's own call.

    ``fps`` and ``total_frames`` describe the source clip the frames sample uniformly: frame ``i`` of
    ``frames.index`` is at ``i / fps`` seconds (the processors' timestamps; Qwen2.5-VL's
    ``second_per_grid_ts`` is ``temporal_patch_size / (len(frames) / total_frames * fps)``).
    ``unwrap_video``: replace the template's ``<|vision_start|><|video_pad|><|vision_end|>`` by the
    bare video token before the call, as transformers 4.x's ``Qwen3VLProcessor`` did (5.23's generic
    expansion replaces only the token, so the template's markers wrap Qwen3-VL's per-group markers)."""
    conversation = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]
    text = processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
    if unwrap_video:
        video = processor.video_token
        text = text.replace(f"{processor.vision_start_token}{video}{processor.vision_end_token}", video, 1)
    metadata = VideoMetadata(total_num_frames=total_frames, fps=fps, frames_indices=[int(i) for i in frames.index])
    out = processor(text=[text], videos=[list(frames.data)], video_metadata=[metadata], return_tensors="pt")
    out = {k: v for k, v in out.items() if k != "video_metadata"}
    if "second_per_grid_ts" in out:
        out["second_per_grid_ts"] = torch.as_tensor(out["second_per_grid_ts"])
    return out
