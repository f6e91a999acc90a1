"""The tenant pages in a real Chromium against the real stack: a newcomer's first evening (sign in,
make an endpoint by keyboard, test it, watch it fail into a dead letter, replay it), a monitor going
down onto the board, a hostile payload shown as text, and every page accessible and readable from
360 px to 1920 px."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web
from console_browser import drive, sign_in, wait_for
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select
from tenant_pages import fits, go, press_enter, tab_to, type_into, until

from hookyard_cli.devstack import free_port
from hookyard_common.broker.connection import Broker
from hookyard_common.core.settings import Settings
from hookyard_common.monitors.changes import MonitorChanges
from hookyard_common.monitors.model import COLLECTION as MONITORS
from hookyard_common.runtime.collections import COLLECTIONS
from hookyard_common.store.client import Store
from hookyard_heartbeat.scanner import Scanner
from monitor_helpers import MovableClock, create_monitor, ping


@pytest.fixture(autouse=True)
def leave_the_page(browser, start_ingest, start_consumer):
    """After each test, before its services stop: a page still polling would hold their shutdown up."""
    yield
    browser.get("about:blank")


# A hostile payload: run as HTML, it would set a flag, retitle the page and leave an <img>/<script>.
XSS_SCRIPT = "<script>window.__pwned = 1; document.title = 'pwned'</script>"
CREDENTIAL = "tok-never-shown-5f1c2a"
XSS_IMG = '"><img src=x onerror="window.__pwned = 2; document.title = \'pwned\'">'


def attempt_outcomes(driver) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('.test-result .attempt')]"
        ".map(a => a.className.replace('attempt attempt-', ''))"
    )


async def test_a_newcomers_first_evening(start_platform, receiver, browser, axe_check, screenshot):
    platform = await start_platform()
    key = await platform.tenant("first-evening")
    url = receiver.behave("/hook", [(200, 0)])

    def make_endpoint_by_keyboard() -> None:
        sign_in(browser, platform.base, key)
        go(browser, platform.base, "/endpoints", ".page-endpoints h1")
        tab_to(browser, ".page-head button")
        press_enter(browser)  # opens the form, focus on its URL
        until(browser, "document.activeElement.name === 'url'")
        browser.switch_to.active_element.send_keys("ftp://not-for-webhooks")
        tab_to(browser, "[name='retry_policy.schedule_seconds']")
        browser.switch_to.active_element.send_keys("0.05, 0.05")  # two quick retries, then a dead letter
        tab_to(browser, ".endpoint-form button[type=submit]")
        press_enter(browser)
        # The API's refusal, beside the field it names.
        problem = wait_for(browser, ".endpoint-form .field-error")
        assert problem.find_element(By.XPATH, "..").find_element(By.TAG_NAME, "input").get_attribute("name") == "url"
        type_into(browser, ".endpoint-form [name=url]", url)
        tab_to(browser, ".endpoint-form button[type=submit]")
        press_enter(browser)
        wait_for(browser, ".made", "Endpoint created")
        axe_check(browser)
        until(browser, "document.activeElement.matches('.made a')")
        press_enter(browser)  # to the new endpoint's page
        wait_for(browser, ".page-endpoint h1")

    def send_test(expected: str) -> list[str]:
        before = len(browser.find_elements(By.CSS_SELECTOR, ".test-result .attempt"))
        browser.find_element(By.XPATH, "//button[text()='Send a test event']").click()
        if before:
            until(browser, "!document.querySelector('.test-result .attempt')")  # the new event's own attempts
        wait_for(browser, ".test-result p .badge", expected, timeout=20)
        return attempt_outcomes(browser)

    await drive(make_endpoint_by_keyboard)
    assert await drive(send_test, "delivered") == ["success"]
    shown = await drive(lambda: browser.find_element(By.CSS_SELECTOR, ".test-result .attempt h3").text)
    assert "200" in shown and " ms" in shown
    assert await drive(lambda: browser.find_element(By.CSS_SELECTOR, ".health").text) == "Health: active"
    await drive(screenshot, browser, "endpoint")

    receiver.behave("/hook", [(500, 0)])  # the receiver breaks
    assert await drive(send_test, "dead") == ["failure", "failure", "failure"]
    assert "failing" in await drive(lambda: wait_for(browser, ".health", "failing").text)
    assert len(receiver.requests["/hook"]) == 4

    def replay_the_dead_letter() -> str:
        go(browser, platform.base, "/dead-letters", ".page-dead-letters table")
        row = browser.find_element(By.CSS_SELECTOR, ".page-dead-letters tbody tr")
        assert "console.test" in row.text and "3" in row.text
        axe_check(browser)
        screenshot(browser, "dead-letters")
        receiver.behave("/hook", [(200, 0)])  # fixed
        tab_to(browser, ".page-dead-letters tbody button")
        press_enter(browser)
        wait_for(browser, ".page-dead-letters .empty", "No dead letter", timeout=20)  # delivered: gone from the list
        go(browser, platform.base, "/messages", ".page-messages tbody tr")
        return browser.find_element(By.CSS_SELECTOR, ".page-messages tbody").text

    listed = await drive(replay_the_dead_letter)
    await receiver.wait_for("/hook", 5)
    assert listed.count("console.test") == 2 and "delivered" in listed and "dead" not in listed


async def test_a_range_replay_shows_its_progress(start_platform, receiver, browser):
    platform = await start_platform()
    key = await platform.tenant("range")
    url = receiver.behave("/down", [(503, 0)])
    status, made, _ = await platform.call(
        "POST", "/v1/endpoints", token=key, json={"url": url, "retry_policy": {"schedule_seconds": []}}
    )
    assert status == 201
    for n in range(3):
        status, _, _ = await platform.call(
            "POST", "/v1/events", token=key, json={"event_type": "a.b", "payload": {"n": n}}
        )
        assert status == 202
    await receiver.wait_for("/down", 3)
    for _ in range(100):
        status, dead, _ = await platform.call("GET", "/v1/dead-letters", token=key)
        if len(dead["data"]) == 3:
            break
        await asyncio.sleep(0.05)
    receiver.behave("/down", [(200, 0)])

    def replay_window() -> str:
        sign_in(browser, platform.base, key)
        go(browser, platform.base, "/dead-letters", ".page-dead-letters tbody tr")
        browser.find_element(By.CSS_SELECTOR, ".replay-range button[type=submit]").click()
        wait_for(browser, ".progress-words", "3 of 3 done: 3 delivered", timeout=20)
        label = browser.find_element(By.CSS_SELECTOR, ".progress label").text
        bar = browser.find_element(By.CSS_SELECTOR, ".progress progress")
        return f"{label}|{bar.get_attribute('value')}|{bar.get_attribute('max')}"

    assert await drive(replay_window) == "Replay progress|3|3"
    status, left, _ = await platform.call("GET", "/v1/dead-letters", token=key)
    assert status == 200 and left["data"] == []
    status, events, _ = await platform.call("GET", "/v1/events", token=key, params={"event_type": "a.b"})
    assert sorted(e["status"] for e in events["data"]) == ["delivered"] * 3


async def settled(store: Store) -> None:
    """The pings' own changes are settled (moving the clock past one in progress would make it look abandoned)."""
    for _ in range(200):
        if not await store[MONITORS].count_documents({"outbox_at": {"$exists": True}}):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("monitor changes still pending")


