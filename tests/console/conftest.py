"""The console's browser: Debian's chromium driven by Selenium, one per test session.

Chromium and its driver come from the system package manager (apt-get as
root, by tests/tools.py), never a browser downloaded from elsewhere: Selenium is given both paths, so Selenium
Manager never runs. Selenium's calls block, and the ingest under test
serves on the test's event loop, so tests drive the browser from a thread
(`console_browser.drive`).

`axe_check(driver)` runs axe-core (vendored under `vendor/axe-core/`, see
its README) in the page and fails on a serious or critical violation;
`screenshot(driver, name)` saves `<name>.png` (into `docs/console/` under `make screenshots`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import tools


@pytest.fixture(scope="session")
def browser() -> Iterator:
    """A headless Chromium under Selenium, shared by the session's console tests (each starts signed out)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = tools.chromium()
    options = Options()
    options.binary_location = str(chromium)
    for argument in ("--headless=new", "--disable-dev-shm-usage", "--window-size=1280,900", "--disable-gpu"):
        options.add_argument(argument)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium's sandbox refuses to run as root
    driver = webdriver.Chrome(service=Service(executable_path=str(chromedriver)), options=options)
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
