// The clinic admin's rules as data: weekly hours checked before they are sent, reminder plans
// read as people write them, local times turned into instants, and the KPI charts' numbers.

export interface WeeklyHours {
  weekday: number; // 0 = Monday ... 6 = Sunday
  start: string; // HH:MM, the location's local time
  end: string;
  location_id: string;
  effective_from?: string | null;
  effective_until?: string | null;
}

export interface HoursProblem {
  row: number;
  problem: "time" | "order" | "overlap";
}

const HHMM = /^([01]\d|2[0-3]):[0-5]\d$/;

/** What is wrong with a week's hours, row by row: a time that is none, an end not after its
 * start, or two rows of one weekday at one location that overlap (booking refuses them). */
export function hoursProblems(rows: WeeklyHours[]): HoursProblem[] {
  const problems: HoursProblem[] = [];
  rows.forEach((row, n) => {
    if (!HHMM.test(row.start) || !HHMM.test(row.end)) problems.push({ row: n, problem: "time" });
    else if (row.end <= row.start) problems.push({ row: n, problem: "order" });
  });
  const checked = new Set(problems.map((p) => p.row));
  rows.forEach((row, n) => {
    if (checked.has(n)) return;
    const clash = rows.some(
      (other, m) =>
        m !== n &&
        !checked.has(m) &&
        other.weekday === row.weekday &&
        other.location_id === row.location_id && // (booking checks each location's day apart)
        other.start < row.end &&
        row.start < other.end &&
        overlapsInTime(row, other),
    );
    if (clash) problems.push({ row: n, problem: "overlap" });
  });
  return problems.sort((a, b) => a.row - b.row);
}

function overlapsInTime(a: WeeklyHours, b: WeeklyHours): boolean {
  const from = (r: WeeklyHours) => r.effective_from ?? "0000-01-01";
  const until = (r: WeeklyHours) => r.effective_until ?? "9999-12-31";
  return from(a) <= until(b) && from(b) <= until(a);
}

/** The gateway's bounds on an appointment type, checked here as the admin types. */
export const LIMITS = {
  durationMinutes: [1, 1440],
  noticeHours: 2160, // 90 days
  cutoffHours: 720, // 30 days
  reminderMinutes: [5, 30 * 1440],
  reminders: 5,
} as const;

/** A reminder plan as people write it ("1d, 2h", "48h 30m") -> minutes before the start,
 * longest first; null when a part is not a number with d, h or m, or out of bounds (5
 * minutes to 30 days, 5 reminders at most). */
export function parseReminderPlan(text: string): number[] | null {
  const parts = text.split(/[\s,;]+/).filter(Boolean);
  const minutes: number[] = [];
  for (const part of parts) {
    const match = /^(\d{1,4})([dhm])$/i.exec(part);
    if (!match) return null;
    const amount = Number(match[1]);
    const unit = (match[2] ?? "m").toLowerCase();
    const value = unit === "d" ? amount * 1440 : unit === "h" ? amount * 60 : amount;
    if (value < LIMITS.reminderMinutes[0] || value > LIMITS.reminderMinutes[1]) return null;
    minutes.push(value);
  }
  const plan = [...new Set(minutes)].sort((a, b) => b - a);
  return plan.length > LIMITS.reminders ? null : plan;
}

/** A whole number of hours from 0 to ``most``, or null. */
export function wholeHours(text: string, most: number): number | null {
  const hours = /^\d{1,5}$/.test(text.trim()) ? Number(text) : NaN;
  return hours >= 0 && hours <= most ? hours : null;
}

/** Minutes before as people read them: 1440 -> "1d", 120 -> "2h", 90 -> "90m". */
export function reminderText(minutes: number[]): string {
  return minutes
    .map((m) => (m % 1440 === 0 ? `${m / 1440}d` : m % 60 === 0 ? `${m / 60}h` : `${m}m`))
    .join(", ");
}

/** The instant (RFC 3339, UTC) of a wall-clock time in a time zone: "2026-12-24", "08:00",
 * "Europe/Berlin" -> "2026-12-24T07:00:00Z". A time the clock passes twice (falling back) is
 * its first pass; one it skips (springing forward) is read as that far after the skip. */
