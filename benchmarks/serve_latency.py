"""`vidsift serve` request latency: 20 sequential and 8 concurrent OpenAI-client chat completions
with a video (base64 data URL), and the live page's answer latency in headless Chromium.

The server runs in this process (uvicorn in a thread, 127.0.0.1, a free port) with a tiny random
checkpoint; each request carries the same ~2 s 160x120 H.264 clip as a data URL and asks for
``--max-tokens`` tokens. Latency is the client's wall time from sending the request to the
complete reply (streamed requests: to the last chunk). The page part (``--page``, needs Chromium
and chromedriver) plays a generated Y4M clip as the browser's camera, asks ``--page-questions``
questions through the page's form and reads the page's own measurement (question sent on the
WebSocket -> answer shown) next to the server's own time for the question (waiting for the
model included), then saves a screenshot.

    python benchmarks/serve_latency.py --out benchmarks/results/serve_latency.json \
        --page --screenshot benchmarks/results/serve_page.png
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np


def make_clip(path: Path, *, seconds: float = 2.0, fps: int = 12, size: tuple[int, int] = (160, 120)) -> Path:
    import av

    w, h = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(int(seconds * fps)):
            img = np.full((h, w, 3), (40 * (i // fps) % 256, 120, 200), np.uint8)
            x = int((w - 30) * i / (seconds * fps))
            img[h // 2 - 15:h // 2 + 15, x:x + 30] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def summary(values: list[float]) -> dict:
    ordered = sorted(values)
    q = lambda p: ordered[min(len(ordered) - 1, max(0, int(round(p * (len(ordered) - 1)))))]  # noqa: E731
    return {"n": len(values), "p50_s": round(statistics.median(values), 4), "p95_s": round(q(0.95), 4),
            "min_s": round(ordered[0], 4), "max_s": round(ordered[-1], 4), "mean_s": round(statistics.fmean(values), 4)}


def page_latency(url: str, token: str, questions: int, screenshot: Path | None) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from serve_browser import open_browser, write_y4m

    with tempfile.TemporaryDirectory() as tmp:
        clip = write_y4m(Path(tmp) / "camera.y4m", seconds=4, fps=10, size=(320, 240))
        driver = open_browser(clip)
        try:
            driver.set_page_load_timeout(120)
            driver.get(f"{url}/#token={token}")
            wait = WebDriverWait(driver, 120, poll_frequency=0.1)
            t0 = time.perf_counter()
            driver.find_element(By.ID, "start").click()
            wait.until(lambda d: d.find_element(By.ID, "state").get_attribute("data-state") == "live")
            live_s = time.perf_counter() - t0
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#keyframes figure.keyframe img"))
            first_thumb_s = time.perf_counter() - t0
            latencies, server_side = [], []
            for i in range(questions):
                driver.find_element(By.ID, "question").send_keys(["What colour is the background?", "What is moving?",
                                                                  "Is there a white square?"][i % 3])
                driver.find_element(By.ID, "ask").click()
                wait.until(lambda d, n=i + 1: len(d.find_elements(By.CSS_SELECTOR, "#answers li.answered")) == n)
                li = driver.find_elements(By.CSS_SELECTOR, "#answers li.answered")[0]  # newest first
                latencies.append(float(li.get_attribute("data-latency")))
                server_side.append(float(li.get_attribute("data-server-latency")))
                time.sleep(1.0)
            time.sleep(2.0)  # let more keyframes in for the picture
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                driver.save_screenshot(str(screenshot))
            thumbs = len(driver.find_elements(By.CSS_SELECTOR, "#keyframes figure.keyframe"))
        finally:
            driver.quit()
    return {"camera_to_live_s": round(live_s, 3), "camera_to_first_keyframe_s": round(first_thumb_s, 3),
            "answer_latency": summary(latencies), "answer_latency_raw_s": latencies,
            "server_ask_latency": summary(server_side), "server_ask_latency_raw_s": server_side,
            "keyframes_shown": thumbs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="random:tiny-qwen2.5-vl")
    parser.add_argument("--sequential", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--page", action="store_true", help="also measure the live page in headless Chromium")
    parser.add_argument("--page-questions", type=int, default=5)
    parser.add_argument("--screenshot", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import openai
    import torch

    from vidsift import Pipeline
    from vidsift.serve import ServeConfig, ServerThread

    load_before = [round(x, 2) for x in os.getloadavg()]
    pipe = Pipeline.from_pretrained(args.model, device="cpu")
    token = "bench-token"
    config = ServeConfig(port=0, api_key=token, live_budget=192, live_fps=2.0, live_max_new_tokens=args.max_tokens)
    with tempfile.TemporaryDirectory() as tmp, ServerThread(pipe, config) as server:
        clip = make_clip(Path(tmp) / "clip.mp4")
        url = "data:video/mp4;base64," + base64.b64encode(clip.read_bytes()).decode()
        messages = [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": url}},
                                                 {"type": "text", "text": "What is moving?"}]}]
        api = openai.OpenAI(base_url=server.url + "/v1", api_key=token, max_retries=0, timeout=300)

        def one(_: int) -> float:
            start = time.perf_counter()
            reply = api.chat.completions.create(model="tiny", messages=messages, max_tokens=args.max_tokens)
            assert reply.choices[0].message.content is not None
            return time.perf_counter() - start

        for i in range(args.warmup):
            one(i)
        sequential = [one(i) for i in range(args.sequential)]
        with concurrent.futures.ThreadPoolExecutor(args.concurrent) as pool:
            t0 = time.perf_counter()
            concurrent_lat = list(pool.map(one, range(args.concurrent)))
            concurrent_wall = time.perf_counter() - t0
        health = __import__("httpx").get(server.url + "/healthz", timeout=10).json()
        metrics = __import__("httpx").get(server.url + "/metrics?format=json", timeout=10,
                                          headers={"Authorization": f"Bearer {token}"}).json()
        page = page_latency(server.url, token, args.page_questions, args.screenshot) if args.page else None
    result = {
        "what": "vidsift serve latency: OpenAI-client chat completions with a base64 video, and the live page",
        "model": args.model, "max_tokens": args.max_tokens, "clip": "2 s, 12 fps, 160x120 H.264 (data URL)",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "torch": torch.__version__, "omp_threads": os.environ.get("OMP_NUM_THREADS"),
                    "note": "2 shared cores, other jobs running; run under nice -n 19",
                    "loadavg_1_5_15_before": load_before, "loadavg_1_5_15_after": [round(x, 2) for x in os.getloadavg()]},
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "sequential": {**summary(sequential), "raw_s": [round(x, 4) for x in sequential]},
        "concurrent": {**summary(concurrent_lat), "clients": args.concurrent, "wall_s": round(concurrent_wall, 4),
                       "raw_s": [round(x, 4) for x in concurrent_lat]},
        "server_side": {"latency_s": metrics["latency_s"], "answers_total": metrics["answers_total"]},
        "healthz_after": health,
        "page": page,
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
