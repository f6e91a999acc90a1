"""The console's security model in a real Chromium: where the key goes (nowhere), and a cross-site form."""

from __future__ import annotations

import pytest
from aiohttp import web
from console_browser import drive, sign_in, wait_for

from hookyard_cli.devstack import free_port

#: What a script in the page can see: the address, both storages, the cookie jar, the page, every URL fetched.
VISIBLE = """
const dump = (store) => Object.keys(store).map((k) => k + '=' + store.getItem(k)).join(';');
return {
  url: location.href,
  local: dump(localStorage),
  session: dump(sessionStorage),
  cookie: document.cookie,
  page: new XMLSerializer().serializeToString(document),
  fields: [...document.querySelectorAll('input')].map((i) => i.value).join(' '),
  fetched: performance.getEntriesByType('resource').map((e) => e.name).join(' '),
};
"""


async def test_the_key_is_in_no_url_storage_or_page_and_the_cookie_is_out_of_scripts_reach(start_ingest, browser):
    ingest = await start_ingest()
    key = await ingest.tenant()

    def look() -> tuple[dict, list[dict]]:
        sign_in(browser, ingest.base, key)
        browser.refresh()  # the session outlives a reload: the page learns it again from GET /console/session
        wait_for(browser, "#who button")
        return browser.execute_script(VISIBLE), browser.get_cookies()

    visible, cookies = await drive(look)
    for where, text in visible.items():
        assert key not in text, where
    assert visible["cookie"] == ""  # HttpOnly: no script in the page can read the session token
    [cookie] = [c for c in cookies if c["name"] == "hookyard_console"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["value"] != key


@pytest.mark.parametrize(
    "host, refusal",
    [
        ("localhost", "unauthorized"),  # another site: SameSite=Strict keeps the cookie home
        ("127.0.0.1", "csrf_failed"),  # the same site on another port gets the cookie, but not the CSRF token
    ],
)
async def test_a_form_on_another_origin_cannot_act_with_the_console_session(start_ingest, browser, host, refusal):
    ingest = await start_ingest()
    key = await ingest.tenant()
    target = f"{ingest.base}/v1/endpoints"
    attack = (
        f'<form id="f" method="post" action="{target}" enctype="text/plain">'
        '<input name=\'{"url": "http://127.0.0.1:9/x", "a": "\' value=\'"}\'></form>'
        "<script>document.getElementById('f').submit()</script>"
    )

    async def evil(_: web.Request) -> web.Response:
        return web.Response(text=attack, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", evil)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:

        def visit() -> str:
            sign_in(browser, ingest.base, key)
            browser.get(f"http://{host}:{port}/")
            wait_for(browser, "body", "error")
            return browser.find_element("css selector", "body").text

        answer = await drive(visit)
    finally:
        await runner.cleanup()
    assert f'"{refusal}"' in answer, answer
    status, listed, _ = await ingest.call("GET", "/v1/endpoints", token=key)
    assert status == 200 and listed["data"] == [], listed