export function zonedInstant(date: string, time: string, timeZone: string): string {
  const [y, mo, d] = date.split("-").map(Number);
  const [h, mi] = time.split(":").map(Number);
  const utc = new Date(0);
  utc.setUTCFullYear(y ?? 1970, (mo ?? 1) - 1, d ?? 1); // (Date.UTC reads year 99 as 1999)
  utc.setUTCHours(h ?? 0, mi ?? 0, 0, 0);
  const wall = utc.getTime();
  // The offsets a day either side are the only candidates; keep those that show this time.
  const before = offsetAt(wall - 86_400_000, timeZone);
  const after = offsetAt(wall + 86_400_000, timeZone);
  const shows = [wall - before, wall - after].filter((instant) => instant + offsetAt(instant, timeZone) === wall);
  const instant = shows.length > 0 ? Math.min(...shows) : wall - before;
  return new Date(instant).toISOString().replace(".000Z", "Z");
}

/** The zone's offset from UTC in milliseconds at an instant. */
function offsetAt(instant: number, timeZone: string): number {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(new Date(instant));
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  const asUtc = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second"));
  return asUtc - Math.floor(instant / 1000) * 1000;
}

export interface KpiBucket {
  period_start: string;
  group?: string | null;
  [measure: string]: unknown;
}

/** One measure of each bucket, in order (a missing or non-numeric value is null: nothing to
 * draw, not zero). */
export function series(buckets: KpiBucket[], measure: string): { label: string; value: number | null }[] {
  return buckets.map((b) => {
    const value = b[measure];
    return { label: b.period_start, value: typeof value === "number" && Number.isFinite(value) ? value : null };
  });
}

/** A chart's upper bound: a ratio's is 1 (100%); a count's the next round number above its
 * largest value, so bars are compared against a scale people can read. */
export function scaleTop(values: (number | null)[], ratio: boolean): number {
  if (ratio) return 1;
  const largest = Math.max(0, ...values.filter((v): v is number => v !== null));
  if (largest === 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(largest));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * magnitude >= largest) return step * magnitude;
  }
  return 10 * magnitude;
}

/** The weeks a KPI view looks at by default: the two before this one, this one and the next
 * (Monday to Sunday): how the last weeks went and how full the coming days are. */
export function weeksAround(today: string, before = 2, after = 1): { from: string; to: string } {
  const [y, m, d] = today.split("-").map(Number);
  const date = new Date(Date.UTC(y ?? 1970, (m ?? 1) - 1, d ?? 1));
  const monday = new Date(date.getTime() - ((date.getUTCDay() + 6) % 7) * 86_400_000);
  const from = new Date(monday.getTime() - before * 7 * 86_400_000);
  const sunday = new Date(monday.getTime() + (after * 7 + 6) * 86_400_000);
  return { from: from.toISOString().slice(0, 10), to: sunday.toISOString().slice(0, 10) };
}

/** The first day of every day, week (Monday) or month from ``from`` to ``to``, as the KPIs
 * bucket them: a chart shows each period, those without figures as gaps. */
export function periodStarts(from: string, to: string, period: "day" | "week" | "month"): string[] {
  const parse = (s: string) => {
    const [y, m, d] = s.split("-").map(Number);
    return new Date(Date.UTC(y ?? 1970, (m ?? 1) - 1, d ?? 1));
  };
  const last = parse(to);
  let day = parse(from);
  if (period === "week") day = new Date(day.getTime() - ((day.getUTCDay() + 6) % 7) * 86_400_000);
  if (period === "month") day = new Date(Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), 1));
  const starts: string[] = [];
  while (day <= last && starts.length < 1000) {
    starts.push(day.toISOString().slice(0, 10));
    day =
      period === "month"
        ? new Date(Date.UTC(day.getUTCFullYear(), day.getUTCMonth() + 1, 1))
        : new Date(day.getTime() + (period === "week" ? 7 : 1) * 86_400_000);
  }
  return starts;
}

/** Every period from ``from`` to ``to`` with its figures, or only its start where the KPIs
 * had none (no working time and nothing booked). */
export function everyPeriod(buckets: KpiBucket[], from: string, to: string, period: "day" | "week" | "month"): KpiBucket[] {
  const known = new Map(buckets.filter((b) => !b.group).map((b) => [b.period_start, b]));
  return periodStarts(from, to, period).map((start) => known.get(start) ?? { period_start: start, group: null });
}
