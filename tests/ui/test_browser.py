"""One real-browser test: ``deepapps ui`` serves the app and headless Chromium renders the plugin list.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install -y chromium chromium-driver``)
and selenium; skipped with a message when Chromium is absent.
"""

from __future__ import annotations

import importlib.metadata
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

CHROMIUM = os.environ.get("DEEPAPPS_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("DEEPAPPS_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1000",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"`deepapps ui` exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200 and resp.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{url} did not answer 'ok' within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def ui_server(tmp_path):
    """``deepapps ui --port N`` in its own process group; yields the base URL, then stops the group."""
    port = _free_port()
    log = tmp_path / "ui.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "deepapps.cli", "ui", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # deepapps ui starts streamlit as a child: stop both together
            env={**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"},
        )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", proc, log)
        yield f"http://127.0.0.1:{port}/"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.fixture
def browser(tmp_path):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip(
            f"Chromium not found at {CHROMIUM} / {CHROMEDRIVER}: apt-get install -y chromium chromium-driver"
        )
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(
        options=options, service=Service(CHROMEDRIVER, log_output=str(tmp_path / "driver.log"))
    )
    try:
        yield driver
    finally:
        driver.quit()


def test_home_page_renders_the_plugin_list(browser, ui_server, tmp_path):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    installed = sorted({ep.name for ep in importlib.metadata.entry_points(group="deepapps")})
    expected = ["Plugins", "Tasks", *installed]
    browser.get(ui_server)

    def page_text(driver) -> str:
        return driver.find_element(By.TAG_NAME, "body").text

    try:
        WebDriverWait(browser, 120, poll_frequency=0.5).until(
            lambda d: "Plugins" in page_text(d) and all(name in page_text(d) for name in expected)
        )
    except TimeoutException:
        browser.save_screenshot(str(tmp_path / "home-timeout.png"))
        missing = [name for name in expected if name not in page_text(browser)]
        pytest.fail(f"the home page never showed {missing}; page text:\n{page_text(browser)[:3000]}")
    shot = tmp_path / "home.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    text = page_text(browser)
    assert "installed," in text and "failed" in text  # the plugin summary line
    if "example" in installed:
        assert "color-palette" in text and "kmeans-palette" in text
    assert "Traceback" not in text
