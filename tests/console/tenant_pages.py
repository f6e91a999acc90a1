"""Steps the tenant pages' browser tests share: go to a page, reach a control by keyboard, read what is shown.

Plain synchronous Selenium, run in a thread by `console_browser.drive` (the ingest answers on the
test's event loop meanwhile).
"""

from __future__ import annotations

from console_browser import console_url, wait_for
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

#: Widths the pages must fit without scrolling sideways: a small phone and a large screen.
WIDTHS = (360, 1920)


# The document's width and its window's, and (to say what to fix) the elements sticking out.
WIDEST = """
const d = document.documentElement;
const out = [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > d.clientWidth + 1);
return [d.scrollWidth, d.clientWidth, out.slice(-3).map(e => e.tagName + '.' + e.className)];
"""


def go(driver: WebDriver, base: str, hash_path: str, ready_css: str) -> None:
    """Open `#<hash_path>` and wait until `ready_css` is shown."""
    driver.get(console_url(base) + "#" + hash_path)
    wait_for(driver, ready_css, timeout=15)


def until(driver: WebDriver, script: str, timeout: float = 20.0):
    """Wait until the JavaScript expression `script` (returned) is truthy; its value."""
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: d.execute_script("return " + script))


def tab_to(driver: WebDriver, css: str, most: int = 80) -> None:
    """Press TAB until the focused element matches `css`: it is reachable by keyboard."""
    for _ in range(most):
        if driver.execute_script("return document.activeElement.matches(arguments[0])", css):
            return
        driver.switch_to.active_element.send_keys(Keys.TAB)
    raise AssertionError(f"{css} not reached with {most} TABs")


def press_enter(driver: WebDriver) -> None:
    driver.switch_to.active_element.send_keys(Keys.ENTER)


def type_into(driver: WebDriver, css: str, text: str) -> None:
    element = driver.find_element(By.CSS_SELECTOR, css)
    element.clear()
    element.send_keys(text)


def fits(driver: WebDriver) -> None:
    """The page is readable at each of WIDTHS: the document never scrolls sideways."""
    size = driver.get_window_size()
    try:
        for width in WIDTHS:
            driver.set_window_size(width, 900)
            until(driver, f"window.innerWidth <= {width}")
            overflow = driver.execute_script(WIDEST)
            assert overflow[0] <= overflow[1], f"{driver.current_url} at {width} px: {overflow}"
    finally:
        driver.set_window_size(size["width"], size["height"])