async def test_a_silent_monitor_goes_down_and_its_incident_shows_on_the_board(
    start_ingest, settings, browser, axe_check, screenshot
):
    clock = MovableClock()
    ingest = await start_ingest(clock=clock)
    key = await ingest.tenant("board")
    store = await Store.connect(settings.mongo_uri, settings.mongo_db)
    await store.ensure_indexes(COLLECTIONS, Settings())
    broker = await Broker.connect(settings.amqp_url, settings.retry_tiers_ms)
    try:
        scanner = Scanner(store, MonitorChanges(store, broker, clock), batch=100, clock=clock)
        # Both made and pinged 400 s ago, the fine one again 200 s ago: the browser's clock and the monitors' agree.
        clock.advance(-400)
        quiet = await create_monitor(
            ingest, key, name="nightly backup", heartbeat_interval_seconds=300, grace_seconds=60
        )
        fine = await create_monitor(ingest, key, name="api heartbeat", heartbeat_interval_seconds=300, grace_seconds=60)
        for made in (quiet, fine):
            assert (await ping(ingest, made["token"]))[0] == 200
        await settled(store)
        clock.advance(200)
        assert (await ping(ingest, fine["token"]))[0] == 200
        await settled(store)
        clock.advance(200)  # now: the quiet one is past interval + grace
        assert (await scanner.scan_once()).flipped == 1
        assert (await scanner.scan_once()).flipped == 0
    finally:
        await broker.close()
        await store.close()

    def read_board() -> tuple[str, str, str]:
        sign_in(browser, ingest.base, key)
        go(browser, ingest.base, "/monitors", ".board .tile")
        tiles = browser.find_elements(By.CSS_SELECTOR, ".board .tile")
        order = ",".join(t.get_attribute("data-monitor") for t in tiles)
        text = tiles[0].text
        axe_check(browser)
        screenshot(browser, "monitors")
        tiles[0].find_element(By.CSS_SELECTOR, "h2 a").click()
        wait_for(browser, ".page-monitor section table")
        incidents = browser.find_element(By.XPATH, "//section[h2='Incidents']").text
        axe_check(browser)
        screenshot(browser, "monitor")
        return order, text, incidents

    order, text, incidents = await drive(read_board)
    assert order == f"{quiet['id']},{fine['id']}"  # down first
    assert "nightly backup" in text and "down" in text and "Open incident" in text and "overdue" in text
    assert "Last ping\n6 min ago" in text
    assert "Uptime 24 h" in text
    assert "open" in incidents and "no_ping" in incidents


