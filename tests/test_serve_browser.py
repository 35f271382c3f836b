"""The live page in a real browser: headless Chromium's fake camera plays a generated clip, the
page sends its frames over the WebSocket to a server-side StreamSession on a tiny random
Qwen2.5-VL, and the test asks a question like a user and waits for the answer and keyframe
thumbnails in the DOM. A screenshot is saved as the test's artifact (its path is printed).
Skips, with the reason, only where Chromium cannot be installed."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[test]')")

from serve_browser import chromium_paths, open_browser, write_y4m  # noqa: E402

pytestmark = pytest.mark.timeout(300)

PATHS = chromium_paths()


@pytest.fixture(scope="module")
def server(tiny_checkpoint):
    from vidsift import Pipeline
    from vidsift.serve import ServeConfig, ServerThread

    pipe = Pipeline.from_pretrained(tiny_checkpoint("tiny-qwen2.5-vl"), device="cpu")
    config = ServeConfig(port=0, api_key="page-token", live_budget=192, live_fps=2.0, live_max_new_tokens=4)
    with ServerThread(pipe, config) as running:
        yield running


@pytest.mark.skipif(isinstance(PATHS, str), reason=PATHS if isinstance(PATHS, str) else "")
def test_fake_webcam_page_answers_with_keyframes(server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    clip = write_y4m(tmp_path / "camera.y4m", seconds=4, fps=10, size=(320, 240))
    driver = open_browser(clip)
    try:
        driver.set_page_load_timeout(120)
        driver.get(f"{server.url}/#token=page-token")
        wait = WebDriverWait(driver, 90, poll_frequency=0.2)  # a loaded 2-core machine
        assert driver.find_element(By.ID, "state").text == "camera off"
        driver.find_element(By.ID, "start").click()
        wait.until(lambda d: d.find_element(By.ID, "state").get_attribute("data-state") == "live")
        # the camera's frames reach the session's memory and come back as thumbnails with times
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#keyframes figure.keyframe img")) >= 1)
        driver.find_element(By.ID, "question").send_keys("What colour is the background?")
        driver.find_element(By.ID, "ask").click()
        answered = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#answers li.answered"))
        li = answered[0]
        question, answer, meta = (li.find_element(By.CLASS_NAME, c).text for c in ("q", "a", "meta"))
        latency = float(li.get_attribute("data-latency"))
        thumbs = driver.find_elements(By.CSS_SELECTOR, "#keyframes figure.keyframe")
        captions = [f.find_element(By.TAG_NAME, "figcaption").text for f in thumbs]
        images_loaded = driver.execute_script(
            "return [...document.querySelectorAll('#keyframes img')].filter(i => i.complete && i.naturalWidth > 0).length")
        memory_text = driver.find_element(By.ID, "memory-text").text
        time.sleep(0.6)  # one more status tick so the screenshot shows the latest memory state
        shot = tmp_path / "live-page.png"
        driver.save_screenshot(str(shot))
        print(f"\nscreenshot: {shot}\npage answer latency: {latency:.3f} s; answer: {answer!r}; {meta}; memory: {memory_text}")
    finally:
        driver.quit()
    assert question == "What colour is the background?"
    assert answer and answer != "thinking..." and not answer.startswith("error")
    assert "memory tokens" in meta and 0 < latency < 60
    assert len(thumbs) >= 1 and images_loaded >= 1
    assert all(c.endswith("tok") and " s" in c for c in captions), captions  # a time and the tokens kept
    used, budget = (int(x) for x in memory_text.split(" tokens")[0].split(" / "))
    assert 0 < used <= budget == 192
    assert shot.stat().st_size > 10_000
    health = __import__("httpx").get(server.url + "/healthz", timeout=10).json()
    assert health["status"] == "ok"
