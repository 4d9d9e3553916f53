// The front desk's calendar as data: which appointments a day shows, whether it already
// reflects a live fact, what a status is called and which actions it allows.
import type { AppointmentFact } from "./live";

export interface CalendarAppointment {
  id: string;
  status: string;
  start: string;
  end: string;
  local_start: string;
  local_end: string;
  patient_id: string;
  version: number;
  location_id: string;
  hold_expires_at?: string | null;
  appointment_type?: { id: string; name: string } | null;
  participants?: { resource_id: string; name?: string | null; role: string }[];
}

export interface CalendarColumn {
  resource: { id: string; name: string; category: string; kind?: string };
  appointments: CalendarAppointment[];
  free: { start: string; end: string; local_start: string; local_end: string }[];
  blocked: { start: string; end: string; local_start?: string; local_end?: string; reason?: string | null }[];
}

export interface LocationDay {
  date: string;
  location: { id: string; name: string; time_zone: string };
  resources: CalendarColumn[];
}

/** Whether a loaded day already shows a fact (else the projection trails: load again). */
export function reflects(day: LocationDay, fact: AppointmentFact): boolean {
  const shown = day.resources.flatMap((c) => c.appointments).filter((a) => a.id === fact.appointment_id);
  if (shown.length > 0) return shown.every((a) => a.version >= fact.version);
  // Not shown: right if it belongs to another day (a new booking elsewhere, a move away).
  if (fact.start && fact.status !== "cancelled") return localDateOf(fact.start, day.location.time_zone) !== day.date;
  return true;
}

export function localDateOf(iso: string, timeZone: string): string {
  return new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date(iso));
}

/** The providers' columns first, then rooms and devices; by name within each. */
export function ordered(columns: CalendarColumn[], withRooms: boolean): CalendarColumn[] {
  const rank: Record<string, number> = { provider: 0, room: 1, device: 2 };
  return columns
    .filter((c) => withRooms || c.resource.category === "provider")
    .sort((a, b) => (rank[a.resource.category] ?? 3) - (rank[b.resource.category] ?? 3) || a.resource.name.localeCompare(b.resource.name));
}

export type DeskAction = "check-in" | "arrive" | "complete" | "no-show" | "cancel";

/** What the desk may do next with an appointment in a status (the API decides; this only
 * offers the buttons that can succeed). */
export function actionsFor(status: string, startsAt: string, now: number): DeskAction[] {
  const started = Date.parse(startsAt) <= now;
  switch (status) {
    case "booked":
      return started ? ["check-in", "no-show", "cancel"] : ["check-in", "cancel"];
    case "checked-in":
      return ["arrive", "complete"];
    case "arrived":
      return ["complete"];
    case "pending":
      return ["cancel"];
    default:
      return [];
  }
}

/** Shifts a YYYY-MM-DD date by whole days. */
export function shiftDate(date: string, days: number): string {
  const [y, m, d] = date.split("-").map(Number);
  return new Date(Date.UTC(y ?? 1970, (m ?? 1) - 1, (d ?? 1) + days)).toISOString().slice(0, 10);
}

/** What a reload gave: a day to check facts against, a week (shown, nothing to check), or
 * nothing usable (another load superseded it, or it failed). */
export type Reloaded = LocationDay | "week" | null;

/** Reloads until the day shows every live fact heard meanwhile. One loop serves all facts,
 * however many arrive: were each to reload on its own, a fact's load would supersede
 * another's and end its wait, and the day could stay one fact behind (held, never booked). */
export class FactChase {
  private pending: AppointmentFact[] = [];
  private running: Promise<void> | null = null;
  private deadline = 0;

  constructor(
    private readonly reload: () => Promise<Reloaded>,
    private readonly pause: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
    private readonly now: () => number = Date.now,
    private readonly patienceMs = 5000,
    private readonly pauseMs = 250,
  ) {}

  /** Resolves when the day shows the fact (and every other pending one), or patience ran out. */
  hear(fact: AppointmentFact): Promise<void> {
    this.pending.push(fact);
    this.deadline = this.now() + this.patienceMs;
    this.running ??= this.chase().finally(() => {
      this.pending = [];
      this.running = null;
    });
    return this.running;
  }

  private async chase(): Promise<void> {
    for (;;) {
      const loaded = await this.reload();
      if (loaded === "week") return;
      if (loaded) this.pending = this.pending.filter((f) => !reflects(loaded, f));
      if (this.pending.length === 0 || this.now() >= this.deadline) return;
      await this.pause(this.pauseMs);
    }
  }
}
