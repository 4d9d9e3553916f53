"""The web app's first load, in Debian's Chromium under Lighthouse's mobile throttling
(Slow 4G: 150 ms round trip, 1.6 Mbit/s down, 750 kbit/s up; the CPU 4 times slower).

Run with ``make bench`` (after ``make web``). Starts the platform as ``make up`` does, then
loads, in a fresh browser profile each time (nothing cached), three times each:
- the patient's first screen before signing in (the "Sign in" button usable), and
- a signed-in patient's first step ("What do you need?" with its choices: the app, its
  configuration, the patient's record, the types and the locations from /v1);
and prints the bytes transferred and the time from navigation to that screen, beside the
same loads with compression refused (what the build weighs uncompressed), and unthrottled.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, sync_playwright

from clinic.devstack.components import free_port
from clinic.devstack.infra import Ladder
from clinic.devstack.stack import SERVICES, WEB_BUILD, Stack
from clinic.devstack.testing import NO_QUIET_HOURS

ROOT = Path(__file__).resolve().parents[1]
SLOW_4G = {
    "offline": False,
    "latency": 150,
    "downloadThroughput": 1_638_400 / 8,
    "uploadThroughput": 750_000 / 8,
}
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run"]  # fmt: skip


def load(
    browser: Browser,
    url: str,
    ready: str,
    session: dict[str, Any] | None,
    throttled: bool,
    compressed: bool,
) -> tuple[int, float]:
    """(bytes transferred, milliseconds from navigation until ``ready`` is visible)."""
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True,
                                  locale="en-US")  # fmt: skip
    if session is not None:
        context.add_init_script(
            f"sessionStorage.setItem('clinic.session', {json.dumps(json.dumps(session))})"
        )
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    if not compressed:
        cdp.send("Network.setExtraHTTPHeaders", {"headers": {"Accept-Encoding": "identity"}})
    if throttled:
        cdp.send("Network.emulateNetworkConditions", SLOW_4G)
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": 4})
    sizes: list[int] = []
    cdp.on("Network.loadingFinished", lambda e: sizes.append(int(e["encodedDataLength"])))
    page.goto(url, wait_until="commit")
    page.get_by_text(ready, exact=True).first.wait_for(state="visible", timeout=120_000)
    took = float(page.evaluate("performance.now()"))
    page.wait_for_load_state("networkidle")
    context.close()
    return sum(sizes), took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args, _ = parser.parse_known_args()
    if not (WEB_BUILD / "index.html").is_file():
        raise SystemExit("build the web app first: make web")
    infra = Ladder(ROOT / ".local" / "bench" / "infra").up()
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_PORT", "_URL"))}
    env.update(infra.environment())
    env.update({f"{s.env_prefix}PORT": str(free_port()) for s in SERVICES})
    env.update(NO_QUIET_HOURS)
    state = Path(tempfile.mkdtemp(prefix="web-bench-"))
    stack = Stack(state, env)
    try:
        _, services = stack.up(timeout=180)
        gateway, issuer = services["gateway"].url, services["issuer"].url
        demo = httpx.get(f"{services['booking'].url}/demo", timeout=10).json()
        token = httpx.post(f"{issuer}/token", json={
            "role": "patient", "org": demo["organization_id"],
            "patient_id": demo["patients"][0]}).json()  # fmt: skip
        session = {"token": token["access_token"], "expiresAt": (time.time() + 3000) * 1000}
        executable = shutil.which("chromium") or "/usr/bin/chromium"
        print(f"{'first screen':<42} {'network':<10} {'sent as':<12} {'KB':>7} "
              f"{'ms p50':>8} {'ms max':>8}")  # fmt: skip
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=ARGS)
            for label, ready, signed_in in (
                ("sign-in page (before signing in)", "Sign in", None),
                ("signed-in patient: What do you need?", "What do you need?", session),
            ):
                for throttled, compressed in ((True, True), (True, False), (False, True)):
                    runs = [
                        load(browser, f"{gateway}/app/", ready, signed_in, throttled, compressed)
                        for _ in range(args.runs)
                    ]
                    size = statistics.median(r[0] for r in runs) / 1024
                    times = [r[1] for r in runs]
                    print(f"{label:<42} {'Slow 4G' if throttled else 'local':<10} "
                          f"{'br' if compressed else 'identity':<12} {size:>7.1f} "
                          f"{statistics.median(times):>8.0f} {max(times):>8.0f}")  # fmt: skip
            browser.close()
        sizes = {p.name: p.stat().st_size for p in (WEB_BUILD / "assets").iterdir()}
        print("build:", ", ".join(f"{n} {s / 1024:.1f} KB" for n, s in sorted(sizes.items())))
    finally:
        stack.down()


if __name__ == "__main__":
    main()
