"""Opening a page in headless Chromium (Debian's ``chromium``) through Playwright.

Playwright drives the system browser at ``CHROMIUM``; it never downloads one. The
browser runs with a fresh profile directory, without sandbox, GPU, background
networking, component updates or sync, and with JavaScript disabled: the report must
read without it. Every request the page makes is recorded, and any request other
than the page itself is aborted and listed in ``blocked``; console errors and page
errors are collected.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import ConsoleMessage, Page, Route, async_playwright

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip

requires_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)",
)


@dataclass
class Visit:
    page: Page
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@asynccontextmanager
async def open_page(url: str, profile_dir: Path, width: int = 1200) -> AsyncIterator[Visit]:
    """``url`` loaded in a fresh headless Chromium; closed on exit."""
    assert CHROMIUM is not None
    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(profile_dir), executable_path=CHROMIUM, headless=True, args=FLAGS,
            java_script_enabled=False, viewport={"width": width, "height": 900},
        )  # fmt: skip
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            visit = Visit(page)

            def console(msg: ConsoleMessage) -> None:
                if msg.type == "error":
                    visit.errors.append(f"console: {msg.text}")

            async def only_the_page(route: Route) -> None:
                if route.request.url == url:
                    await route.continue_()
                else:
                    visit.blocked.append(route.request.url)
                    await route.abort()

            page.on("console", console)
            page.on("pageerror", lambda exc: visit.errors.append(f"page error: {exc}"))
            context.on("request", lambda request: visit.requests.append(request.url))
            await context.route("**/*", only_the_page)
            await page.goto(url, wait_until="load")
            yield visit
        finally:
            await context.close()


async def assert_alone_and_clean(visit: Visit, url: str, screenshot: Path) -> None:
    """Screenshot the whole page, then: no console or page error, nothing blocked, and the
    page itself was the only request."""
    await visit.page.screenshot(path=str(screenshot), full_page=True)
    assert visit.errors == []
    assert visit.blocked == []
    assert visit.requests == [url]


async def dangling_links(page: Page) -> list[str]:
    """In-page links (``#id``) whose target is not on the page."""
    hrefs = await page.locator("a[href^='#']").evaluate_all(
        "els => els.map(e => e.getAttribute('href'))"
    )
    missing = []
    for href in hrefs:
        if await page.locator(f"[id='{href[1:]}']").count() != 1:
            missing.append(href)
    return missing
