"""``mllm``: frame relevance as the video MLLM's own P("yes") (QuoTA).

QuoTA (Luo et al., 2025, "QuoTA: Query-oriented Token Assignment via CoT Query Decouple for Long
Video Comprehension", https://arxiv.org/abs/2503.08689) asks the LVLM itself, frame by frame,
whether the frame is relevant to the query, and uses the probability of "yes" as the frame's
importance for token assignment. With ``decouple=True`` the model first rewrites the question
into the visual cues it needs (QuoTA's chain-of-thought query decoupling); each frame is scored
against every cue and keeps the best.

score_i = P(yes) / (P(yes) + P(no)) of the first answer token, summed over the tokenizer's
spellings of yes/no (ids shared by both words are ignored), in [0, 1].

Each frame is a one-frame clip (exactly what the model would see); a chunk of ``batch_size``
frames goes through the vision tower in one call (`ModelAdapter.encode_each`) and their LLM
prompts are stacked into one forward pass (all have the same length). P(yes) is cached per
(frame content, prompt) on this scorer, which is bound to one model (encoded frames are kept only
during one ``score`` call). Counters: ``calls`` frames scored (one per frame and prompt the model
ran on, cache hits excluded), ``forwards`` LLM forward passes, ``vision_calls`` vision-tower calls.
Features returned for diversity selection are the frames' mean visual embeddings, L2-normalised.
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from ...errors import ConfigError
from ...types import FrameBatch, FrameScores, VisualTokens
from ..types import ModelInputs

_YES = ("yes", "Yes", "YES", " yes", " Yes")
_NO = ("no", "No", "NO", " no", " No")
_PREFIX_KWARGS = {"input_ids", "attention_mask", "position_ids", "mm_encoder_outputs"}  # layouts the head cache handles
_CUES_PROMPT = ("List the visual cues (objects, people, actions, scene text) a frame must show to answer "
                "this question, one short phrase per line: {question}")


def _stack(items: list[Any], *, key: str = "") -> Any:
    """Stack per-frame model kwargs into one batch (same prompt length): batch-first tensors on
    dim 0, M-RoPE ``position_ids`` (3|4, 1, L) on dim 1, tuples of per-clip features concatenated."""
    first = items[0]
    if isinstance(first, torch.Tensor):
        if key == "position_ids" and first.ndim == 3:
            return torch.cat(items, dim=1)
        return torch.cat(items, dim=0)
    if isinstance(first, (tuple, list)):
        return type(first)(x for item in items for x in item)
    if hasattr(first, "to_tuple") and hasattr(first, "keys"):  # transformers ModelOutput (a dict too)
        return type(first)(**{k: _stack([it[k] for it in items], key=k) for k in first.keys()})
    if isinstance(first, dict):
        return {k: _stack([it[k] for it in items], key=k) for k in first}
    if all(item == first for item in items):
        return first
    raise TypeError(f"cannot batch model input {key!r}")


@dataclass
class MllmScorer:
    """QuoTA relevance: P("yes") to "Is this frame relevant to: <question>?" per frame.

    adapter:    the loaded `ModelAdapter` (the Pipeline passes its own)
    decouple:   first turn the question into visual cues and score frames against each cue
    batch_size: frames per vision-tower call and per stacked LLM forward
    prefix_cache: compute the prompt's shared head (the text before the frame) once and reuse its
                KV cache for every chunk (P(yes) equal to float rounding)
    max_cues:   cues kept from the decoupling answer
    cue_tokens: tokens generated for the decoupling answer
    prompt:     the per-frame question; ``{question}`` is replaced by the question or cue
    """

    name: ClassVar[str] = "mllm"

    adapter: Any = None
    decouple: bool = False
    batch_size: int = 16
    max_cues: int = 4
    cue_tokens: int = 48
    prompt: str = "Is this frame relevant to: {question}? Answer yes or no."
    prefix_cache: bool = True
    _cache: dict = field(default_factory=dict, init=False, repr=False)
    _cues: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(f"batch_size={self.batch_size}", "must be an int >= 1")
        if isinstance(self.max_cues, bool) or not isinstance(self.max_cues, int) or self.max_cues < 1:
            raise ConfigError(f"max_cues={self.max_cues}", "must be an int >= 1")
        if isinstance(self.cue_tokens, bool) or not isinstance(self.cue_tokens, int) or self.cue_tokens < 1:
            raise ConfigError(f"cue_tokens={self.cue_tokens}", "must be an int >= 1")
        if "{question}" not in self.prompt:
            raise ConfigError(f"prompt={self.prompt!r}", "must contain {question}")
        self.calls = 0  # frames scored: (frame, prompt) pairs the model ran on (cache misses)
        self.forwards = 0  # LLM forward passes
        self.vision_calls = 0  # vision-tower calls (`encode_each`)
        self._tokens: dict[str, VisualTokens] = {}
        self._prefix: dict[tuple, Any] = {}  # the shared prompt head's KV cache, per head

    # -- public ---------------------------------------------------------------------------------
    def score(self, frames: FrameBatch, query: str | None) -> FrameScores:
        if self.adapter is None:
            raise ConfigError("mllm", "this scorer needs a loaded model: use it through Pipeline or `vidsift ask --scorer mllm`")
        if not query or not str(query).strip():
            raise ConfigError("mllm", "this scorer needs a question")
        cues = self.cues(query) if self.decouple else [query]
        hashes = [hashlib.blake2b(np.ascontiguousarray(f).data, digest_size=16).hexdigest() for f in frames.data]
        self._tokens = {}  # encoded frames, kept for this call only (shared by all cues)
        try:
            per_cue = np.stack([self._score_prompt(frames, hashes, self.prompt.format(question=c)) for c in cues])  # (C, N)
        finally:
            self._tokens = {}
        feats = np.stack([self._cache[("feat", h)] for h in hashes]) if len(frames) else None
        return FrameScores(scores=np.clip(per_cue.max(axis=0), 0.0, 1.0), features=feats, scorer="mllm")

    def cues(self, question: str) -> list[str]:
        """The visual cues the model says the question needs (cached per question)."""
        if question not in self._cues:
            text = self._generate_text(_CUES_PROMPT.format(question=question), max_new_tokens=self.cue_tokens)
            cues = []
            for line in re.split(r"[\n;]+", text):
                cue = re.sub(r"^\s*(?:[-*\u2022]|\d+[.)])\s*", "", line).strip(" .,:")
                if cue and cue.lower() not in (c.lower() for c in cues):
                    cues.append(cue)
            self._cues[question] = [question, *cues[: self.max_cues]]
        return self._cues[question]

    @property
    def feature_key(self) -> str:
        """What `embed`'s features depend on: the model (its name, class and a fingerprint of its
        weights) and this method's version, as a short hash (the index keeps them under it)."""
        model = self.adapter.model
        h = hashlib.blake2b(f"embed1|{type(model).__name__}|{getattr(model, 'name_or_path', '')}".encode(), digest_size=12)
        for _, p in zip(range(4), model.parameters()):
            h.update(p.detach().flatten()[:4096].float().cpu().numpy().tobytes())
        return h.hexdigest()

    def embed(self, frames: FrameBatch, *, chunk: int = 64) -> np.ndarray:
        """float32 (N, F): each frame's visual tokens from the vision tower alone (no LLM), pooled
        to a 2x2 grid of cells and joined (a fixed random projection to 1024 dims when wider):
        the cheap per-frame features the temporal search finds events with. Each frame is encoded
        alone, as when it is scored (`encode_each`: one tower call per ``chunk`` where the family allows)."""
        if self.adapter is None:
            raise ConfigError("mllm", "this scorer needs a loaded model")
        out = []
        for lo in range(0, len(frames), chunk):
            for tokens in self.adapter.encode_each(frames[np.arange(lo, min(lo + chunk, len(frames)))]):
                emb, hw = tokens.embeds[0].float().cpu(), tokens.coords[0][:, 1:].long().cpu()  # (T, D), (T, 2)
                _, gh, gw = (int(x) for x in tokens.grid_thw[0])
                cell = (hw[:, 0] * 2 // max(gh, 1)) * 2 + hw[:, 1] * 2 // max(gw, 1)  # (T,) in 0..3
                pooled = torch.zeros(4, emb.shape[1]).index_add_(0, cell, emb)
                pooled /= torch.bincount(cell, minlength=4).clamp_min(1)[:, None]
                out.append(pooled.flatten())
        feats = torch.stack(out)  # (N, 4D)
        if feats.shape[1] > 1024:
            proj = torch.randn(feats.shape[1], 1024, generator=torch.Generator().manual_seed(0)) / 32.0
            feats = feats @ proj
        return feats.numpy().astype(np.float32)

    # -- internals ------------------------------------------------------------------------------
    def _score_prompt(self, frames: FrameBatch, hashes: list[str], prompt: str) -> np.ndarray:
        missing = [i for i, h in enumerate(hashes) if (h, prompt) not in self._cache]
        for lo in range(0, len(missing), self.batch_size):
            chunk = missing[lo : lo + self.batch_size]
            self._encode(frames, hashes, chunk)
            inputs = [self.adapter.build_inputs(self._tokens[hashes[i]], prompt) for i in chunk]
            for i, p in zip(chunk, self._p_yes(inputs, prompt)):
                self._cache[(hashes[i], prompt)] = float(p)
            self.calls += len(chunk)
        return np.array([self._cache[(h, prompt)] for h in hashes], dtype=np.float32)  # (N,)

    def _encode(self, frames: FrameBatch, hashes: list[str], chunk: list[int]) -> None:
        """Encode the frames of ``chunk`` not encoded yet in this call, in one vision-tower call."""
        todo: dict[str, int] = {}
        for i in chunk:
            if hashes[i] not in self._tokens:
                todo.setdefault(hashes[i], i)  # equal frames are encoded once
        if not todo:
            return
        clips = self.adapter.encode_each(frames[list(todo.values())])
        self.vision_calls += 1
        if len(clips) != len(todo):
            raise ValueError(f"{type(self.adapter).__name__}.encode_each returned {len(clips)} clips for {len(todo)} frames")
        for digest, tokens in zip(todo, clips):
            self._tokens[digest] = tokens
            mean = torch.cat(tokens.embeds).float().mean(0)  # (D,)
            self._cache[("feat", digest)] = (mean / mean.norm().clamp_min(1e-12)).cpu().numpy()

    @torch.no_grad()
    def _p_yes(self, inputs: list[ModelInputs], prompt: str) -> list[float]:
        logits = None
        if len(inputs) > 1:
            try:
                stacked = _stack([dict(x.kwargs) for x in inputs])
                logits = self._forward(stacked, torch.cat([x.visual_mask for x in inputs]), prompt)
            except Exception:  # noqa: BLE001 - a family whose inputs do not stack: one by one below
                logits = None
        if logits is None:
            logits = torch.cat([self._forward(dict(x.kwargs), x.visual_mask, prompt) for x in inputs])
        probs = logits.float().softmax(-1)  # (B, V)
        yes, no = self._answer_ids()
        p_yes, p_no = probs[:, yes].sum(-1), probs[:, no].sum(-1)  # (B,)
        total = p_yes + p_no
        return torch.where(total > 0, p_yes / total.clamp_min(1e-30), torch.full_like(total, 0.5)).tolist()

    def _forward(self, kwargs: dict[str, Any], visual: torch.Tensor, prompt: str) -> torch.Tensor:
        """Last-token logits (B, V) of one (stacked) prompt batch: one LLM forward."""
        logits = self._run_with_prefix(kwargs, visual, prompt) if self.prefix_cache else None
        if logits is None:
            logits = self.adapter.model(**kwargs, use_cache=False, logits_to_keep=1).logits[:, -1]
        self.forwards += 1
        return logits

    def _head_len(self, prompt: str, ids: torch.Tensor) -> int:
        """Tokens of the family's text before the video (`ModelAdapter.prompt_parts`), when the
        prompt ``ids`` start with them; else no limit."""
        if ("head", prompt) not in self._cache:
            head = self.adapter.tokenizer(self.adapter.prompt_parts(prompt).head, add_special_tokens=False)["input_ids"]
            match = len(head) <= len(ids) and ids[: len(head)].tolist() == list(head)
            self._cache[("head", prompt)] = len(head) if match else len(ids)
        return self._cache[("head", prompt)]

    def _run_with_prefix(self, kwargs: dict[str, Any], visual: torch.Tensor, prompt: str) -> torch.Tensor | None:
        """Last-token logits (B, V) of the stacked prompts ``kwargs``, the shared text head before
        the frames' first visual token computed once per head (its KV cache kept on this scorer) and
        only the rest run per chunk. None when the prompts' layout has no shared head to reuse."""
        if not set(kwargs) <= _PREFIX_KWARGS or not bool(kwargs["attention_mask"].all()):
            return None
        ids, pos = kwargs["input_ids"], kwargs.get("position_ids")  # (B, L), (R, B, L) or None
        differs = visual.any(0) | (ids != ids[:1]).any(0)  # (L,) a visual token, or text that differs per frame
        if pos is not None:
            differs |= (pos != pos[:, :1]).any(0).any(0)
        n = int(differs.float().argmax()) if bool(differs.any()) else ids.shape[1] - 1
        n = min(n, self._head_len(prompt, ids[0]))  # text after the video's start may differ per frame (timestamps)
        if n < 1:
            return None
        head = (tuple(ids[0, :n].tolist()), None if pos is None else tuple(pos[:, 0, :n].flatten().tolist()))
        cache = self._prefix.get(head)
        if cache is None:
            first = {"input_ids": ids[:1, :n], "attention_mask": kwargs["attention_mask"][:1, :n]}
            if pos is not None:
                first["position_ids"] = pos[:, :1, :n]
            cache = self.adapter.model(**first, use_cache=True, logits_to_keep=1).past_key_values
            if len(self._prefix) >= 8:
                self._prefix.clear()
            self._prefix[head] = cache
            self.forwards += 1
        past = copy.deepcopy(cache)
        past.batch_repeat_interleave(ids.shape[0])
        rest = {**kwargs, "input_ids": ids[:, n:], "past_key_values": past}
        if pos is not None:
            rest["position_ids"] = pos[..., n:]
        return self.adapter.model(**rest, use_cache=True, logits_to_keep=1).logits[:, -1]

    def _answer_ids(self) -> tuple[list[int], list[int]]:
        if ("ids",) not in self._cache:
            tok = self.adapter.tokenizer
            first = lambda words: {tok.encode(w, add_special_tokens=False)[0] for w in words}  # noqa: E731
            yes, no = first(_YES), first(_NO)
            self._cache[("ids",)] = (sorted(yes - no), sorted(no - yes))
        return self._cache[("ids",)]

    def _generate_text(self, prompt: str, *, max_new_tokens: int) -> str:
        tok, model = self.adapter.tokenizer, self.adapter.model
        text = prompt
        if getattr(tok, "chat_template", None):
            for content in ([{"type": "text", "text": prompt}], prompt):
                try:
                    text = tok.apply_chat_template([{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True)
                    break
                except Exception:  # noqa: BLE001 - templates differ in the content format they accept
                    continue
        enc = tok(text, return_tensors="pt").to(self.adapter.device)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False)
        return tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
