"""The reference web client (`/app/`) in headless Chromium, Debian's (no browser download),
driven by Playwright: pages served from an origin of their own (`?api=` names the e2e stack,
so CORS is exercised), a generated WAV as the microphone, and a screenshot of every page,
named in the failure, when a test fails."""

from __future__ import annotations

import math
import struct
import threading
import time
import wave
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright
from starlette.applications import Starlette
from starlette.routing import Mount

from parley.stack import Stack
from query_api.webclient import WebClientFiles, origin_of
from shared.settings import Settings
from tests.ports import free_port

CHROMIUM = Path("/usr/bin/chromium")
DEADLINE_MS = 30_000  # every wait on the page: generous, the machine is shared and noisy

expect.set_options(timeout=DEADLINE_MS)


def write_tone(path: Path, seconds: float = 3.0, rate: int = 48_000) -> Path:
    """A 440 Hz tone swelling and fading twice: a microphone whose waveform is not flat."""
    frames = bytearray()
    for i in range(int(seconds * rate)):
        t = i / rate
        amplitude = 0.1 + 0.8 * abs(math.sin(math.pi * t / (seconds / 2)))
        frames += struct.pack("<h", int(32767 * amplitude * math.sin(2 * math.pi * 440 * t)))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(frames))
    return path


@pytest.fixture(scope="module")  # closed before other modules' tests run their own loops
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"tests/browser need Chromium at {CHROMIUM}: install the Debian "
                    "package `chromium` (apt-get install -y chromium; .ci/run does it)")
    tone = write_tone(tmp_path_factory.mktemp("audio") / "microphone.wav")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={tone}"])
        yield browser
        browser.close()


class StaticServer(uvicorn.Server):
    """The client's files on a port of their own, in a thread of the test process."""

    def install_signal_handlers(self) -> None:  # not the main thread's
        pass


@pytest.fixture(scope="session")
def page_origin(stack: Stack) -> Iterator[str]:
    """Another origin than the API's (as a frontend's dev server is), serving the same files
    with a policy that names the stack's API and storage."""
    storage = origin_of(Settings.from_env(stack.env).s3_public_endpoint)
    app = Starlette(routes=[Mount("/app", app=WebClientFiles(storage, api_origin=stack.base_url))])
    port = free_port()
    server = StaticServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "static server did not start"
        time.sleep(0.05)
    yield f"http://localhost:{port}"
    server.should_exit = True
    thread.join(timeout=10)


class Pages:
    """The test's pages, each in a browser context of its own (its own localStorage: a user);
    what each logged to the console, and their screenshots when the test fails."""

    def __init__(self, browser: Browser, directory: Path) -> None:
        self.browser = browser
        self.directory = directory
        self.opened: dict[str, Page] = {}
        self.console: list[str] = []

    def open(self, name: str, url: str) -> Page:
        context = self.browser.new_context(viewport={"width": 1100, "height": 800})
        page = context.new_page()
        page.set_default_timeout(DEADLINE_MS)
        page.on("console", lambda message: self._log(name, message))
        page.on("pageerror", lambda error: self.console.append(f"{name}: {error}"))
        page.goto(url)
        self.opened[name] = page
        return page

    def _log(self, name: str, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console.append(f"{name}: {message.text}")

    def screenshots(self) -> list[Path]:
        paths = []
        for name, page in self.opened.items():
            path = self.directory / f"{name}.png"
            try:
                page.screenshot(path=path, full_page=True)
                paths.append(path)
            except Exception as exc:  # a crashed page must not hide the test's own failure
                self.console.append(f"{name}: no screenshot ({exc})")
        return paths

    def close(self) -> None:
        for page in self.opened.values():
            page.context.close()


@pytest.fixture
def pages(browser: Browser, tmp_path: Path) -> Iterator[Pages]:
    """The pages; at the end each one's screenshot is in the test's tmp_path, pass or fail."""
    opened = Pages(browser, tmp_path)
    yield opened
    opened.screenshots()
    opened.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    """A failed test's pages, photographed while they are still open, named in its report."""
    outcome = yield
    report = outcome.get_result()
    opened = getattr(item, "funcargs", {}).get("pages")
    if report.when != "call" or not report.failed or not isinstance(opened, Pages):
        return
    lines = [f"screenshot: {path}" for path in opened.screenshots()]
    lines += [f"console: {line}" for line in opened.console]
    text = "\n".join(lines) or "no page was open"
    if hasattr(report.longrepr, "addsection"):  # under the traceback
        report.longrepr.addsection("pages at the failure", text)
    else:
        report.sections.append(("pages at the failure", text))
