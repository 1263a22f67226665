"""The page in a real browser: Debian's chromium driven by Playwright, the server on a loopback port.

Skipped, with the reason, where Playwright or chromium is missing (``.ci/run`` installs both).
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import urllib.error
import urllib.request
from urllib.parse import urlparse

import pytest
import soundfile as sf

from openjukebox.models import default_model
from openjukebox.sampling.bundle import Bundle
from openjukebox.sampling.song import song_lengths

from .conftest import SPAN

sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright (openjukebox[test])")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium: apt-get install chromium (as .ci/run does)")
WAIT_MS = 120_000  # a bound on a stuck page, not a timing


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app (API and page) served by uvicorn on a free loopback port, in this process."""
    import uvicorn

    from openjukebox.serve.app import create_app
    from openjukebox.serve.jobs import JobStore
    from openjukebox.serve.ui import mount

    store = JobStore(default_model(), tmp_path_factory.mktemp("browser"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(mount(create_app(store), store), "127.0.0.1", port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = threading.Event()
    while not server.started and thread.is_alive():
        started.wait(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join()
    store.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--autoplay-policy=no-user-gesture-required"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    """A fresh page; afterwards, no request may have left the loopback server."""
    context = browser.new_context(viewport={"width": 1100, "height": 1400}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(server)
    yield page
    context.close()
    hosts = {urlparse(u).netloc for u in requests if urlparse(u).scheme in ("http", "https", "ws", "wss")}
    assert hosts == {urlparse(server).netloc}, f"the page reached beyond loopback: {hosts}"


def field(page, elem_id: str):
    return page.locator(f"#{elem_id}").locator("textarea, input").first


def test_write_lyrics_generate_hear_and_download(page, server, tmp_path):
    assert "joseph_haydn" not in page.locator("#status").inner_text()
    assert f"songs {SPAN}" in page.content()
    field(page, "lyrics").fill("Nun danket alle Gott")
    field(page, "seed").fill("5")
    field(page, "segments").fill("3")
    page.locator("#generate").click()
    first = page.wait_for_selector("#player audio")
    assert "level_2_sample_0.wav" in first.get_attribute("src")  # the top level, before the upsamplers finish
    assert "preview" in page.locator("#player").inner_text()
    page.wait_for_selector("#player a.download")
    assert "done" in page.locator("#status").inner_text()
    audio = page.locator("#player audio").first
    assert "level_0_sample_0.wav" in audio.get_attribute("src")
    audio.evaluate("a => a.play()")
    page.wait_for_function("document.querySelector('#player audio').currentTime > 0")
    page.wait_for_selector("#player .word.current")  # the karaoke view follows the audio
    assert [w.inner_text() for w in page.locator("#player .word").all()] == ["Nun", "danket", "alle", "Gott"]
    with page.expect_download() as download:
        page.locator("#player a.download", has_text="WAV").click()
    wav, rate = sf.read(download.value.path())
    assert rate == 22050 and len(wav) == song_lengths(Bundle(default_model()).configs, 1.0)[0]
    with page.expect_download() as lrc:
        page.locator("#player a.download", has_text="LRC").click()
    assert "danket" in open(lrc.value.path(), encoding="utf-8").read()
    meta = json.loads(urllib.request.urlopen(f"{server}/api/jobs").read())[0]
    assert meta["request"]["segments"] == 3  # the form's segments reached the job
    shot = tmp_path / "page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:4] == b"\x89PNG"


def test_co_composer_keep_and_extend(page):
    field(page, "seconds").fill("2")
    field(page, "seed").fill("11")
    page.locator("#candidates").click()
    page.wait_for_function(
        "document.querySelectorAll('#player .song').length == 2 && "
        "document.querySelector('#status').innerText.includes('done')"
    )
    field(page, "pick").fill("1")
    page.locator("#keep").click()
    page.wait_for_function("document.querySelector('#kept').innerText.includes('kept 1 s of 2 s')")
    page.locator("#candidates").click()  # two continuations of the kept second
    page.wait_for_function("document.querySelector('#status').innerText.includes('level 2: 690/690')")
    page.wait_for_function("document.querySelector('#status').innerText.includes('done')")
    durations = page.locator("#player audio").evaluate_all(
        "els => Promise.all(els.map(a => a.duration > 0 ? a.duration : new Promise(r => "
        "a.addEventListener('loadedmetadata', () => r(a.duration)))))"
    )
    assert len(durations) == 2 and all(abs(d - 345 * 128 / 22050) < 1e-3 for d in durations)
    page.locator("#keep").click()  # candidate 1 of this round: the whole song
    page.wait_for_function("document.querySelector('#kept').innerText.includes('kept 2 s of 2 s')")
    page.locator("#upsample").click()
    level_0 = song_lengths(Bundle(default_model()).configs, 2.0)[1][0]  # 2 s of level-0 codes
    page.wait_for_function(  # sampled below the kept top level, and the job done
        f"document.querySelector('#status').innerText.includes('level 0: {level_0}/{level_0}') && "
        "document.querySelector('#status').innerText.includes('done')"
    )
    audio = page.locator("#player audio")
    assert audio.count() == 1 and "level_0_sample_0.wav" in audio.get_attribute("src")
    assert "finished" in page.locator("#player").inner_text()


def test_the_page_serves_no_file_by_path(server):
    for path in ("/gradio_api/file=/etc/passwd", "/file=/etc/passwd", "/gradio_api/file=../../../../etc/passwd"):
        try:
            with urllib.request.urlopen(server + path) as response:
                body, status = response.read(), response.status
        except urllib.error.HTTPError as e:
            body, status = e.read(), e.code
        assert 400 <= status < 500 and b"root:" not in body, (path, status)


def test_a_bad_request_shows_its_message(page):
    field(page, "seconds").fill("0.5")
    page.locator("#generate").click()
    error = page.wait_for_selector("#status .error")
    assert SPAN in error.inner_text() and "Traceback" not in page.content()
    field(page, "seconds").fill("1")
    field(page, "seed").fill("abc")
    page.locator("#generate").click()
    page.wait_for_function("document.querySelector('#status').innerText.includes('seed must be a whole number')")
