import { act, cleanup, fireEvent, render, screen } from "@testing-library/react";
import { createRef } from "react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { AppointmentType, Patient } from "../api/client";
import { I18nProvider } from "../i18n/i18n";
import type { Hold } from "./flow";
import { DetailsStep, HoldTimer, NeedStep } from "./steps";

afterEach(cleanup);

const consultation = {
  id: "t1",
  name: "General consultation",
  duration_minutes: 20,
  patient_bookable: true,
  retired: false,
  preparation: "Bring your insurance card.",
  patient_facing: { es: { name: "Consulta general", description: "", preparation: "Traiga su tarjeta sanitaria." } },
} as unknown as AppointmentType;

const ada = {
  id: "p1",
  given_name: "Ada",
  family_name: "Lovelace",
  contacts: [{ system: "email", value: "ada@example.org", use: null }],
  preferred_channel: "email",
} as unknown as Patient;

function hold(secondsLeft: number): Hold {
  const start = "2026-12-07T08:00:00Z";
  return {
    id: "h1",
    expiresAt: new Date(Date.now() + secondsLeft * 1000).toISOString(),
    slot: {
      start,
      end: "2026-12-07T08:20:00Z",
      local_start: "2026-12-07T09:00:00+01:00",
      local_end: "2026-12-07T09:20:00+01:00",
      time_zone: "Europe/Berlin",
      location_id: "l1",
      resources: {},
      resource_names: {},
      seats_left: null,
    },
  };
}

function inEnglish(ui: React.ReactNode) {
  localStorage.setItem("clinic.language", "en");
  return render(<I18nProvider>{ui}</I18nProvider>);
}

describe("choosing what you need", () => {
  it("shows duration and what to bring, and lets the patient go on only once a type is chosen", () => {
    const chosen = vi.fn();
    const view = inEnglish(<NeedStep heading={createRef()} types={[consultation]} chosen={null} onChoose={chosen} onContinue={() => {}} />);
    expect(screen.getByText("20 minutes")).toBeTruthy();
    expect(screen.getByText("Before you come: Bring your insurance card.")).toBeTruthy();
    expect((screen.getByRole("button", { name: "Continue" }) as HTMLButtonElement).disabled).toBe(true);
    fireEvent.click(screen.getByRole("radio", { name: /General consultation/ }));
    expect(chosen).toHaveBeenCalledWith("t1");
    view.rerender(
      <I18nProvider>
        <NeedStep heading={createRef()} types={[consultation]} chosen="t1" onChoose={chosen} onContinue={() => {}} />
      </I18nProvider>,
    );
    expect((screen.getByRole("button", { name: "Continue" }) as HTMLButtonElement).disabled).toBe(false);
  });

  it("reads the type in the patient's language when the clinic wrote it", () => {
    localStorage.setItem("clinic.language", "es");
    render(
      <I18nProvider>
        <NeedStep heading={createRef()} types={[consultation]} chosen={null} onChoose={() => {}} onContinue={() => {}} />
      </I18nProvider>,
    );
    expect(screen.getByText("Consulta general")).toBeTruthy();
    expect(screen.getByText("Antes de venir: Traiga su tarjeta sanitaria.")).toBeTruthy();
  });
});

describe("your details", () => {
  it("says how to fix a number once the field is left, ties it to the field, and saves only valid details", () => {
    const saved = vi.fn();
    inEnglish(<DetailsStep heading={createRef()} patient={ada} initial={null} hold={hold(600)} onExpired={() => {}} onBack={() => {}} onSave={saved} />);
    const phone = screen.getByRole("textbox", { name: "Mobile phone" });
    fireEvent.change(phone, { target: { value: "0151 23" } });
    expect(screen.queryByText(/with the country code, for example/, { selector: ".problem" })).toBeNull(); // not while typing the first time
    fireEvent.blur(phone);
    const problem = screen.getByText(/Enter your mobile number with the country code/);
    expect(phone.getAttribute("aria-invalid")).toBe("true");
    expect(phone.getAttribute("aria-describedby")).toContain(problem.id);
    fireEvent.click(screen.getByRole("button", { name: "Continue" }));
    expect(saved).not.toHaveBeenCalled();
    fireEvent.change(phone, { target: { value: "+49 151 2345 6789" } });
    fireEvent.click(screen.getByRole("button", { name: "Continue" }));
    expect(saved).toHaveBeenCalledWith({ email: "ada@example.org", phone: "+4915123456789", channel: "email" });
  });

  it("needs the address of the channel the reminders go by", () => {
    const saved = vi.fn();
    inEnglish(<DetailsStep heading={createRef()} patient={ada} initial={null} hold={hold(600)} onExpired={() => {}} onBack={() => {}} onSave={saved} />);
    fireEvent.click(screen.getByRole("radio", { name: "Text message (SMS)" }));
    fireEvent.click(screen.getByRole("button", { name: "Continue" }));
    expect(screen.getByText(/Enter your mobile number, or choose reminders by email/)).toBeTruthy();
    expect(saved).not.toHaveBeenCalled();
  });
});

describe("the hold's clock", () => {
  it("counts down and says when the hold ran out", () => {
    vi.useFakeTimers();
    const expired = vi.fn();
    inEnglish(<HoldTimer hold={hold(2)} timeZone="Europe/Berlin" onExpired={expired} />);
    expect(screen.getByText(/Time left: 0:0[12]$/)).toBeTruthy();
    act(() => {
      vi.advanceTimersByTime(3000);
    });
    expect(expired).toHaveBeenCalled();
    vi.useRealTimers();
  });
});
