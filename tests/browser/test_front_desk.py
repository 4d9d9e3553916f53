"""The front desk in a desktop-sized Chromium: a booking a patient makes on a phone appears
on the open desk view without a reload (the gateway's live updates), and the desk checks a
patient in with one action and reads why a time is taken."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from .conftest import Platform, Watched, accessibility_violations

DESKTOP = {"width": 1280, "height": 900}


def desk_page(browser: Browser, platform: Platform) -> Page:
    context = browser.new_context(viewport=DESKTOP, locale="en-US")
    page = context.new_page()
    page.goto(platform.app)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Front desk, Berlin Mitte").click()
    expect(page.get_by_role("heading", level=1, name="Front desk: Berlin Mitte")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text=re.compile("^Live$"))).to_be_visible()
    return page


def book_on_phone(page: Page, platform: Platform, who: str) -> str:
    """The patient books the first free time with anyone at Berlin Mitte; answers it."""
    page.goto(platform.app)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name=f"{who}, patient").click()
    page.get_by_role("radio", name=re.compile(r"^General consultation")).check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("radio", name=re.compile(r"^Berlin Mitte")).check()
    page.get_by_role("button", name="Continue").click()
    first = (
        page.get_by_role("list", name=re.compile(r"^Free times on ")).get_by_role("button").first
    )
    chosen = first.inner_text()
    first.click()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Book this appointment").click()
    expect(page.get_by_role("heading", level=1, name="You are all set")).to_be_visible()
    return chosen


def test_a_booking_made_on_a_phone_appears_on_the_open_desk_and_is_checked_in_in_one_action(
    browser: Browser, platform: Platform, watched: Watched, screenshots: Path
) -> None:
    desk = desk_page(browser, platform)
    errors: list[str] = []
    desk.on("pageerror", lambda e: errors.append(str(e)))
    cards = desk.locator("[data-appointment]").filter(has_text="Katherine Johnson")
    expect(cards).to_have_count(0)
    assert accessibility_violations(desk) == []

    chosen = book_on_phone(watched.page, platform, "Katherine Johnson")

    card = cards.first
    expect(card).to_be_visible(timeout=15_000)  # no reload: the live update brought it
    expect(card).to_contain_text(chosen)
    expect(card).to_contain_text("Booked")
    expect(card).to_contain_text("General consultation")
    desk.screenshot(path=screenshots / "desk-1-day-with-live-booking.png", full_page=True)
    assert accessibility_violations(desk) == []

    card.get_by_role("button", name=re.compile(r"^Check in: Katherine Johnson")).click()
    expect(card).to_contain_text("Checked in")
    expect(card.get_by_role("button", name=re.compile(r"^Complete: "))).to_be_visible()

    card.get_by_role("button", name=re.compile(r"^History: ")).click()
    history = desk.get_by_role(
        "region", name=re.compile(r"^Why is this time taken\? Katherine Johnson")
    )
    expect(history).to_contain_text("Booked")
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
