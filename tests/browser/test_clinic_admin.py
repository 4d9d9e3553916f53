"""A clinic admin's pages in Chromium on the platform as `make up` starts it: an appointment
type made in the browser is offered to patients; a leave entered for a provider takes that
day's free times away and removing it gives them back; the KPIs are drawn as charts with
every figure in a table; every page reflows at 200% zoom."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, expect

from .conftest import Platform, accessibility_violations

DESKTOP = {"width": 1280, "height": 900}


def admin_page(browser: Browser, platform: Platform, **context: Any) -> Page:
    page = browser.new_context(**{"viewport": DESKTOP, "locale": "en-US", **context}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(platform.app)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Clinic admin").click()
    page.get_by_role("link", name="Clinic admin").click()
    expect(
        page.get_by_role("heading", level=1, name="Clinic admin: Appointment types")
    ).to_be_visible()
    assert errors == []
    return page


def waited(check: Callable[[], Any], what: str, within: float = 30.0) -> Any:
    deadline = time.monotonic() + within
    while not (found := check()):
        assert time.monotonic() < deadline, f"{what}: not within {within}s"
        time.sleep(0.25)
    return found


def test_an_appointment_type_made_in_the_browser_is_offered_to_patients(
    browser: Browser, platform: Platform, screenshots: Path
) -> None:
    page = admin_page(browser, platform)
    assert accessibility_violations(page) == []
    page.get_by_role("button", name="New appointment type").click()
    form = page.get_by_role("form", name="New appointment type")
    name = form.get_by_label("Name")
    name.press_sequentially("Flu vaccination")  # key by key: the field keeps the focus
    expect(name).to_have_value("Flu vaccination")
    duration = form.get_by_label("Duration in minutes")
    duration.fill("a quarter hour")
    expect(form).to_contain_text("Write a whole number of minutes from 1 to 1440.")
    expect(duration).to_have_attribute("aria-invalid", "true")
    duration.fill("15")
    expect(form).not_to_contain_text("Write a whole number of minutes")
    form.get_by_label("What to do or bring").fill("Wear a sleeve you can roll up.")
    reminders = form.get_by_label("Reminders before the start")
    reminders.fill("tomorrow")
    expect(form).to_contain_text("Write up to 5 amounts of time from 5m to 30d")
    reminders.fill("1d, 2h")
    assert accessibility_violations(page) == []
    page.screenshot(path=screenshots / "admin-1-new-appointment-type.png", full_page=True)
    form.get_by_role("button", name="Create appointment type").click()
    expect(page.get_by_role("status").filter(has_text="Created: Flu vaccination")).to_be_visible()
    listed = page.locator(".admin-list li").filter(has_text="Flu vaccination")
    expect(listed).to_contain_text("15 min")
    expect(listed).to_contain_text("Reminders: 1d, 2h")

    # A patient is offered it (the directory is a projection: moments later).
    patient = platform.api(platform.token(role="patient", patient_id=platform.demo["patients"][0]))
    offered = waited(
        lambda: [
            t
            for t in patient.get("/appointment-types", params={"page_size": 200}).json()[
                "appointment_types"
            ]
            if t["name"] == "Flu vaccination"
        ],
        "the new type offered to patients",
    )
    assert offered[0]["duration_minutes"] == 15
    assert offered[0]["preparation"] == "Wear a sleeve you can roll up."
    assert [r["before_minutes"] for r in offered[0]["reminder_plan"]] == [1440, 120]

    # Edited in place: staff-only from now on.
    listed.get_by_role("button", name="Edit: Flu vaccination").click()
    form = page.get_by_role("form", name="Edit: Flu vaccination")
    form.get_by_label("Patients can book it online").uncheck()
    form.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Saved: Flu vaccination")).to_be_visible()
    expect(listed).to_contain_text("Booked by staff")


def free_times(api: httpx.Client, platform: Platform, provider: str, day: dt.date) -> list[Any]:
    answer = api.get(
        "/slots",
        params={
            "appointment_type_id": platform.demo["appointment_types"]["General consultation"],
            "location_id": platform.location_named("Berlin Mitte"),
            "provider_id": provider,
            "from": day.isoformat(),
            "to": day.isoformat(),
            "page_size": 100,
        },
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json()["slots"])


def test_a_leave_entered_for_a_provider_takes_the_days_free_times_away_until_removed(
    browser: Browser, platform: Platform, screenshots: Path
) -> None:
    api = platform.api(platform.token(role="clinic_admin"))
    berlin = platform.location_named("Berlin Mitte")
    provider = next(
        p
        for p in api.get("/providers", params={"location_id": berlin, "page_size": 200}).json()[
            "resources"
        ]
        if not p["retired"]
    )
    # A day ahead on which the provider has free time (not today: notice periods).
    today = dt.date.today()
    day = next(
        d
        for d in (today + dt.timedelta(days=n) for n in range(2, 16))
        if free_times(api, platform, provider["id"], d)
    )

    page = admin_page(browser, platform)
    page.get_by_role("link", name="Schedules").click()
    expect(page.get_by_role("heading", level=1, name="Clinic admin: Schedules")).to_be_visible()
    page.get_by_label("Whose schedule").select_option(provider["id"])
    hours = page.get_by_role("region", name="Weekly hours")
    expect(hours.get_by_role("row").nth(1)).to_be_visible()
    start = hours.get_by_role("textbox").first
    kept = start.input_value()
    start.fill("8")
    expect(hours).to_contain_text("Write times as HH:MM")
    start.fill(kept)
    expect(hours).not_to_contain_text("Write times as HH:MM")
    assert accessibility_violations(page) == []

    exceptions = page.get_by_role("region", name="Exceptions")
    exceptions.get_by_label("Kind").select_option("leave")
    exceptions.get_by_label("First day").fill(day.isoformat())
    exceptions.get_by_label("Last day").fill(day.isoformat())
    exceptions.get_by_label("From (time)").fill("00:00")
    exceptions.get_by_label("Until (time)").fill("23:59")
    exceptions.get_by_label("Reason (optional)").fill("Conference")
    exceptions.get_by_role("button", name="Add exception").click()
    expect(exceptions.get_by_role("status")).to_contain_text("Exception added: Leave")
    added = exceptions.get_by_role("listitem").filter(has_text="Conference")
    expect(added).to_be_visible()
    assert accessibility_violations(page) == []
    page.screenshot(path=screenshots / "admin-2-schedule-with-leave.png", full_page=True)

    waited(lambda: not free_times(api, platform, provider["id"], day), "the leave's day emptied")
    added.get_by_role("button", name=re.compile(r"^Remove: Leave")).click()
    added.get_by_role("button", name="Yes, remove it").click()  # asked once more
    expect(exceptions.get_by_role("status")).to_contain_text("Exception removed.")
    expect(added).to_have_count(0)
    waited(lambda: free_times(api, platform, provider["id"], day), "the day's times back")


def test_the_kpis_are_charts_with_every_figure_in_a_table(
    browser: Browser, platform: Platform, screenshots: Path
) -> None:
    page = admin_page(browser, platform)
    page.get_by_role("link", name="KPIs").click()
    expect(page.get_by_role("heading", level=1, name="Clinic admin: KPIs")).to_be_visible()
    for title in (
        "Utilisation: booked share of working time",
        "No-show rate",
        "Appointments booked",
    ):
        chart = page.get_by_role("figure").filter(has_text=title)
        expect(chart.get_by_role("img")).to_have_attribute(
            "aria-label", re.compile(f"^{title} from ")
        )
    figures = page.get_by_role("table", name="The figures")
    expect(figures.get_by_role("row")).to_have_count(5)  # a header and four weeks
    page.get_by_label("In buckets of").select_option("day")
    page.get_by_label("Location").select_option(label="Berlin Mitte")
    page.get_by_role("button", name="Show").click()
    expect(figures.get_by_role("row")).to_have_count(29)  # a header and 28 days
    assert accessibility_violations(page) == []
    page.screenshot(path=screenshots / "admin-3-kpis.png", full_page=True)


def test_every_staff_page_reflows_at_200_percent_zoom_without_sideways_scrolling(
    browser: Browser, platform: Platform
) -> None:
    # A 1280-pixel-wide window at 200% zoom lays the page out in 640 CSS pixels.
    page = admin_page(
        browser, platform, viewport={"width": 640, "height": 450}, device_scale_factor=2
    )
    for link, heading in (
        ("Appointment types", "Clinic admin: Appointment types"),
        ("Schedules", "Clinic admin: Schedules"),
        ("KPIs", "Clinic admin: KPIs"),
        ("Front desk", re.compile(r"^Front desk: ")),
    ):
        page.get_by_role("link", name=link, exact=True).click()
        expect(page.get_by_role("heading", level=1, name=heading)).to_be_visible()
        page.wait_for_load_state("networkidle")
        wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 0, f"{link}: {wide}px of sideways scrolling at 200% zoom"
