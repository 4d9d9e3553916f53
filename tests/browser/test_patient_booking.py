"""A patient books on a phone-sized screen, in Debian's Chromium, against the platform as
`make up` starts it: every step is screenshot and checked by axe-core."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from playwright.sync_api import Page, expect

from .conftest import Platform, Watched, accessibility_violations

CONSULTATION = re.compile(r"^General consultation")
BERLIN = re.compile(r"^Berlin Mitte")


def step(page: Page, screenshots: Path, name: str, heading: str) -> None:
    """The step is shown (its heading), has no serious accessibility violation, and is
    screenshot as ``name``."""
    expect(page.get_by_role("heading", level=1, name=heading)).to_be_visible()
    assert accessibility_violations(page) == [], name
    page.screenshot(path=screenshots / f"{name}.png", full_page=True)


def sign_in(page: Page, platform: Platform, who: str) -> None:
    page.goto(platform.app)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name=f"{who}, patient").click()
    expect(page.get_by_role("heading", level=1, name="What do you need?")).to_be_visible()


def test_a_patient_on_a_phone_books_step_by_step_and_finds_the_visit_in_their_appointments(
    platform: Platform, watched: Watched, screenshots: Path
) -> None:
    ada = platform.api(
        platform.token(role="patient", patient_id=platform.patient_named("Ada Lovelace"))
    )
    booked_before = [a["status"] for a in ada.get("/me/appointments").json()["appointments"]].count(
        "booked"
    )
    page = watched.page
    page.goto(platform.app)
    step(page, screenshots, "patient-0-sign-in", "Sign in to book and manage your appointments")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Ada Lovelace, patient").click()

    step(page, screenshots, "patient-1-what-you-need", "What do you need?")
    assert page.get_by_text("Step 1 of 6: What you need").is_visible()
    continue_button = page.get_by_role("button", name="Continue")
    expect(continue_button).to_be_disabled()  # nothing chosen yet
    page.get_by_role("radio", name=CONSULTATION).check()
    continue_button.click()

    expect(page.get_by_role("heading", level=1, name="Where and with whom?")).to_be_focused()
    page.get_by_role("radio", name=BERLIN).check()
    expect(page.get_by_role("radio", name=re.compile(r"^Anyone available"))).to_be_checked()
    expect(page.get_by_text(re.compile(r"^Next free: ")).first).to_be_visible()
    expect(page.get_by_text("Looking for free time…")).to_have_count(0)
    # Each clinician's card says the languages they see patients in, by name.
    expect(page.get_by_text(re.compile(r"^Speaks: German\b")).first).to_be_visible()
    step(page, screenshots, "patient-2-where-and-with-whom", "Where and with whom?")
    page.get_by_role("button", name="Continue").click()

    times = page.get_by_role("list", name=re.compile(r"^Free times on "))
    expect(times.get_by_role("button").first).to_be_visible()
    step(page, screenshots, "patient-3-when", "When suits you?")
    chosen = times.get_by_role("button").first.inner_text()
    times.get_by_role("button").first.click()

    expect(
        page.get_by_text(re.compile(rf"We are holding .*{chosen} for you\. Time left: \d+:\d\d"))
    ).to_be_visible()
    expect(page.get_by_role("textbox", name="Email")).to_have_value("ada@example.org")
    page.get_by_role("textbox", name="Mobile phone").fill(
        "0151 23"
    )  # no country code: said how to fix
    page.get_by_role("textbox", name="Mobile phone").blur()
    expect(page.get_by_text("Enter your mobile number with the country code")).to_be_visible()
    expect(page.get_by_role("textbox", name="Mobile phone")).to_have_attribute(
        "aria-invalid", "true"
    )
    page.get_by_role("textbox", name="Mobile phone").fill("+49 1555 00000")
    expect(page.get_by_text("Enter your mobile number with the country code")).to_have_count(0)
    step(page, screenshots, "patient-4-your-details", "Your details")
    page.get_by_role("button", name="Continue").click()

    step(page, screenshots, "patient-5-review", "Please check your appointment")
    summary = page.locator("dl.summary").first
    expect(summary).to_contain_text("General consultation (20 minutes)")
    expect(summary).to_contain_text("Berlin Mitte, Invalidenstr. 1, Berlin")
    expect(summary).to_contain_text(chosen)
    page.get_by_role("button", name="Book this appointment").click()

    step(page, screenshots, "patient-6-all-set", "You are all set")
    page.get_by_role("link", name="See my appointments").click()
    step(page, screenshots, "patient-7-my-appointments", "My appointments")
    upcoming = page.get_by_role("region", name="Coming up")
    expect(upcoming.get_by_role("listitem").filter(has_text=chosen).first).to_contain_text("Booked")

    # The platform agrees: one more booked visit for Ada.
    mine = ada.get("/me/appointments").json()["appointments"]
    assert [a["status"] for a in mine].count("booked") == booked_before + 1


def test_a_time_another_client_takes_meanwhile_is_answered_with_the_nearest_free_times(
    platform: Platform, watched: Watched, screenshots: Path
) -> None:
    page = watched.page
    sign_in(page, platform, "Grace Hopper")
    page.get_by_role("radio", name=CONSULTATION).check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("radio", name=BERLIN).check()
    doctor = page.get_by_role("radio", name=re.compile(r"^Dr\. ")).first
    label = doctor.evaluate("e => e.closest('label').innerText")
    doctor_name = label.split("\n")[0].strip()
    doctor.check()
    doctor_id = doctor.get_attribute("value")
    page.get_by_role("button", name="Continue").click()
    times = page.get_by_role("list", name=re.compile(r"^Free times on "))
    first = times.get_by_role("button").first
    expect(first).to_be_visible()
    shown = first.inner_text()

    # Meanwhile the front desk books that very time with that doctor for another patient.
    berlin = platform.location_named("Berlin Mitte")
    desk = platform.api(platform.token(role="front_desk", locations=[berlin]))
    consultation = platform.demo["appointment_types"]["General consultation"]
    day = page.locator("input[name=day]:checked").get_attribute("value")
    slots = desk.get(
        "/slots",
        params={
            "appointment_type_id": consultation,
            "location_id": berlin,
            "from": day,
            "to": day,
            "provider_id": doctor_id,
            "page_size": 200,
        },
    ).json()["slots"]
    start = first.get_attribute("data-start")
    taken = next(
        s for s in slots if s["start"] == start and doctor_name in s["resource_names"].values()
    )
    booked = desk.post(
        "/appointments",
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={
            "appointment_type_id": consultation,
            "location_id": berlin,
            "patient_id": platform.patient_named("Alan Turing"),
            "start": taken["start"],
            "preferred_resources": taken["resources"],
        },
    )
    assert booked.status_code == 201, booked.text

    first.click()
    notice = page.get_by_role("alert")
    expect(notice).to_contain_text(
        f"Sorry, someone else just took {shown}. These times are close to it:"
    )
    alternatives = notice.get_by_role("button")
    expect(alternatives.first).to_be_visible()
    assert 1 <= alternatives.count() <= 3
    assert accessibility_violations(page) == []
    page.screenshot(path=screenshots / "patient-3b-time-taken.png", full_page=True)

    # An alternative another client takes first is answered the same way (this platform is
    # shared with other tests): up to three tries.
    details = page.get_by_role("heading", level=1, name="Your details")
    for _ in range(3):
        notice.get_by_role("button").first.click()
        # The hold answers: the details, or (taken again) the times to choose from, enabled.
        expect(details.or_(notice.locator("button:enabled").first)).to_be_visible(timeout=15_000)
        if details.is_visible():
            break
    expect(details).to_be_visible()
    holding = re.compile(r"We are holding .+ for you\. Time left: \d+:\d\d")
    expect(page.get_by_text(holding)).to_be_visible()


def test_the_language_chosen_once_is_remembered_and_the_flow_speaks_it(
    platform: Platform, watched: Watched
) -> None:
    page = watched.page
    sign_in(page, platform, "Alan Turing")
    page.get_by_label("Language").select_option("de")
    expect(page.get_by_role("heading", level=1, name="Was brauchen Sie?")).to_be_visible()
    expect(page.get_by_role("radio", name=re.compile(r"^Allgemeine Sprechstunde"))).to_be_visible()
    assert page.evaluate("document.documentElement.lang") == "de"

    page.reload()
    expect(page.get_by_role("heading", level=1, name="Was brauchen Sie?")).to_be_visible()
    page.get_by_label("Sprache").select_option("es")
    expect(page.get_by_role("heading", level=1, name="¿Qué necesita?")).to_be_visible()
    assert accessibility_violations(page) == []
