import { describe, expect, it } from "vitest";
import type { Slot } from "../api/client";
import {
  START,
  canContinue,
  clock,
  daysFrom,
  detailsProblems,
  distinctTimes,
  localDate,
  nearestAlternatives,
  reduce,
  secondsLeft,
  updatedContacts,
  type FlowState,
} from "./flow";

function slot(start: string, doctor = "d1"): Slot {
  const end = new Date(Date.parse(start) + 20 * 60_000).toISOString();
  return {
    start,
    end,
    local_start: start,
    local_end: end,
    time_zone: "Europe/Berlin",
    location_id: "l1",
    resources: { physician: doctor },
    resource_names: { physician: `Dr. ${doctor}` },
    seats_left: null,
  };
}

const hold = { id: "h1", expiresAt: "2026-12-07T09:10:00Z", slot: slot("2026-12-07T09:00:00Z") };

describe("the booking flow", () => {
  it("goes forward only once the step's choice is made", () => {
    let state = reduce(START, { type: "continue" });
    expect(state.step).toBe("need");
    state = reduce(reduce(state, { type: "chooseType", id: "t1" }), { type: "continue" });
    expect(state.step).toBe("where");
    expect(canContinue(state)).toBe(false);
    state = reduce(reduce(state, { type: "chooseLocation", id: "l1" }), { type: "continue" });
    expect(state.step).toBe("when");
    expect(reduce(state, { type: "continue" }).step).toBe("when");
  });

  it("moves to the patient's details once the chosen time is held", () => {
    const state = reduce({ ...START, step: "when", typeId: "t1", locationId: "l1" }, { type: "held", hold });
    expect(state.step).toBe("details");
    expect(state.hold).toBe(hold);
    expect(reduce(state, { type: "continue" }).step).toBe("review");
  });

  it("drops the chosen time when the patient changes what, where or with whom", () => {
    const held: FlowState = { ...START, step: "details", typeId: "t1", locationId: "l1", day: "2026-12-07", hold };
    for (const action of [
      { type: "chooseType", id: "t2" },
      { type: "chooseLocation", id: "l2" },
      { type: "chooseProvider", id: "d2" },
    ] as const) {
      const changed = reduce(held, action);
      expect(changed.hold).toBeNull();
      expect(changed.day).toBeNull();
    }
    expect(reduce(held, { type: "chooseType", id: "t1" })).toBe(held);
  });

  it("returns to the times with the alternatives when the time was taken", () => {
    const taken = slot("2026-12-07T09:00:00Z");
    const state = reduce({ ...START, step: "when" }, { type: "taken", slot: taken, alternatives: [slot("2026-12-07T09:20:00Z")] });
    expect(state.step).toBe("when");
    expect(state.taken?.alternatives).toHaveLength(1);
    expect(reduce(state, { type: "held", hold }).taken).toBeNull();
  });

  it("sends the patient back to the times when the hold ran out before booking", () => {
    const state = reduce({ ...START, step: "review", hold }, { type: "expired" });
    expect(state).toMatchObject({ step: "when", hold: null, expired: true });
  });

  it("cannot go back from the end, and starts over clean", () => {
    const done: FlowState = { ...START, step: "done", bookedId: "a1" };
    expect(reduce(done, { type: "back" })).toBe(done);
    expect(reduce(done, { type: "restart" })).toEqual(START);
  });
});

describe("alternatives to a time just taken", () => {
  it("are the nearest other times, earliest first, one per start", () => {
    const taken = slot("2026-12-07T10:00:00Z");
    const candidates = [
      slot("2026-12-07T08:00:00Z"),
      slot("2026-12-07T10:00:00Z", "d2"),
      slot("2026-12-07T10:20:00Z"),
      slot("2026-12-07T10:20:00Z", "d2"),
      slot("2026-12-07T09:40:00Z"),
      slot("2026-12-07T11:00:00Z"),
      slot("2026-12-07T15:00:00Z"),
    ];
    expect(nearestAlternatives(taken, candidates).map((s) => s.start)).toEqual([
      "2026-12-07T09:40:00Z",
      "2026-12-07T10:20:00Z",
      "2026-12-07T11:00:00Z",
    ]);
  });

  it("are none when nothing else is free", () => {
    const taken = slot("2026-12-07T10:00:00Z");
    expect(nearestAlternatives(taken, [taken])).toEqual([]);
  });
});

describe("times, days and the hold's clock", () => {
  it("shows each start once whoever is free then", () => {
    const times = distinctTimes([slot("2026-12-07T09:00:00Z", "a"), slot("2026-12-07T09:00:00Z", "b"), slot("2026-12-07T09:20:00Z")]);
    expect(times.map((s) => s.start)).toEqual(["2026-12-07T09:00:00Z", "2026-12-07T09:20:00Z"]);
  });

  it("counts down whole seconds and never below zero", () => {
    const now = Date.parse("2026-12-07T09:05:30.500Z");
    expect(secondsLeft("2026-12-07T09:10:00Z", now)).toBe(269);
    expect(clock(269)).toBe("4:29");
    expect(secondsLeft("2026-12-07T09:00:00Z", now)).toBe(0);
    expect(clock(0)).toBe("0:00");
  });

  it("knows the clinic's date, not the browser's, and the days after it across a month", () => {
    const lateInNewYork = new Date("2026-12-01T03:30:00Z");
    expect(localDate(lateInNewYork, "America/New_York")).toBe("2026-11-30");
    expect(localDate(lateInNewYork, "Europe/Berlin")).toBe("2026-12-01");
    expect(daysFrom("2026-12-30", 4)).toEqual(["2026-12-30", "2026-12-31", "2027-01-01", "2027-01-02"]);
  });
});

describe("the patient's details", () => {
  it("are fine with a valid address and number, spaces allowed", () => {
    expect(detailsProblems({ email: "ada@example.org", phone: "+49 151 2345-6789", channel: "sms" })).toEqual({});
  });

  it("say how to fix an address or number that cannot be right", () => {
    expect(detailsProblems({ email: "ada@", phone: "0151 23456789", channel: "email" })).toEqual({
      email: "details.emailInvalid",
      phone: "details.phoneInvalid",
    });
  });

  it("need the field of the chosen reminder channel", () => {
    expect(detailsProblems({ email: "", phone: "+4915123456789", channel: "email" })).toEqual({
      email: "details.emailMissing",
    });
    expect(detailsProblems({ email: "ada@example.org", phone: " ", channel: "sms" })).toEqual({
      phone: "details.phoneMissing",
    });
  });
});

describe("saving the patient's contacts", () => {
  const existing = [
    { system: "email", value: "ada@example.org", use: "home" },
    { system: "phone", value: "+493012345", use: "home" },
    { system: "sms", value: "+4915100000", use: "mobile" },
  ];

  it("replaces the email and mobile typed and keeps every other contact", () => {
    expect(updatedContacts(existing, { email: " ada@new.example ", phone: "+49 151 99" })).toEqual([
      { system: "phone", value: "+493012345", use: "home" },
      { system: "email", value: "ada@new.example" },
      { system: "sms", value: "+4915199", use: "mobile" },
    ]);
  });

  it("changes nothing when nothing changed or a field was left empty", () => {
    expect(updatedContacts(existing, { email: "ada@example.org", phone: "+4915100000" })).toBeNull();
    expect(updatedContacts(existing, { email: "", phone: "" })).toBeNull();
  });
});
