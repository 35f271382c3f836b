"""The live page in a real browser, with the shipped probe model: headless Chromium's fake camera
plays a probe-world clip (`vidsift.probe` scenes, written as Y4M), the page sends its frames over
the WebSocket to a server-side StreamSession, and the test asks the probe's ``recall`` question
with its options through the page's form, like a user, and checks that the answer shown is the
true one (the star's colour), beside the keyframe thumbnails and the memory meter. A screenshot is
saved as the test's artifact (its path is printed; ``VIDSIFT_SCREENSHOT=PATH`` copies it there:
that is how the README's picture is made). Skips, with the reason, only where Chromium cannot be
installed."""

from __future__ import annotations

import os
import shutil
import time

import pytest

pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[test]')")

from serve_browser import chromium_paths, open_browser, probe_camera  # noqa: E402

pytestmark = pytest.mark.timeout(300)

PATHS = chromium_paths()
BUDGET = 256


@pytest.fixture(scope="module")
def server():
    from vidsift import Pipeline
    from vidsift.pipeline.loader import load_adapter
    from vidsift.probe import checkpoint_path
    from vidsift.serve import ServeConfig, ServerThread

    pipe = Pipeline(load_adapter(checkpoint_path(), device="cpu"), name="vidsift/probe/checkpoint")
    config = ServeConfig(port=0, api_key="page-token", live_budget=BUDGET, live_fps=1.0, live_max_new_tokens=4)
    with ServerThread(pipe, config) as running:
        yield running


@pytest.mark.skipif(isinstance(PATHS, str), reason=PATHS if isinstance(PATHS, str) else "")
def test_fake_webcam_page_answers_the_probe_question_right_with_keyframes(server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    camera = probe_camera(tmp_path / "camera.y4m")
    truth = camera.options[camera.answer]
    driver = open_browser(camera.path)
    try:
        driver.set_page_load_timeout(120)
        driver.get(f"{server.url}/#token=page-token")
        wait = WebDriverWait(driver, 120, poll_frequency=0.2)  # a loaded 2-core machine
        assert driver.find_element(By.ID, "state").text == "camera off"
        driver.find_element(By.ID, "start").click()
        wait.until(lambda d: d.find_element(By.ID, "state").get_attribute("data-state") == "live")
        # the camera's frames reach the session's memory and come back as thumbnails with times;
        # ask once the memory holds frames from after the star (stream time starts after the camera's)
        after_star = camera.star_s[1] + 1.5
        wait.until(lambda d: any(float(f.get_attribute("data-t")) >= after_star
                                 for f in d.find_elements(By.CSS_SELECTOR, "#keyframes figure.keyframe")))
        driver.find_element(By.ID, "question").send_keys(camera.question)
        driver.find_element(By.ID, "options").send_keys(",".join(camera.options))
        driver.find_element(By.ID, "ask").click()
        answered = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#answers li.answered"))
        li = answered[0]
        question, answer, meta = (li.find_element(By.CLASS_NAME, c).text for c in ("q", "a", "meta"))
        chosen = li.get_attribute("data-choice")
        latency = float(li.get_attribute("data-latency"))
        thumbs = driver.find_elements(By.CSS_SELECTOR, "#keyframes figure.keyframe")
        captions = [f.find_element(By.TAG_NAME, "figcaption").text for f in thumbs]
        images_loaded = driver.execute_script(
            "return [...document.querySelectorAll('#keyframes img')].filter(i => i.complete && i.naturalWidth > 0).length")
        memory_text = driver.find_element(By.ID, "memory-text").text
        time.sleep(0.6)  # one more status tick so the screenshot shows the latest memory state
        shot = tmp_path / "live-page.png"
        driver.save_screenshot(str(shot))
        print(f"\nscreenshot: {shot}\npage answer latency: {latency:.3f} s; answer: {answer!r} (true: {truth}); "
              f"{meta}; memory: {memory_text}")
    finally:
        driver.quit()
    if os.environ.get("VIDSIFT_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["VIDSIFT_SCREENSHOT"])
    assert question == f"{camera.question} [{' / '.join(camera.options)}]"
    letter = "ABCDEFGHIJ"[camera.answer]
    assert chosen == truth and answer == f"{letter}. {truth}", (answer, truth)  # the probe model saw the star
    assert "memory tokens" in meta and 0 < latency < 60
    assert len(thumbs) >= 1 and images_loaded >= 1
    assert all(c.endswith("tok") and " s" in c for c in captions), captions  # a time and the tokens kept
    used, budget = (int(x) for x in memory_text.split(" tokens")[0].split(" / "))
    assert 0 < used <= budget == BUDGET
    assert shot.stat().st_size > 10_000
    health = __import__("httpx").get(server.url + "/healthz", timeout=10).json()
    assert health["status"] == "ok"
