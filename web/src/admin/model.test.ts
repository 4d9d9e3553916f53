import { describe, expect, it } from "vitest";
import { everyPeriod, hoursProblems, periodStarts, parseReminderPlan, weeksAround, reminderText, scaleTop, series, zonedInstant, type WeeklyHours } from "./model";

const row = (weekday: number, start: string, end: string, more: Partial<WeeklyHours> = {}): WeeklyHours => ({
  weekday,
  start,
  end,
  location_id: "l",
  ...more,
});

describe("a week's hours before they are sent", () => {
  it("are fine when each day's rows do not overlap", () => {
    expect(hoursProblems([row(0, "08:00", "12:00"), row(0, "13:00", "17:00"), row(1, "08:00", "17:00")])).toEqual([]);
  });

  it("name a time that is none and an end not after its start", () => {
    expect(hoursProblems([row(0, "8", "12:00"), row(1, "24:00", "25:00"), row(2, "12:00", "12:00")])).toEqual([
      { row: 0, problem: "time" },
      { row: 1, problem: "time" },
      { row: 2, problem: "order" },
    ]);
  });

  it("name both rows of a day that overlap, and not rows of other days", () => {
    expect(hoursProblems([row(0, "08:00", "12:00"), row(0, "11:30", "16:00"), row(1, "11:30", "16:00")])).toEqual([
      { row: 0, problem: "overlap" },
      { row: 1, problem: "overlap" },
    ]);
  });

  it("let one weekday's hours at two locations overlap (a resource is at one at a time, as booking checks)", () => {
    expect(hoursProblems([row(0, "08:00", "12:00"), row(0, "10:00", "14:00", { location_id: "other" })])).toEqual([]);
  });

  it("let hours that never apply at the same time share a weekday", () => {
    const winter = row(0, "08:00", "12:00", { effective_until: "2027-03-31" });
    const summer = row(0, "09:00", "13:00", { effective_from: "2027-04-01" });
    expect(hoursProblems([winter, summer])).toEqual([]);
  });
});

describe("a reminder plan as people write it", () => {
  it("is read in days, hours and minutes, longest first, each once", () => {
    expect(parseReminderPlan("2h, 1d")).toEqual([1440, 120]);
    expect(parseReminderPlan("48h 30m 30m")).toEqual([2880, 30]);
    expect(parseReminderPlan("")).toEqual([]);
  });

  it("is refused when a part is not an amount of time", () => {
    expect(parseReminderPlan("tomorrow")).toBeNull();
    expect(parseReminderPlan("0m")).toBeNull();
    expect(parseReminderPlan("2 h")).toBeNull();
    expect(parseReminderPlan("99d")).toBeNull();
    expect(parseReminderPlan("2m")).toBeNull(); // the gateway's bounds: 5 minutes to 30 days
    expect(parseReminderPlan("31d")).toBeNull();
    expect(parseReminderPlan("1d 2d 3d 4d 5d 6d")).toBeNull(); // 5 at most
  });

  it("is written back the way it is read", () => {
    expect(reminderText([1440, 120, 90])).toBe("1d, 2h, 90m");
    expect(parseReminderPlan(reminderText([2880, 45]))).toEqual([2880, 45]);
  });
});

describe("a local time at a clinic as an instant", () => {
  it("follows the zone's offset, summer and winter", () => {
    expect(zonedInstant("2026-12-24", "08:00", "Europe/Berlin")).toBe("2026-12-24T07:00:00Z");
    expect(zonedInstant("2027-07-01", "08:00", "Europe/Berlin")).toBe("2027-07-01T06:00:00Z");
    expect(zonedInstant("2027-01-10", "00:00", "America/Chicago")).toBe("2027-01-10T06:00:00Z");
  });

  it("reads a time the clock skips as that far after the skip, in every zone", () => {
    // Berlin skips 02:00-03:00 on 28 March 2027: 02:30 does not exist (03:30 CEST).
    expect(zonedInstant("2027-03-28", "02:30", "Europe/Berlin")).toBe("2027-03-28T01:30:00Z");
    // New York skips 02:00-03:00 on 14 March 2027 (03:30 EDT).
    expect(zonedInstant("2027-03-14", "02:30", "America/New_York")).toBe("2027-03-14T07:30:00Z");
    // Santiago skips midnight on 6 September 2026: the day starts at 01:00 (-03).
    expect(zonedInstant("2026-09-06", "00:00", "America/Santiago")).toBe("2026-09-06T04:00:00Z");
  });

  it("reads a time the clock passes twice as its first pass", () => {
    // Berlin passes 02:00-03:00 twice on 25 October 2026: first in CEST (+02:00).
    expect(zonedInstant("2026-10-25", "02:30", "Europe/Berlin")).toBe("2026-10-25T00:30:00Z");
    expect(zonedInstant("2026-11-01", "01:30", "America/New_York")).toBe("2026-11-01T05:30:00Z");
  });
});

describe("the KPI charts' numbers", () => {
  it("take one measure of each bucket, missing values as nothing rather than zero", () => {
    const buckets = [
      { period_start: "2026-11-30", utilisation: 0.5 },
      { period_start: "2026-12-07", utilisation: null },
      { period_start: "2026-12-14", utilisation: "n/a" },
    ];
    expect(series(buckets, "utilisation")).toEqual([
      { label: "2026-11-30", value: 0.5 },
      { label: "2026-12-07", value: null },
      { label: "2026-12-14", value: null },
    ]);
  });

  it("scale ratios to 100% and counts to the next round number", () => {
    expect(scaleTop([0.2, 0.9], true)).toBe(1);
    expect(scaleTop([3, 7, null], false)).toBe(10);
    expect(scaleTop([42], false)).toBe(50);
    expect(scaleTop([120], false)).toBe(200);
    expect(scaleTop([], false)).toBe(1);
  });

  it("look at the two weeks before this one, this one and the next by default", () => {
    // 3 December 2026 is a Thursday: this week runs from Monday 30 November to Sunday 6 December.
    expect(weeksAround("2026-12-03")).toEqual({ from: "2026-11-16", to: "2026-12-13" });
    expect(weeksAround("2026-11-30", 0, 0)).toEqual({ from: "2026-11-30", to: "2026-12-06" });
    expect(weeksAround("2026-12-06", 0, 0)).toEqual({ from: "2026-11-30", to: "2026-12-06" });
  });

  it("show every period of the range, those without figures as gaps", () => {
    expect(periodStarts("2026-12-03", "2026-12-06", "day")).toEqual(["2026-12-03", "2026-12-04", "2026-12-05", "2026-12-06"]);
    expect(periodStarts("2026-12-03", "2026-12-20", "week")).toEqual(["2026-11-30", "2026-12-07", "2026-12-14"]);
    expect(periodStarts("2026-11-15", "2027-01-02", "month")).toEqual(["2026-11-01", "2026-12-01", "2027-01-01"]);
    const filled = everyPeriod([{ period_start: "2026-12-04", group: null, utilisation: 0.5 }], "2026-12-03", "2026-12-05", "day");
    expect(filled.map((b) => [b.period_start, b.utilisation ?? null])).toEqual([
      ["2026-12-03", null],
      ["2026-12-04", 0.5],
      ["2026-12-05", null],
    ]);
  });
});
