"""The front desk in a desktop-sized Chromium: a booking a patient makes on a phone appears
on the open desk view without a reload (the gateway's live updates), and the desk checks a
patient in with one action and reads why a time is taken."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
import time
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Locator, Page, expect

from .conftest import Platform, Watched, accessibility_violations

CHECK_IN_OPENS = dt.timedelta(hours=4)
"""Booking opens check-in this long before the start (its rule, not the desk's)."""

DESKTOP = {"width": 1280, "height": 900}
# The status, case and all (a string has_text ignores case: "Held, not booked yet" matched).
BOOKED = re.compile("Booked")


def desk_page(browser: Browser, platform: Platform) -> Page:
    context = browser.new_context(viewport=DESKTOP, locale="en-US")
    page = context.new_page()
    page.goto(platform.app)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Front desk, Berlin Mitte").click()
    expect(page.get_by_role("heading", level=1, name="Front desk: Berlin Mitte")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text=re.compile("^Live$"))).to_be_visible()
    return page


def to_the_times(page: Page, platform: Platform) -> Locator:
    """A signed-in patient's way to the free times of a general consultation at Berlin
    Mitte with anyone; answers the list of times (shown)."""
    page.goto(platform.app)
    page.get_by_role("radio", name=re.compile(r"^General consultation")).check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("radio", name=re.compile(r"^Berlin Mitte")).check()
    page.get_by_role("button", name="Continue").click()
    times = page.get_by_role("list", name=re.compile(r"^Free times on "))
    expect(times.get_by_role("button").first).to_be_visible()
    return times


def choose_on_phone(
    page: Page, platform: Platform, who: str, later: bool = False
) -> tuple[str, int]:
    """The patient chooses the first free time with anyone at Berlin Mitte (``later``: on a
    day after the first with free times, beyond the cancellation cut-off); answers it as
    shown, and how many days from today it is (late in the day, today has none left)."""
    page.goto(platform.app)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name=f"{who}, patient").click()
    expect(page.get_by_role("heading", level=1, name="What do you need?")).to_be_visible()
    times = to_the_times(page, platform)
    days = page.locator("input[name=day]")
    offset = int(
        page.eval_on_selector_all("input[name=day]", "all => all.findIndex(d => d.checked)")
    )
    assert offset >= 0, "the flow shows no day"
    if later:
        heading = page.get_by_role("heading", level=2, name=re.compile(r"^Free times on "))
        none = page.get_by_text("No free times on this day")
        for n in range(offset + 1, days.count()):
            shown = heading.inner_text()
            days.nth(n).check(force=True)  # the radio is drawn by its label
            expect(heading).not_to_have_text(shown)
            expect(none.or_(times.get_by_role("button").first)).to_be_visible()
            if times.get_by_role("button").count() > 0:
                offset = n
                break
    first = times.get_by_role("button").first
    chosen = first.inner_text()
    first.click()
    page.get_by_role("button", name="Continue").click()
    return chosen, offset


def book_on_phone(page: Page) -> None:
    """The patient, having chosen a time, books it."""
    page.get_by_role("button", name="Book this appointment").click()
    expect(page.get_by_role("heading", level=1, name="You are all set")).to_be_visible()


def desk_to(desk: Page, days: int) -> None:
    """The desk moves ``days`` ahead from the keyboard, and shows that day."""
    day = desk.get_by_role("heading", level=2).first
    for _ in range(days):
        shown = day.inner_text()
        desk.keyboard.press("ArrowRight")
        expect(day).not_to_have_text(shown)
    expect(desk.get_by_role("heading", level=3).first).to_be_visible()


def test_a_booking_made_on_a_phone_appears_on_the_open_desk_and_is_checked_in_in_one_action(
    browser: Browser, platform: Platform, watched: Watched, screenshots: Path
) -> None:
    desk = desk_page(browser, platform)
    errors: list[str] = []
    desk.on("pageerror", lambda e: errors.append(str(e)))
    expect(desk.get_by_role("heading", level=3).first).to_be_visible()  # the day is shown
    chosen, days = choose_on_phone(watched.page, platform, "Katherine Johnson")
    desk_to(desk, days)  # the day of the time chosen (today, unless none is left today)
    booked = desk.locator("[data-appointment]").filter(has_text="Katherine Johnson")
    booked = booked.filter(has_text=BOOKED)
    before = booked.count()  # (none on a fresh platform)
    assert accessibility_violations(desk) == []

    book_on_phone(watched.page)

    expect(booked).to_have_count(before + 1, timeout=15_000)  # no reload: it came live
    card = desk.locator(f"[data-appointment='{booked.last.get_attribute('data-appointment')}']")
    expect(card).to_contain_text(chosen)
    expect(card).to_contain_text("Booked")
    expect(card).to_contain_text("General consultation")
    desk.screenshot(path=screenshots / "desk-1-day-with-live-booking.png", full_page=True)
    assert accessibility_violations(desk) == []

    appointment = card.get_attribute("data-appointment")
    with platform.api(platform.token(role="org_admin")) as api:
        start = dt.datetime.fromisoformat(api.get(f"/appointments/{appointment}").json()["start"])
    card.get_by_role("button", name=re.compile(r"^Check in: Katherine Johnson")).click()
    checked_in = start - dt.datetime.now(dt.UTC) < CHECK_IN_OPENS  # booking's window
    if checked_in:
        expect(card).to_contain_text("Checked in")
        expect(card.get_by_role("button", name=re.compile(r"^Complete: "))).to_be_visible()
    else:  # the first free time is later (early morning, or on another day): the desk says why
        expect(desk.get_by_role("alert")).to_contain_text("check-in opens 4 hours before")
        expect(card).to_contain_text("Booked")

    card.get_by_role("button", name=re.compile(r"^History: ")).click()
    history = desk.get_by_role(
        "region", name=re.compile(r"^Why is this time taken\? Katherine Johnson")
    )
    expect(history).to_contain_text("Booked")
    if checked_in:
        expect(history).to_contain_text("CheckedIn")
    expect(history).to_contain_text("(patient, api)")
    assert accessibility_violations(desk) == []
    desk.screenshot(path=screenshots / "desk-2-history.png", full_page=True)
    assert errors == []


