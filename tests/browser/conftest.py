"""Browser tests: Debian's Chromium, headless, driven by Playwright (never `playwright
install`), against the whole platform as `make up` starts it with the web app built
(`make web`). Each step's screenshot goes to ``CLINIC_SCREENSHOTS_DIR`` (``make
screenshots`` points it at docs/screenshots, which the README shows), else to the test's
own directory."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

from clinic.devstack.components import Infrastructure
from clinic.devstack.issuer import write_demo_users
from clinic.devstack.stack import WEB_BUILD, Stack, demo_users
from clinic.devstack.testing import stack_env, wait_caught_up

AXE = Path(__file__).resolve().parents[2] / "web" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 360, "height": 740}


@dataclass
class Platform:
    gateway: str
    issuer: str
    booking: str
    sinks: str
    demo: dict[str, Any]

    @property
    def app(self) -> str:
        return f"{self.gateway}/app/"

    def token(self, **fields: Any) -> str:
        """A token from the local issuer's dev login, for a client other than the browser."""
        answer = httpx.post(
            f"{self.issuer}/token", json={"org": self.demo["organization_id"], **fields}
        )
        answer.raise_for_status()
        return str(answer.json()["access_token"])

    def api(self, token: str) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.gateway}/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )

    def patient_named(self, name: str) -> str:
        return next(i for i, n in self.demo["patient_names"].items() if n == name)

    def location_named(self, name: str) -> str:
        return str(self.demo["locations"][name])


@pytest.fixture(scope="package")
def platform(
    tmp_path_factory: pytest.TempPathFactory, infrastructure: Infrastructure
) -> Iterator[Platform]:
    """The platform for this folder's tests (a package), stopped after them: a stack of
    tests/e2e uses the same consumer groups and schemas, so two never run at once. The tests
    share it, so each counts what it adds rather than assuming an empty clinic."""
    if not (WEB_BUILD / "index.html").is_file():
        pytest.fail("the web app is not built: `make web` builds web/dist (`make test` does)")
    stack = Stack(tmp_path_factory.mktemp("web-up"), stack_env(infrastructure))
    try:
        _, services = stack.up(timeout=180)
        # Projections first catch up with what earlier stacks (modules) published: the free
        # times shown must be those booking would grant.
        for name in ("availability", "notification"):
            wait_caught_up(services[name].url, within=180)
        demo = httpx.get(f"{services['booking'].url}/demo", timeout=10).json()
        write_demo_users(stack.state_dir / "issuer", demo_users(demo))
        yield Platform(
            services["gateway"].url,
            services["issuer"].url,
            services["booking"].url,
            services["sinks"].url,
            demo,
        )
    finally:
        stack.down()


@pytest.fixture(scope="package")
def browser(platform: Platform) -> Iterator[Browser]:
    """Chromium, started after the platform: Playwright's sync API runs an event loop in
    this thread, and the platform's start needs none running."""
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        pytest.fail(
            "Chromium is not installed: `make browser` installs Debian's (`make test` does)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def phone(browser: Browser) -> Iterator[BrowserContext]:
    """A phone-sized browser in English with a fresh profile (no session, no language)."""
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="en-US"
    )
    yield context
    context.close()


@pytest.fixture
def screenshots(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    chosen = os.environ.get("CLINIC_SCREENSHOTS_DIR")
    directory = Path(chosen) if chosen else tmp_path / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


class Watched:
    """A page whose console errors and uncaught exceptions (a script the content security
    policy blocked among them) fail the test."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _console(self, message: ConsoleMessage) -> None:
        # Chromium logs every 4xx answer too; those are the API's answers, which the app
        # handles (a 409 for a time just taken): only the page's own errors count.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)


@pytest.fixture
def watched(phone: BrowserContext) -> Iterator[Watched]:
    watched = Watched(phone.new_page())
    yield watched
    assert watched.errors == [], watched.errors


def accessibility_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations (WCAG 2.1 A and AA rules) on the page as
    it is now. axe is evaluated over the DevTools protocol, so the page's content security
    policy stays in force."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    found: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document, {
             runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
             resultTypes: ['violations'],
           })).violations.map(v => ({
             id: v.id, impact: v.impact, help: v.help,
             nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5),
           }))"""
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]
