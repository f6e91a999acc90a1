"""The console's shell in a real Chromium: signing in with a tenant's key shows that tenant's nav."""

from __future__ import annotations

import contextlib

from console_browser import drive, fresh, wait_for
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait


def overflow_at(driver, width: int) -> int:
    """How many pixels the page runs past a window `width` wide (the window is put back after)."""
    size = driver.get_window_size()
    driver.set_window_size(width, 900)
    overflow = "return document.documentElement.scrollWidth - window.innerWidth"
    with contextlib.suppress(TimeoutException):  # the layout follows the resize a moment later
        WebDriverWait(driver, 3).until(lambda d: d.execute_script(overflow) <= 0 or None)
    try:
        return driver.execute_script(overflow)
    finally:
        driver.set_window_size(size["width"], size["height"])


async def test_a_tenant_signs_in_with_its_key_and_sees_the_nav(start_ingest, browser, axe_check, screenshot):
    ingest = await start_ingest()
    key = await ingest.tenant("acme")
    tenant_id = ingest.tenant_ids[-1]

    def journey() -> tuple[list[str], int, int, int]:
        fresh(browser, ingest.base)  # signed out, whatever an earlier test left
        axe_check(browser)
        screenshot(browser, "sign-in")
        # By keyboard: the field has the focus, Enter signs in.
        browser.switch_to.active_element.send_keys(key + Keys.ENTER)
        wait_for(browser, "#who button")
        wait_for(browser, "#who", tenant_id)
        # The page's own calls to the public API ride on the cookie alone.
        status = browser.execute_async_script(
            "const done = arguments[0]; fetch('/v1/endpoints', {credentials: 'same-origin'}).then(r => done(r.status));"
        )
        nav = [link.text for link in browser.find_elements(By.CSS_SELECTOR, "#nav a")]
        return nav, status, overflow_at(browser, 360), overflow_at(browser, 1920)

    nav, status, narrow, wide = await drive(journey)
    assert narrow == wide == 0  # readable at 360 px and at 1920 px: nothing runs off the side
    assert nav == ["Endpoints", "Messages", "Dead letters", "Sources", "Monitors"]
    assert status == 200


def test_every_picture_docs_console_shows_exists_and_is_one_the_tests_take():
    import re
    from pathlib import Path

    root = Path(__file__).parents[2]
    shown = set(re.findall(r"\(console/([\w-]+)\.png\)", (root / "docs" / "console.md").read_text()))
    tests = "".join(path.read_text() for path in Path(__file__).parent.glob("test_*.py"))
    taken = set(re.findall(r'"([\w-]+)"', tests))
    assert len(shown) >= 10, shown
    assert shown <= taken, shown - taken  # `make screenshots` retakes each one
    assert all((root / "docs" / "console" / f"{name}.png").stat().st_size > 1000 for name in shown)
