"""The console's browser: Debian's chromium driven by Selenium, one per test session.

Chromium and its driver come from the system package manager (apt-get as
root, as `devstack.ensure_rabbitmq_installed` installs RabbitMQ), never a
browser downloaded from elsewhere: Selenium is given both paths, so Selenium
Manager never runs. Selenium's calls block, and the ingest under test
serves on the test's event loop, so tests drive the browser from a thread
(`console_browser.drive`).

`axe_check(driver)` runs axe-core (vendored under `vendor/axe-core/`, see
its README) in the page and fails on a serious or critical violation;
`screenshot(driver, name)` saves `<name>.png` (into `docs/console/` under `make screenshots`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

CHROMIUM_PACKAGES = ("chromium", "chromium-driver")


def ensure_chromium() -> tuple[str, str]:
    """(chromium, chromedriver) paths, installing Debian's packages when they are missing and we are root."""
    found = shutil.which("chromium"), shutil.which("chromedriver")
    if all(found):
        return found  # type: ignore[return-value]
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *CHROMIUM_PACKAGES], check=True, env=env)
        found = shutil.which("chromium"), shutil.which("chromedriver")
    if not all(found):
        pytest.fail(
            "the console's tests need Debian's chromium and chromium-driver: apt-get install chromium chromium-driver"
        )
    return found  # type: ignore[return-value]


@pytest.fixture(scope="session")
def browser() -> Iterator:
    """A headless Chromium under Selenium, shared by the session's console tests (each starts signed out)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = ensure_chromium()
    options = Options()
    options.binary_location = chromium
    for argument in ("--headless=new", "--disable-dev-shm-usage", "--window-size=1280,900", "--disable-gpu"):
        options.add_argument(argument)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium's sandbox refuses to run as root
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def axe_check():
    from console_browser import axe_check

    return axe_check


@pytest.fixture
def screenshot():
    from console_browser import screenshot

    return screenshot
