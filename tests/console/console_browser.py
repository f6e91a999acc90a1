"""Driving the console in Chromium from a test: sign in, wait for what the page shows, check it.

Selenium blocks; the ingest under test answers on the test's event loop.
`drive(fn, *args)` runs a function of the driver in a thread, so a test
writes its browser steps as plain synchronous code and awaits them.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

AXE = Path(__file__).with_name("vendor") / "axe-core" / "axe.min.js"
SHOTS = Path(__file__).parents[2] / "docs" / "console"
RUN_SHOTS = Path(tempfile.gettempdir()) / "hookyard-console-screenshots"
#: axe-core impacts that fail a test.
FAILING_IMPACTS = {"serious", "critical"}

T = TypeVar("T")


async def drive(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(fn, *args)


def console_url(base: str) -> str:
    return base.rstrip("/") + "/console/"


def wait_for(driver: WebDriver, css: str, text: str | None = None, timeout: float = 10.0):
    """The first element matching `css` (whose text contains `text`, when given), once it is shown."""
    wait = WebDriverWait(driver, timeout)
    if text is None:
        return wait.until(expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, css)))
    wait.until(expected_conditions.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))
    return driver.find_element(By.CSS_SELECTOR, css)


def fresh(driver: WebDriver, base: str) -> None:
    """The console's sign-in page, with no cookie or storage left by an earlier test."""
    driver.get(console_url(base) + "#/sign-in")
    driver.delete_all_cookies()
    driver.execute_script("localStorage.clear(); sessionStorage.clear();")
    driver.get(console_url(base) + "#/sign-in")
    wait_for(driver, "form.sign-in")


def sign_in(driver: WebDriver, base: str, key: str) -> None:
    """Sign in through the form, as a person does, and wait for the nav."""
    fresh(driver, base)
    field = driver.find_element(By.CSS_SELECTOR, "form.sign-in input[name=key]")
    field.send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "form.sign-in button[type=submit]").click()
    wait_for(driver, "#who button")


def axe_check(driver: WebDriver) -> list[dict]:
    """Run axe-core on the page; fail on a serious or critical violation. Returns every violation found."""
    if not driver.execute_script("return typeof window.axe === 'object'"):
        driver.execute_script(AXE.read_text())
    driver.set_script_timeout(30)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations), e => done({error: String(e)}));"
    )
    assert not isinstance(result, dict), result
    failing = [v for v in result if v.get("impact") in FAILING_IMPACTS]
    assert not failing, json.dumps(
        [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]} for v in failing], indent=1
    )
    return result


def screenshot(driver: WebDriver, name: str) -> Path:
    """Save the page as <name>.png: in docs/console/ (the pictures docs/console.md shows) when
    HOOKYARD_SCREENSHOTS=docs (`make screenshots`), else beside the test run, so that a plain
    `make test` leaves the checkout as it found it."""
    shots = SHOTS if os.environ.get("HOOKYARD_SCREENSHOTS") == "docs" else RUN_SHOTS
    shots.mkdir(parents=True, exist_ok=True)
    path = shots / f"{name}.png"
    assert driver.save_screenshot(str(path)), path
    assert path.stat().st_size > 1000, path  # a picture of the page, not an empty file
    return path
