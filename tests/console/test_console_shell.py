"""The console's shell in a real Chromium: signing in with a tenant's key shows that tenant's nav."""

from __future__ import annotations

from console_browser import drive, sign_in, wait_for
from selenium.webdriver.common.by import By


async def test_a_tenant_signs_in_with_its_key_and_sees_the_nav(start_ingest, browser, axe_check, screenshot):
    ingest = await start_ingest()
    key = await ingest.tenant("acme")
    tenant_id = ingest.tenant_ids[-1]

    def journey() -> tuple[list[str], int]:
        browser.get(ingest.base + "/console/#/sign-in")
        wait_for(browser, "form.sign-in")
        axe_check(browser)
        screenshot(browser, "sign-in")
        sign_in(browser, ingest.base, key)
        wait_for(browser, "#who", tenant_id)
        # The page's own calls to the public API ride on the cookie alone.
        status = browser.execute_async_script(
            "const done = arguments[0]; fetch('/v1/endpoints', {credentials: 'same-origin'}).then(r => done(r.status));"
        )
        return [link.text for link in browser.find_elements(By.CSS_SELECTOR, "#nav a")], status

    nav, status = await drive(journey)
    assert nav == ["Endpoints", "Messages", "Dead letters", "Sources", "Monitors"]
    assert status == 200
