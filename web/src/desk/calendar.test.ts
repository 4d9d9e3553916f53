import { describe, expect, it } from "vitest";
import { actionsFor, FactChase, ordered, reflects, shiftDate, type CalendarColumn, type LocationDay, type Reloaded } from "./calendar";
import { parseEvents, type AppointmentFact } from "./live";

function column(name: string, category: string, appointments: { id: string; version: number }[] = []): CalendarColumn {
  return {
    resource: { id: name, name, category },
    appointments: appointments.map((a) => ({
      ...a,
      status: "booked",
      start: "2026-12-07T08:00:00Z",
      end: "2026-12-07T08:20:00Z",
      local_start: "2026-12-07T09:00:00+01:00",
      local_end: "2026-12-07T09:20:00+01:00",
      patient_id: "p",
      location_id: "l",
    })),
    free: [],
    blocked: [],
  };
}

const day = (columns: CalendarColumn[]): LocationDay => ({
  date: "2026-12-07",
  location: { id: "l", name: "Berlin", time_zone: "Europe/Berlin" },
  resources: columns,
});

const fact = (changes: Partial<AppointmentFact>): AppointmentFact => ({
  event: "Appointment.Booked",
  appointment_id: "a1",
  version: 1,
  occurred_at: "2026-12-03T08:00:00Z",
  location_id: "l",
  start: "2026-12-07T08:00:00Z",
  end: "2026-12-07T08:20:00Z",
  status: "booked",
  ...changes,
});

describe("whether the desk's day shows a live fact yet", () => {
  it("does once the appointment is there at the fact's version or later", () => {
    expect(reflects(day([column("Dr. A", "provider", [{ id: "a1", version: 1 }])]), fact({}))).toBe(true);
    expect(reflects(day([column("Dr. A", "provider", [{ id: "a1", version: 1 }])]), fact({ version: 2, status: "checked-in" }))).toBe(false);
  });

  it("does not while a booking of this day is missing, and does for one on another day", () => {
    expect(reflects(day([column("Dr. A", "provider")]), fact({}))).toBe(false);
    expect(reflects(day([column("Dr. A", "provider")]), fact({ start: "2026-12-08T08:00:00Z" }))).toBe(true);
    // 23:30 UTC on the 6th is already the 7th in Berlin
    expect(reflects(day([column("Dr. A", "provider")]), fact({ start: "2026-12-06T23:30:00Z" }))).toBe(false);
  });

  it("does for a cancellation of an appointment the day never showed", () => {
    expect(reflects(day([]), fact({ event: "Appointment.Cancelled", start: null, status: "cancelled", version: 2 }))).toBe(true);
  });
});

describe("the desk's reloads after live facts", () => {
  const at = (version: number) => day([column("Dr. A", "provider", [{ id: "a1", version }])]);

  it("keeps reloading for a fact heard while another fact's reload was under way", async () => {
    // The projection shows version 1 (held) for two loads, then version 2 (booked).
    const shown = [at(1), at(1), at(2)];
    let loads = 0;
    const chase = new FactChase(async () => shown[Math.min(loads++, shown.length - 1)] ?? null, async () => {});
    const held = chase.hear(fact({ version: 1, status: "pending" }));
    const booked = chase.hear(fact({ version: 2 }));
    await Promise.all([held, booked]);
    expect(loads).toBe(3);
  });

  it("tries again after a load that was superseded or failed", async () => {
    const answers: Reloaded[] = [null, at(2)];
    let loads = 0;
    await new FactChase(async () => answers[loads++] ?? null, async () => {}).hear(fact({ version: 2 }));
    expect(loads).toBe(2);
  });

  it("gives up when the day has not shown the fact within its patience", async () => {
    let clock = 0;
    let loads = 0;
    const chase = new FactChase(
      async () => {
        loads++;
        return at(1);
      },
      async (ms) => {
        clock += ms;
      },
      () => clock,
      1000,
      250,
    );
    await chase.hear(fact({ version: 2 }));
    expect(loads).toBe(5);
  });

  it("reloads a week once, having nothing to check it against", async () => {
    let loads = 0;
    await new FactChase(async (): Promise<Reloaded> => {
      loads++;
      return "week";
    }, async () => {}).hear(fact({}));
    expect(loads).toBe(1);
  });
});

describe("the desk's columns and actions", () => {
  it("puts providers first, by name, and rooms only when asked", () => {
    const columns = [column("Room 1", "room"), column("Dr. B", "provider"), column("ECG", "device"), column("Dr. A", "provider")];
    expect(ordered(columns, false).map((c) => c.resource.name)).toEqual(["Dr. A", "Dr. B"]);
    expect(ordered(columns, true).map((c) => c.resource.name)).toEqual(["Dr. A", "Dr. B", "Room 1", "ECG"]);
  });

  it("offers check-in for a booking, a no-show only once it has started, completion after arrival", () => {
    const now = Date.parse("2026-12-07T08:10:00Z");
    expect(actionsFor("booked", "2026-12-07T09:00:00Z", now)).toEqual(["check-in", "cancel"]);
    expect(actionsFor("booked", "2026-12-07T08:00:00Z", now)).toEqual(["check-in", "no-show", "cancel"]);
    expect(actionsFor("checked-in", "2026-12-07T08:00:00Z", now)).toEqual(["arrive", "complete"]);
    expect(actionsFor("fulfilled", "2026-12-07T08:00:00Z", now)).toEqual([]);
  });

  it("moves across months and years by whole days", () => {
    expect(shiftDate("2026-12-31", 1)).toBe("2027-01-01");
    expect(shiftDate("2027-03-01", -1)).toBe("2027-02-28");
  });
});

describe("reading the live stream", () => {
  it("yields each complete event and keeps the unfinished rest for the next chunk", () => {
    const first = parseEvents('retry: 3000\n\nevent: live\ndata: {}\n\n: keep-alive\n\nevent: appointment\nid: e1\ndata: {"a":');
    expect(first.events).toEqual([{ event: "live", data: "{}" }]);
    const second = parseEvents(first.rest + '1}\n\n');
    expect(second.events).toEqual([{ event: "appointment", data: '{"a":1}' }]);
    expect(second.rest).toBe("");
  });
});
