"""The live `/-/report` opened by a real browser: Chromium's Accept header gets the HTML
page, which loads nothing and shows the same numbers as the JSON the endpoint gives
other clients."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.browser import assert_alone_and_clean, open_page, requires_chromium
from tests.proxy.conftest import Proxy

pytestmark = [pytest.mark.slow, requires_chromium]


async def test_live_report_in_chromium(proxy: Proxy, tmp_path: Path) -> None:
    """No console error, no request but the page (not even a favicon), JSON's numbers."""
    async with aiohttp.ClientSession() as s:
        for status in (200, 201, 405, 405, 503):
            async with s.get(f"{proxy.url}/status/{status}") as r:
                await r.read()
        async with s.get(f"{proxy.admin_url}/-/report") as r:
            doc = await r.json()
    url = f"{proxy.admin_url}/-/report"
    async with open_page(url, tmp_path / "chromium-profile") as visit:
        page = visit.page
        await assert_alone_and_clean(visit, url, tmp_path / "live-report.png")
        assert await page.locator("h1").inner_text() == "Compliance report"
        totals = doc["totals"]
        for key in ("exchanges", "compliant", "noncompliant"):
            assert await page.locator(f"#n-{key}").inner_text() == str(totals[key]), key
        allow = page.locator("[id='finding-RFC9110-405-ALLOW'] td.count")
        assert await allow.inner_text() == str(doc["rules"]["RFC9110-405-ALLOW"]["count"]) == "2"
        exercised = doc["coverage"]["summary"]["matrix"]["exercised"]
        assert await page.locator("#cov-matrix .exercised").inner_text() == str(exercised)
        assert "live traffic since the proxy started" in await page.locator("header").inner_text()
