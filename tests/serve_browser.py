"""Headless Chromium with a fake camera, for the live-page tests and the page benchmark.

    write_y4m(path, seconds=4, fps=10, size=(320, 240))   -> a Y4M clip of moving shapes
    probe_camera(path)                                    -> a Y4M clip of the probe world and its question
    chromium_paths()                                      -> (browser, driver) or a reason string
    open_browser(clip)                                    -> a selenium Chrome driver whose camera plays ``clip``
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np


def write_y4m(path: str | os.PathLike, *, seconds: float = 4.0, fps: int = 10, size: tuple[int, int] = (320, 240)) -> Path:
    """A 4:2:0 Y4M clip (what Chromium's fake camera reads): a coloured background that changes
    every second, a white square moving across and a bar that grows with the frame number."""
    w, h = size
    n = int(seconds * fps)
    colours = [(200, 40, 40), (40, 170, 60), (40, 70, 210), (220, 200, 40)]
    path = Path(path)
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(n):
            rgb = np.empty((h, w, 3), np.float32)
            rgb[:] = colours[(i // fps) % len(colours)]
            x = int((w - 60) * (i / max(1, n - 1)))
            rgb[h // 2 - 30:h // 2 + 30, x:x + 60] = 255
            rgb[h - 12:h - 4, 4:4 + int((w - 8) * (i + 1) / n)] = 0
            r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
            y = 0.299 * r + 0.587 * g + 0.114 * b
            u = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
            v = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
            sub = lambda c: c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))  # noqa: E731
            out.write(b"FRAME\n")
            for plane in (y, sub(u), sub(v)):
                out.write(np.clip(np.round(plane), 0, 255).astype(np.uint8).tobytes())
    return path


def _y4m_frame(rgb: np.ndarray) -> bytes:
    """One 4:2:0 Y4M frame (BT.601 full range, as Chromium's fake camera reads it) of uint8 RGB."""
    h, w, _ = rgb.shape
    rgb = rgb.astype(np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    v = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
    sub = lambda c: c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))  # noqa: E731
    return b"FRAME\n" + b"".join(np.clip(np.round(p), 0, 255).astype(np.uint8).tobytes() for p in (y, sub(u), sub(v)))


@dataclass
class ProbeCamera:
    """A probe-world clip for the fake camera and its ``recall`` question (the star's colour):
    ``options[answer]`` is true; the star is on screen during ``star_s`` (clip seconds)."""

    path: Path
    question: str
    options: list[str]
    answer: int
    star_s: tuple[float, float]
    seconds: float


def probe_camera(path: str | os.PathLike, *, fps: int = 5, scale: int = 4, most_star_end_s: float = 9.0) -> ProbeCamera:
    """The probe world (`vidsift.probe.generate`'s stream scenes, drawn by `vidsift.probe.scene.render`)
    as a Y4M clip, each 56-px frame shown at ``scale`` x its size (nearest, so the model's own
    resize brings back the pixels it was trained on). The first evaluation seed whose star ends
    by ``most_star_end_s`` and is not the first option's colour (a biased model's guess) is used,
    so the question can be asked soon after the page starts; the clip loops in the fake camera,
    and the star's colour is the same in every loop."""
    import random

    from vidsift.probe.generate import EVAL_SEED_BASE, draw_scene
    from vidsift.probe.scene import render

    for seed in range(EVAL_SEED_BASE, EVAL_SEED_BASE + 200):
        scene, questions = draw_scene(random.Random(seed), 30.0, stream=True)
        recall = questions["recall"]
        (start, end), = recall["evidence"]
        if end <= most_star_end_s and recall["answer"] != 0:  # not the first option: a biased model's guess
            break
    else:
        raise RuntimeError(f"no probe stream scene has its star end by {most_star_end_s} s")
    path = Path(path)
    n = int(scene.duration_s * fps)
    with open(path, "wb") as out:
        size = scene.size * scale
        out.write(f"YUV4MPEG2 W{size} H{size} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(n):
            frame = render(scene, i / fps)
            out.write(_y4m_frame(np.repeat(np.repeat(frame, scale, axis=0), scale, axis=1)))
    return ProbeCamera(path, recall["question"], list(recall["options"]), recall["answer"], (start, end), n / fps)


def chromium_paths() -> tuple[str, str] | str:
    """(browser, chromedriver) paths, or why there are none."""
    browser = os.environ.get("VIDSIFT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("VIDSIFT_CHROMEDRIVER") or shutil.which("chromedriver")
    if not (browser and os.access(browser, os.X_OK) and driver and os.access(driver, os.X_OK)):
        return ("headless Chromium and chromedriver are not both installed (Debian: apt-get install chromium chromium-driver; "
                f"found browser={browser}, driver={driver})")
    return browser, driver


def open_browser(clip: str | os.PathLike, *, width: int = 1280, height: int = 900):
    """A headless Chromium (selenium) whose fake camera plays ``clip`` and grants it without asking."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    paths = chromium_paths()
    if isinstance(paths, str):
        raise RuntimeError(paths)
    browser, driver = paths
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--mute-audio",
                "--no-first-run", "--disable-extensions", f"--window-size={width},{height}",
                "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-video-capture={clip}"):
        options.add_argument(arg)
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager reach out for drivers
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))