def test_the_desk_moves_by_day_and_week_from_the_keyboard(
    browser: Browser, platform: Platform
) -> None:
    desk = desk_page(browser, platform)
    day = desk.get_by_role("heading", level=2).first
    today = day.inner_text()
    desk.keyboard.press("ArrowRight")
    expect(day).not_to_have_text(today)
    desk.keyboard.press("t")
    expect(day).to_have_text(today)
    desk.keyboard.press("w")
    expect(
        desk.get_by_role("heading", level=2, name=re.compile(r"^The week of Dr\. "))
    ).to_be_visible()
    expect(desk.get_by_role("region", name=re.compile(r"^\w+day, ")).first).to_be_visible()
    desk.keyboard.press("?")
    expect(desk.get_by_role("region", name="Keyboard shortcuts")).to_be_visible()
    assert accessibility_violations(desk) == []


def mails_to(platform: Platform, address: str) -> dict[int, str]:
    """The mails the sink holds for ``address``: number -> the whole message as sent."""
    listed = httpx.get(f"{platform.sinks}/mail", timeout=10).json()
    return {
        m["n"]: httpx.get(f"{platform.sinks}/mail/{m['n']}", timeout=10).text
        for m in listed
        if m["to"] == address
    }


def links_in(platform: Platform, raw: str) -> dict[str, str]:
    """The action links in a mail: action -> address (the gateway says which action each
    link is, without signing in)."""
    message = email.message_from_string(raw, policy=email.policy.default)
    text = "".join(
        part.get_content() for part in message.walk() if part.get_content_type() == "text/plain"
    )
    found: dict[str, str] = {}
    for address in re.findall(r"https?://\S+/app/links/[A-Za-z0-9_-]+", text):
        shown = httpx.get(f"{platform.gateway}/v1/links/{address.rsplit('/', 1)[1]}", timeout=10)
        if shown.status_code == 200:
            found[shown.json()["action"]] = address
    return found


def test_a_patient_cancels_from_the_reminders_link_the_desk_sees_it_and_the_time_is_free_again(
    browser: Browser, platform: Platform, watched: Watched, screenshots: Path
) -> None:
    desk = desk_page(browser, platform)
    phone = watched.page
    before = set(mails_to(platform, "ada@example.org"))
    chosen, days = choose_on_phone(phone, platform, "Ada Lovelace", later=True)
    book_on_phone(phone)
    desk_to(desk, days)  # the desk moves to that day from the keyboard
    booked = desk.locator("[data-appointment]").filter(has_text="Ada Lovelace")
    booked = booked.filter(has_text=chosen).filter(has_text=BOOKED)
    expect(booked).to_have_count(1, timeout=15_000)
    card = desk.locator(f"[data-appointment='{booked.get_attribute('data-appointment')}']")

    deadline = time.monotonic() + 30
    while not (
        new := {n: m for n, m in mails_to(platform, "ada@example.org").items() if n not in before}
    ):
        assert time.monotonic() < deadline, "no confirmation mailed to Ada"
        time.sleep(0.5)
    links = links_in(platform, next(iter(new.values())))
    assert set(links) >= {"confirm", "cancel", "reschedule"}, links
    assert links["cancel"].startswith(platform.app + "links/")  # the link lands in the app

    phone.goto(links["cancel"])
    expect(phone.get_by_role("heading", level=1, name="Cancel your appointment")).to_be_visible()
    assert accessibility_violations(phone) == []
    phone.screenshot(path=screenshots / "patient-8-cancel-from-the-reminder.png", full_page=True)
    phone.get_by_role("button", name="Cancel this appointment").click()
    expect(phone.get_by_text("Your appointment is cancelled.")).to_be_visible()

    expect(card).to_contain_text("Cancelled", timeout=15_000)  # the desk, no reload

    phone.goto(links["cancel"])  # a link acts once
    expect(phone.get_by_text("This link was already used")).to_be_visible()

    # The time is offered again: the booking flow shows it among the free times.
    times = to_the_times(phone, platform)
    phone.locator("input[name=day]").nth(days).check(force=True)
    expect(times.get_by_role("button", name=chosen, exact=True)).to_be_visible()
