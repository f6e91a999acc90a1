"""The operator view in a real Chromium: a backlog shows while the dispatcher is stopped, and drains."""

from __future__ import annotations

import re
import time

from console_browser import drive, sign_in, wait_for
from selenium.webdriver.common.by import By

from helpers import publish
from hookyard_common.broker import topology

QUEUE_ROWS = (
    "return [...document.querySelectorAll('section[aria-labelledby=queues-title] tbody tr')]"
    ".map(tr => [...tr.cells].map(td => td.textContent))"
)
BACKLOG = 5
#: The operator view once its figures are drawn (it is `aria-busy` while a refresh is under way).
DRAWN = ".operator:not([aria-busy]) section[aria-labelledby=queues-title]"
#: An age of 3 s or more, as the page writes it: the broker's depth history dates the backlog.
AGED = re.compile(r"([3-9]|\d\d+) s|\d+ min \d+ s")


def lane_row(driver, lane: str, until, timeout: float = 40.0) -> list[str]:
    """The lane's row of the queues table once `until(row)` holds, pressing Refresh meanwhile (the
    broker's figures lag by its statistics interval)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = {row[0]: row for row in driver.execute_script(QUEUE_ROWS)}
        row = rows.get(lane)
        if row and until(row):
            return row
        assert time.monotonic() < deadline, f"{lane}: {row}"
        time.sleep(1.0)
        driver.find_element(By.CSS_SELECTOR, "button.refresh").click()
        wait_for(driver, DRAWN)


async def test_the_operator_sees_a_backlog_while_the_dispatcher_is_stopped_and_then_drain(
    start_ingest, start_dispatcher, browser, axe_check, screenshot
):
    ingest = await start_ingest()
    key = await ingest.tenant("acme")
    tenant_id = ingest.tenant_ids[-1]
    lane = topology.lane_queue(tenant_id)
    for n in range(BACKLOG):
        await publish(ingest, key, "order.created", {"n": n})

    def backlog() -> list[str]:
        sign_in(browser, ingest.base, ingest.settings.admin_token)
        wait_for(browser, DRAWN)
        row = lane_row(browser, lane, lambda row: row[1] == str(BACKLOG) and AGED.fullmatch(row[3]) is not None)
        axe_check(browser)
        screenshot(browser, "operator")
        return row

    name, messages, consumers, oldest = await drive(backlog)
    assert (messages, consumers) == (str(BACKLOG), "0")
    assert AGED.fullmatch(oldest), oldest

    await start_dispatcher()
    drained = await drive(lambda: lane_row(browser, lane, lambda row: row[1] == "0"))
    assert drained[2] != "0" and drained[3] == "empty", drained  # the dispatcher consumes it now

    def act_as() -> tuple[str, list[str]]:
        wait_for(browser, DRAWN)
        tenants = browser.find_element(By.CSS_SELECTOR, "section[aria-labelledby=tenants-title]")
        tenants.find_element(By.CSS_SELECTOR, "button[aria-label='Act as tenant acme']").click()
        banner = wait_for(browser, "#banner .acting", tenant_id)
        return banner.text, [link.text for link in browser.find_elements(By.CSS_SELECTOR, "#nav a")]

    banner, nav = await drive(act_as)
    assert f"Acting as tenant {tenant_id}" in banner
    assert nav == ["Endpoints", "Messages", "Dead letters", "Sources", "Monitors", "Operator"]
