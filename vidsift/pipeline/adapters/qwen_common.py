"""What Qwen2-VL, Qwen2.5-VL and Qwen3-VL share: encoding and the M-RoPE prompt layout.

Preprocessing lives in ``qwen_preprocess`` (`QwenPreprocess`, no torchvision); encoder saliency
in ``qwen_saliency``.

Prompt layout (`QwenAdapterBase.build_inputs`): the family lays the prompt out as pieces (text,
or one group's placeholders). We first build the FULL layout (every group at its full grid),
run the model's own ``get_rope_index`` on it (with ``mm_token_type_ids``: without it 5.23 falls
back to 1D positions), then keep only the kept tokens' columns: each kept (or merged) token takes
the column of its coords (h, w) in its group, so its M-RoPE position is exactly the one it had in
the full layout. ``position_ids`` is [4, B, L]: row 0 the plain 1D index 0..L-1 (5.23 uses it
only to build the causal mask; gaps would read as packed sequences), rows 1-3 M-RoPE.

"Full layout" means the groups present in the `VisualTokens`, each at its full grid. So token
pruning (``VisualTokens.keep``) never moves a kept token, while frame selection
(``VisualTokens.select``) lays out the chosen groups as the stock model would lay out those
frames: Qwen2.5-VL's temporal ids stay tied to real time (relative to the first group present),
Qwen3-VL's timestamps are text, Qwen2-VL numbers its temporal patches.

Verified in transformers 5.23:
- ``forward(mm_encoder_outputs={"video": BaseModelOutputWithPooling(pooler_output=(feats,))})``
  concatenates ``pooler_output`` and scatters it into the ``video_token_id`` placeholders (count
  checked) without running the tower; ``generate`` drops ``mm_encoder_outputs`` after prefill
  (``MULTIMODAL_INPUTS_TO_DROP_OUTSIDE_PREFILL``).
- With ``position_ids`` in the generate kwargs, ``_update_model_kwargs_for_generation`` extends
  every row by ``last + 1`` per new token; the vanilla path does the same with the positions it
  computed itself, so decoding continues identically (``rope_deltas`` is never consulted).
- ``get_rope_index`` starts the text after a video at ``start + max(h, w)`` (LLM grid), not at
  ``max(position) + 1``; we never re-derive this, we take whatever it returns.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from ...errors import ConfigError
from ...types import FrameBatch, VisualTokens
from ..types import ModelInputs
from .base import ModelAdapter, PromptParts, one_frame_clips
from .qwen_preprocess import VIDEO_FRAME_TOKENS, QwenPreprocess, check_frame_size, smart_resize  # noqa: F401  (re-exported)
from .qwen_saliency import attention_received
from .recording import record_inputs


@dataclass(frozen=True)
class Piece:
    """One stretch of the prompt: text, or the placeholders of group ``group``.

    ``owners`` ties a text piece to groups (Qwen3-VL timestamps, the vision markers of a video
    block): it is dropped from the pruned prompt when none of them keeps a token.
    """

    text: str | None = None
    group: int | None = None
    owners: tuple[int, ...] | None = None


class QwenAdapterBase(ModelAdapter):
    """Shared encode / build_inputs / pixel_inputs for the Qwen-VL families (see module docstring).

    Options (keyword-only): ``saliency`` records attention received in the tower's last block as
    ``VisualTokens.saliency`` (read-only hook, outputs unchanged); ``chunk_groups`` temporal patches
    per vision-tower call (None: all at once, exactly the stock call; set it to bound memory on
    long videos, at the cost of bit-identity with the stock path); ``pairing`` "consecutive"
    (stock: frames 2i and 2i+1 share a temporal patch) or "duplicate" (each frame fills a patch
    alone, like a Qwen image: sparse keyframes keep their own time, at twice the tokens per frame).
    """

    system_prompt: ClassVar[str | None] = "You are a helpful assistant."

    def __init__(self, model: torch.nn.Module, tokenizer: Any, preprocessor: dict[str, Any], *,
                 saliency: bool = True, chunk_groups: int | None = None,
                 pairing: Literal["consecutive", "duplicate"] = "consecutive") -> None:
        super().__init__(model, tokenizer, preprocessor)
        if chunk_groups is not None and (not isinstance(chunk_groups, int) or chunk_groups < 1):
            raise ConfigError(f"chunk_groups={chunk_groups}", "must be a positive integer or None")
        if pairing not in ("consecutive", "duplicate"):
            raise ConfigError(f"pairing={pairing}", "choose one of: consecutive, duplicate")
        self.saliency, self.chunk_groups, self.pairing = bool(saliency), chunk_groups, pairing
        cfg = model.config
        self.pre = QwenPreprocess.from_dict(preprocessor, vision_config=cfg.vision_config)
        self.video_token_id = int(cfg.video_token_id)
        self.merge = int(cfg.vision_config.spatial_merge_size)
        self._text_cache: dict[str, list[int]] = {}
        self._layouts: dict[tuple, tuple] = {}  # `_layout_positions`

    @classmethod
    def check_frame_size(cls, width: int, height: int) -> None:
        check_frame_size(width, height)

    # -- sizes ------------------------------------------------------------------------------------
    def tokens_per_frame(self, height: int, width: int) -> float:
        rh, rw = self.pre.target_size(height, width)
        per_group = (rh // self.pre.factor) * (rw // self.pre.factor)
        return float(per_group) if self.pairing == "duplicate" else per_group / self.pre.temporal_patch_size

    def tokens_for_frames(self, n_frames: int, height: int, width: int) -> int:
        """Temporal patches x tokens per patch: an odd frame count is padded to a full pair."""
        rh, rw = self.pre.target_size(height, width)
        return -(-int(n_frames) // self.frames_per_group) * (rh // self.pre.factor) * (rw // self.pre.factor)

    # -- resolution before encoding (Pipeline(resize=True)) ----------------------------------------
    @property
    def frames_per_group(self) -> int:
        """Frames in one encoded group: a temporal pair (``tp``), or 1 with ``pairing="duplicate"``."""
        return 1 if self.pairing == "duplicate" else self.pre.temporal_patch_size

    def max_pixels_for_tokens(self, height: int, width: int, tokens: int) -> int | None:
        """The per-frame pixel cap (``encode(max_pixels=)``) whose resized group has the most LLM
        tokens that are <= ``tokens``, under Qwen's own resize rule (``smart_resize``: sides multiples
        of patch*merge, aspect kept). None when the full resolution already fits. Never below the
        processor's ``min_pixels``: when even that has more tokens, its cap is returned and the caller
        merges the rest."""
        f2 = self.pre.factor ** 2
        count = lambda cap: (lambda hw: (hw[0] * hw[1]) // f2)(self.pre.target_size(height, width, max_pixels=cap))  # noqa: E731
        if count(None) <= tokens:
            return None
        lo, hi = max(self.pre.min_pixels, f2), self.pre.max_pixels  # count(hi) > tokens
        if count(lo) >= tokens:
            return lo
        while hi - lo > 1:  # largest cap with count <= tokens (count is non-decreasing in cap)
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if count(mid) <= tokens else (lo, mid)
        return lo

    # -- vision -----------------------------------------------------------------------------------
    def _group_pts(self, pts: np.ndarray) -> np.ndarray:
        """Time of each temporal patch from its frames' times (N padded to a multiple of tp)."""
        return pts.reshape(-1, self.pre.temporal_patch_size)[:, 0].copy()

    def _pixels(self, frames: FrameBatch, max_pixels: int | None, *, pairing: str | None = None) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        if len(frames) == 0:
            raise ConfigError("frames", "no frames to encode")
        tp = self.pre.temporal_patch_size
        data, pts = frames.data, frames.pts_seconds
        if (pairing or self.pairing) == "duplicate":  # every frame fills a temporal patch alone (as Qwen does for images)
            data, pts = np.repeat(data, tp, axis=0), np.repeat(pts, tp)
        pixels, grid = self.pre(data, max_pixels=max_pixels)
        pts = np.concatenate([pts, np.repeat(pts[-1:], -len(pts) % tp)])
        return pixels.to(self.device), grid.to(self.device), self._group_pts(pts)

    def _vision(self, pixels: torch.Tensor, grid: torch.Tensor):
        """One tower call -> merged features (G*h*w, D), deepstack levels or None, saliency (G*h*w,) or None."""
        visual = self.model.model.visual
        with record_inputs(visual.blocks[-1].attn) if self.saliency else nullcontext([]) as seen:
            out = self.model.model.get_video_features(pixels, grid, return_dict=True)
        deep = getattr(out, "deepstack_features", None)
        sal = attention_received(visual, seen[-1], grid).cpu() if self.saliency else None
        return out.pooler_output[0], None if deep is None else [d[0] for d in deep], sal

    def _vision_chunked(self, pixels: torch.Tensor, grid: torch.Tensor):
        g, gh, gw = (int(x) for x in grid[0])
        step = self.chunk_groups or g
        if step >= g:
            return self._vision(pixels, grid)
        per = gh * gw  # patches per temporal patch
        parts = [self._vision(pixels[s * per:min(s + step, g) * per], torch.tensor([[min(step, g - s), gh, gw]], device=grid.device))
                 for s in range(0, g, step)]
        feats = torch.cat([p[0] for p in parts])
        deep = None if parts[0][1] is None else [torch.cat(lv) for lv in zip(*[p[1] for p in parts])]
        sal = None if parts[0][2] is None else torch.cat([p[2] for p in parts])
        return feats, deep, sal

    @torch.no_grad()
    def encode(self, frames: FrameBatch, *, max_pixels: int | None = None) -> VisualTokens:
        """Vision tower on these frames only (one call as the stock path, unless ``chunk_groups``) ->
        one group per temporal patch.

        ``max_pixels`` lowers the per-frame pixel cap (fewer tokens per frame)."""
        return self._encode(frames, max_pixels=max_pixels, pairing=self.pairing)

    @torch.no_grad()
    def encode_each(self, frames: FrameBatch, *, max_pixels: int | None = None) -> list[VisualTokens]:
        """Each frame as a one-frame clip, in one tower call. A lone frame fills its temporal patch
        alone (padded with itself), as every frame does with ``pairing="duplicate"``, and the tower
        attends within one temporal patch only (``cu_seqlens``, windows), so the groups of that one
        call are the one-frame clips."""
        return one_frame_clips(self._encode(frames, max_pixels=max_pixels, pairing="duplicate"))

    def _encode(self, frames: FrameBatch, *, max_pixels: int | None, pairing: str) -> VisualTokens:
        pixels, grid, gpts = self._pixels(frames, max_pixels, pairing=pairing)
        feats, deep, sal = self._vision_chunked(pixels, grid)
        g, h, w = int(grid[0, 0]), int(grid[0, 1]) // self.merge, int(grid[0, 2]) // self.merge
        hh, ww = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        hw = torch.stack([hh.flatten(), ww.flatten()], -1)  # (h*w, 2) raster order
        split = lambda x: list(x.reshape(g, h * w, -1).unbind(0))  # noqa: E731
        first = np.arange(0, len(frames), 1 if pairing == "duplicate" else self.pre.temporal_patch_size)
        return VisualTokens(
            embeds=split(feats),
            coords=[torch.cat([torch.full((h * w, 1), t), hw], 1) for t in range(g)],
            size=[torch.ones(h * w) for _ in range(g)],
            grid_thw=torch.tensor([[1, h, w]] * g),
            pts_seconds=gpts, index=frames.index[first].copy(),
            saliency=None if sal is None else list(sal.float().reshape(g, h * w).unbind(0)),
            deepstack=None if deep is None else [list(lv) for lv in zip(*[split(d) for d in deep])],
        )

    # -- prompt -----------------------------------------------------------------------------------
    def _ids(self, text: str) -> list[int]:
        if text not in self._text_cache:
            if len(self._text_cache) > 4096:  # timestamps make many distinct strings
                self._text_cache.clear()
            self._text_cache[text] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return self._text_cache[text]

    def prompt_parts(self, question: str) -> PromptParts:
        """The Qwen chat template's user turn around the video (checked against the checkpoint's
        ``apply_chat_template`` in the tests)."""
        system = f"<|im_start|>system\n{self.system_prompt}<|im_end|>\n" if self.system_prompt else ""
        return PromptParts(head=f"{system}<|im_start|>user\n", tail=f"{question}<|im_end|>\n<|im_start|>assistant\n")

    def _pieces(self, grids: torch.Tensor, pts_seconds: np.ndarray, question: str) -> list[Piece]:
        raise NotImplementedError

    def _rope_kwargs(self, grids: torch.Tensor, pts_seconds: np.ndarray) -> dict[str, Any]:
        """Extra ``get_rope_index`` / forward kwargs of the full layout (video_grid_thw, ...)."""
        raise NotImplementedError

    def _adjust_positions(self, pos: torch.Tensor, cols: list[torch.Tensor], grids: torch.Tensor,
                          pts_seconds: np.ndarray) -> torch.Tensor:
        """Hook to rewrite full-layout M-RoPE positions (3, L) given each group's columns."""
        return pos

    def _layout(self, grids: torch.Tensor, pts_seconds: np.ndarray, question: str, keep: list[bool] | None = None):
        """Full-layout ids (L,), mm_token_type_ids (L,), columns of each group (h*w,), kept text columns."""
        ids: list[int] = []
        group_cols: list[torch.Tensor] = [torch.empty(0, dtype=torch.long)] * len(grids)
        text_cols: list[int] = []
        for piece in self._pieces(grids, pts_seconds, question):
            start = len(ids)
            if piece.group is not None:
                n = int(grids[piece.group].prod())
                ids.extend([self.video_token_id] * n)
                group_cols[piece.group] = torch.arange(start, start + n)
            else:
                ids.extend(self._ids(piece.text))
                if keep is None or piece.owners is None or any(keep[g] for g in piece.owners):
                    text_cols.extend(range(start, len(ids)))
        ids_t = torch.tensor(ids)
        if int((ids_t == self.video_token_id).sum()) != int(grids.prod(-1).sum()):
            raise ConfigError(repr(question), "the question contains the reserved video placeholder token")
        return ids_t, (ids_t == self.video_token_id).long() * 2, group_cols, text_cols

    def _full_positions(self, grids: torch.Tensor, pts: np.ndarray, question: str, keep: list[bool] | None = None):
        ids, types, group_cols, text_cols = self._layout(grids, pts, question, keep)
        rope_kwargs = self._rope_kwargs(grids, pts)
        pos, _ = self.model.model.get_rope_index(ids[None], mm_token_type_ids=types[None], **rope_kwargs)
        return ids, types, self._adjust_positions(pos[:, 0], group_cols, grids, pts), group_cols, text_cols, rope_kwargs

    def _pts_key(self, pts: np.ndarray) -> tuple:
        """What of the groups' times the layout depends on (default: the times themselves)."""
        return tuple(np.asarray(pts, dtype=np.float64).tolist())

    def _layout_positions(self, grids: torch.Tensor, pts: np.ndarray, question: str, keep: list[bool]):
        """`_full_positions`' ids, positions and columns, kept per (grids, `_pts_key`, question, keep):
        scoring frames one by one lays out the same prompt again and again. Callers index them
        (new tensors), never write into them."""
        key = (tuple(map(tuple, grids.tolist())), self._pts_key(pts), question, tuple(keep))
        hit = self._layouts.get(key)
        if hit is None:
            ids, _, pos, group_cols, text_cols, _ = self._full_positions(grids, pts, question, keep)
            if len(self._layouts) >= 256:
                self._layouts.clear()
            hit = self._layouts[key] = (ids, pos, group_cols, text_cols)
        return hit

    def build_inputs(self, tokens: VisualTokens, question: str) -> ModelInputs:
        if tokens.n_tokens == 0:
            raise ConfigError("tokens", "no visual tokens to put in the prompt")
        grids = tokens.grid_thw[:, 1:].cpu()  # (G, 2) full LLM grid of each group
        keep = [n > 0 for n in tokens.tokens_per_group]
        for g, (c, (h, w)) in enumerate(zip(tokens.coords, grids.tolist())):
            if len(c) and (int(c[:, 1].min()) < 0 or int(c[:, 1].max()) >= h or int(c[:, 2].min()) < 0 or int(c[:, 2].max()) >= w):
                raise ValueError(f"VisualTokens.coords: group {g} has coords outside its {h}x{w} grid")
        ids, pos, group_cols, text_cols = self._layout_positions(grids, tokens.pts_seconds, question, keep)
        vis_cols = [cols[c[:, 1].cpu() * int(g[1]) + c[:, 2].cpu()] for cols, c, g in zip(group_cols, tokens.coords, grids)]
        cols = torch.cat([torch.tensor(text_cols, dtype=torch.long), *vis_cols])
        is_vis = torch.cat([torch.zeros(len(text_cols), dtype=torch.bool), torch.ones(len(cols) - len(text_cols), dtype=torch.bool)])
        # order by full-layout column; visual tokens at the same column (merged) keep their given order
        order = torch.sort(cols, stable=True).indices
        cols, is_vis = cols[order], is_vis[order]
        dev = self.device
        input_ids = ids[cols][None].to(dev)  # visual columns already hold video_token_id
        L = input_ids.shape[1]
        position_ids = torch.cat([torch.arange(L)[None], pos[:, cols]])[:, None].to(dev)  # (4, 1, L)
        embeds = torch.cat(tokens.embeds)  # (T, D) in group order
        vis_order = order[is_vis] - len(text_cols)  # index into the concatenated tokens, in prompt order
        feats = embeds[vis_order.to(embeds.device)]
        kwargs: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "position_ids": position_ids,
            "mm_encoder_outputs": {"video": self._encoder_output(feats, tokens, vis_order)},
        }
        return ModelInputs(kwargs=kwargs, visual_mask=input_ids == self.video_token_id)

    def _encoder_output(self, feats: torch.Tensor, tokens: VisualTokens, vis_order: torch.Tensor):
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        return BaseModelOutputWithPooling(pooler_output=(feats,))

    def pixel_inputs(self, frames: FrameBatch, question: str) -> dict[str, Any]:
        """Also ``position_ids`` ([4, 1, L], as `build_inputs`) when this family's positions differ
        from what the stock forward derives from the grid kwargs alone (Qwen2.5-VL groups unevenly
        spaced in time): the model then sees exactly the positions the pipeline gives these frames."""
        pixels, grid, gpts = self._pixels(frames, None)
        g, h, w = int(grid[0, 0]), int(grid[0, 1]) // self.merge, int(grid[0, 2]) // self.merge
        grids = torch.tensor([[h, w]] * g)
        ids, types, pos, _, _, rope_kwargs = self._full_positions(grids, gpts, question)
        dev = self.device
        out = {"input_ids": ids[None].to(dev), "attention_mask": torch.ones(1, len(ids), dtype=torch.long, device=dev),
               "mm_token_type_ids": types[None].to(dev), "pixel_values_videos": pixels,
               "video_grid_thw": grid}
        out.update({k: v.to(dev) for k, v in rope_kwargs.items() if k != "video_grid_thw"})
        stock, _ = self.model.model.get_rope_index(ids[None], mm_token_type_ids=types[None], **rope_kwargs)
        if not torch.equal(stock[:, 0], pos):
            out["position_ids"] = torch.cat([torch.arange(len(ids))[None], pos])[:, None].to(dev)  # (4, 1, L)
        return out