async def hostile_receiver() -> tuple[web.AppRunner, str]:
    """An endpoint that answers with the hostile text in its body."""

    async def answer(_: web.Request) -> web.Response:
        return web.Response(status=200, text=XSS_SCRIPT + XSS_IMG, content_type="text/html")

    app = web.Application()
    app.router.add_post("/", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/"


async def test_a_hostile_payload_header_and_answer_are_shown_as_text_and_never_run(
    start_platform, browser, axe_check, screenshot
):
    platform = await start_platform()
    key = await platform.tenant("hostile")
    runner, url = await hostile_receiver()
    try:
        status, _, _ = await platform.call(
            "POST",
            "/v1/endpoints",
            token=key,
            json={"url": url, "headers": {"X-Note": XSS_IMG}, "auth": {"type": "bearer", "token": CREDENTIAL}},
        )
        assert status == 201
        payload = {"note": XSS_SCRIPT, XSS_IMG: [XSS_IMG]}
        status, sent, _ = await platform.call(
            "POST", "/v1/events", token=key, json={"event_type": "x.y", "payload": payload}
        )
        assert status == 202
        for _ in range(100):
            attempts = (await platform.call("GET", f"/v1/events/{sent['id']}/attempts", token=key))[1]
            if attempts.get("data"):
                break

        def message_page() -> dict:
            sign_in(browser, platform.base, key)
            go(browser, platform.base, f"/messages/{sent['id']}", ".page-message .attempt")
            for details in browser.find_elements(By.CSS_SELECTOR, ".attempt details"):
                details.find_element(By.TAG_NAME, "summary").click()
            seen = browser.execute_script(
                """const main = document.getElementById('main');
                return {pwned: window.__pwned ?? null, title: document.title,
                        imgs: main.querySelectorAll('img').length, scripts: main.querySelectorAll('script').length,
                        payload: main.querySelector('pre.json').textContent,
                        attempt: main.querySelector('.attempt').textContent};"""
            )
            if seen["imgs"] == 0:  # (axe would only say an injected <img> lacks its alt text)
                axe_check(browser)
                screenshot(browser, "message")
            # Resent to its one endpoint, chosen by name: a second attempt arrives on the page.
            Select(browser.find_element(By.CSS_SELECTOR, ".resend select")).select_by_index(1)
            browser.find_element(By.CSS_SELECTOR, ".resend button[type=submit]").click()
            wait_for(browser, ".resend [role=status]", "Requeued to 1 endpoint")
            until(browser, "document.querySelectorAll('.page-message .attempt').length === 2")
            seen["page"] = browser.execute_script("return document.getElementById('main').textContent")
            return seen

        seen = await drive(message_page)
    finally:
        await runner.cleanup()
    assert seen["pwned"] is None and seen["title"] == "Hookyard console"
    assert seen["imgs"] == 0 and seen["scripts"] == 0
    assert json.loads(seen["payload"]) == payload  # the payload itself, as text
    assert XSS_SCRIPT + XSS_IMG in seen["attempt"] and XSS_IMG in seen["attempt"]  # response body, header
    assert CREDENTIAL not in seen["page"]  # the endpoint's credential is never shown


async def test_every_page_is_accessible_and_fits_a_phone_and_a_large_screen(
    start_platform, receiver, browser, axe_check, screenshot
):
    platform = await start_platform()
    key = await platform.tenant("pages")
    status, made, _ = await platform.call(
        "POST", "/v1/endpoints", token=key, json={"url": receiver.url("/ok"), "description": "orders service"}
    )
    assert status == 201
    broken = {
        "url": receiver.behave("/broken", [(500, 0)]),
        "description": "billing",
        "retry_policy": {"schedule_seconds": []},
    }
    assert (await platform.call("POST", "/v1/endpoints", token=key, json=broken))[0] == 201
    await platform.source(key, "hmac", name="tourism agent")
    status, sent, _ = await platform.call(
        "POST", "/v1/events", token=key, json={"event_type": "order.created", "payload": {"order_id": "o_1"}}
    )
    assert status == 202
    await receiver.wait_for("/ok", 1)
    await receiver.wait_for("/broken", 1)
    monitor = await create_monitor(platform, key, heartbeat_interval_seconds=300, grace_seconds=60)
    pages = [
        ("/endpoints", ".page-endpoints table", "endpoints"),
        (f"/endpoints/{made['id']}", ".page-endpoint .delivery-chart", None),
        ("/messages", ".page-messages table", "messages"),
        (f"/messages/{sent['id']}", ".page-message .attempt", None),
        ("/dead-letters", ".page-dead-letters .replay-range", None),
        ("/sources", ".page-sources table", "sources"),
        ("/monitors", ".page-monitors .tile", None),
        (f"/monitors/{monitor['id']}", ".page-monitor .timeline", None),
    ]

    def visit_each() -> list[str]:
        sign_in(browser, platform.base, key)
        seen = []
        for path, ready, shot in pages:
            go(browser, platform.base, path, ready)
            axe_check(browser)
            fits(browser)
            if shot:
                screenshot(browser, shot)
            seen.append(browser.find_element(By.TAG_NAME, "h1").text)
        # The log's filters are the API's: a wildcard type finds the event, another type nothing.
        go(browser, platform.base, "/messages?event_type=order.*", ".page-messages table")
        assert sent["id"] in browser.find_element(By.CSS_SELECTOR, ".page-messages tbody").text
        go(browser, platform.base, "/messages?event_type=invoice.*", ".page-messages .results .empty")
        return seen

    headings = await drive(visit_each)
    assert headings == [
        "Endpoints",
        "orders service",
        "Messages",
        "Event",
        "Dead letters",
        "Sources",
        "Monitors",
        "backup job new",
    ]


async def test_the_pages_actions_change_what_the_api_holds(platform, receiver, browser):
    key = await platform.tenant("actions")
    status, made, _ = await platform.call(
        "POST", "/v1/endpoints", token=key, json={"url": receiver.url("/ok"), "description": "orders"}
    )
    assert status == 201
    source = await platform.source(key, "hmac", name="agent")
    status, _, _ = await platform.call(
        "POST",
        f"/in/{source['id']}",
        data=b"{}",
        headers={"X-Webhook-Signature": "00", "Content-Type": "application/json"},
    )
    assert status == 401
    monitor = await create_monitor(platform, key, name="cron")

    def act() -> dict:
        sign_in(browser, platform.base, key)
        go(browser, platform.base, f"/endpoints/{made['id']}", ".endpoint-form")
        type_into(browser, ".endpoint-form [name=description]", "orders v2")
        browser.find_element(By.CSS_SELECTOR, ".endpoint-form button[type=submit]").click()
        wait_for(browser, ".saved", "Saved")
        browser.find_element(By.XPATH, "//button[text()='Rotate secret']").click()
        browser.switch_to.alert.accept()
        rotated = wait_for(browser, ".secret").text
        go(browser, platform.base, f"/monitors/{monitor['id']}", ".page-monitor .actions")
        browser.find_element(By.XPATH, "//button[text()='Pause']").click()
        paused = wait_for(browser, ".page-monitor h1 .badge", "paused").text
        go(browser, platform.base, "/sources", ".page-sources tbody tr")
        failures = browser.find_element(By.CSS_SELECTOR, ".page-sources tbody tr td:nth-child(5)").text
        return {"rotated": rotated, "paused": paused, "failures": failures}

    shown = await drive(act)
    endpoint = (await platform.call("GET", f"/v1/endpoints/{made['id']}", token=key))[1]
    secret = (await platform.call("GET", f"/v1/endpoints/{made['id']}/secret", token=key))[1]
    state = (await platform.call("GET", f"/v1/monitors/{monitor['id']}", token=key))[1]["state"]
    assert endpoint["description"] == "orders v2"
    assert shown["rotated"] == secret["secret"] and secret["previous_secrets_valid"] == 1
    assert shown["paused"] == state == "paused"
    assert shown["failures"].startswith("1, last")
