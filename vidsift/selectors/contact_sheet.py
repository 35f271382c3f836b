"""A contact sheet of a plan: the chosen keyframes in time order, each labelled with its time,
relevance score and token count (with a bar showing its share of a full frame). PIL only."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..types import FrameBatch, TokenPlan, whole_tokens


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def render_contact_sheet(plan: TokenPlan, frames: FrameBatch, *, thumb_width: int = 240, columns: int | None = None) -> Image.Image:
    """An RGB image: a title line, then one labelled thumbnail per planned frame (time order)."""
    pos = np.searchsorted(frames.index, plan.indices)  # plan frame -> candidate row
    if len(plan.frames) and (pos.max() >= len(frames) or not np.array_equal(frames.index[pos], plan.indices)):
        raise ValueError("the plan refers to frames that are not among the given candidates")
    n = max(1, len(plan.frames))
    cols = columns or min(6, max(1, math.ceil(math.sqrt(n * 1.5))))
    rows = math.ceil(n / cols)
    h0, w0 = frames.data.shape[1:3]
    tw = thumb_width
    th = max(1, round(tw * h0 / w0))
    pad, label_h, title_h = 8, 40, 34
    full = max(1, whole_tokens(plan.settings.get("tokens_per_frame", 1)))
    sheet = Image.new("RGB", (pad + cols * (tw + pad), title_h + rows * (th + label_h + pad) + pad), (24, 24, 28))
    draw = ImageDraw.Draw(sheet)
    f_title, f_label = _font(15), _font(13)
    title = (f"{os.path.basename(plan.video) or 'frames'}   {len(plan.frames)} frames   "
             f"{plan.total_tokens}/{plan.budget} tokens   {plan.settings.get('scorer', '')} / {plan.settings.get('selector', '')}")
    draw.text((pad, 9), title, fill=(235, 235, 235), font=f_title)
    for i, (f, row) in enumerate(zip(plan.frames, pos)):
        r, c = divmod(i, cols)
        x, y = pad + c * (tw + pad), title_h + r * (th + label_h + pad)
        sheet.paste(Image.fromarray(frames.data[row]).resize((tw, th), Image.BILINEAR), (x, y))
        share = min(1.0, f.tokens / full)
        draw.rectangle([x, y + th + 2, x + tw - 1, y + th + 6], fill=(60, 60, 66))
        draw.rectangle([x, y + th + 2, x + max(1, round((tw - 1) * share)), y + th + 6], fill=(80, 200, 120))
        draw.text((x, y + th + 9), f"{f.pts_seconds:.2f}s   frame {f.index}", fill=(235, 235, 235), font=f_label)
        draw.text((x, y + th + 24), f"score {f.score:.2f}   {f.tokens} tok", fill=(180, 200, 255), font=f_label)
    return sheet


def save_contact_sheet(plan: TokenPlan, frames: FrameBatch, path: str | os.PathLike, **kwargs) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    render_contact_sheet(plan, frames, **kwargs).save(path)
    return path
