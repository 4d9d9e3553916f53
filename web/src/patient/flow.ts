// The patient's booking flow as data: which step, what is chosen, the hold that keeps the
// chosen time. Pure functions only (tested without a browser in flow.test.ts).
import type { Slot } from "../api/client";

export const STEPS = ["need", "where", "when", "details", "review", "done"] as const;
export type Step = (typeof STEPS)[number];

export interface Hold {
  id: string;
  expiresAt: string;
  slot: Slot;
}

export interface Taken {
  slot: Slot;
  alternatives: Slot[];
}

export interface FlowState {
  step: Step;
  typeId: string | null;
  locationId: string | null;
  /** null: anyone suitable. */
  providerId: string | null;
  day: string | null;
  hold: Hold | null;
  taken: Taken | null;
  expired: boolean;
  bookedId: string | null;
}

export const START: FlowState = {
  step: "need",
  typeId: null,
  locationId: null,
  providerId: null,
  day: null,
  hold: null,
  taken: null,
  expired: false,
  bookedId: null,
};

export type Action =
  | { type: "chooseType"; id: string }
  | { type: "chooseLocation"; id: string }
  | { type: "chooseProvider"; id: string | null }
  | { type: "chooseDay"; day: string }
  | { type: "continue" }
  | { type: "back" }
  | { type: "held"; hold: Hold }
  | { type: "taken"; slot: Slot; alternatives: Slot[] }
  | { type: "expired" }
  | { type: "booked"; id: string }
  | { type: "restart" };

/** Whether the patient has chosen enough to leave the step. */
export function canContinue(state: FlowState): boolean {
  switch (state.step) {
    case "need":
      return state.typeId !== null;
    case "where":
      return state.locationId !== null;
    case "when":
      return state.hold !== null;
    case "details":
    case "review":
      return state.hold !== null;
    case "done":
      return false;
  }
}

function next(step: Step): Step {
  return STEPS[Math.min(STEPS.indexOf(step) + 1, STEPS.length - 1)] ?? step;
}

function previous(step: Step): Step {
  return STEPS[Math.max(STEPS.indexOf(step) - 1, 0)] ?? step;
}

/** A choice before the time drops the time (and its hold, which the app releases). */
function unchosenTime(state: FlowState): FlowState {
  return { ...state, day: null, hold: null, taken: null, expired: false };
}

export function reduce(state: FlowState, action: Action): FlowState {
  switch (action.type) {
    case "chooseType":
      return action.id === state.typeId
        ? state
        : { ...unchosenTime(state), typeId: action.id, providerId: null };
    case "chooseLocation":
      return action.id === state.locationId
        ? state
        : { ...unchosenTime(state), locationId: action.id, providerId: null };
    case "chooseProvider":
      return action.id === state.providerId ? state : { ...unchosenTime(state), providerId: action.id };
    case "chooseDay":
      return { ...state, day: action.day, taken: null, expired: false };
    case "continue":
      return canContinue(state) ? { ...state, step: next(state.step) } : state;
    case "back":
      return state.step === "done" ? state : { ...state, step: previous(state.step) };
    case "held":
      return { ...state, hold: action.hold, taken: null, expired: false, step: "details" };
    case "taken":
      return {
        ...state,
        hold: null,
        taken: { slot: action.slot, alternatives: action.alternatives },
        step: "when",
      };
    case "expired":
      return { ...state, hold: null, taken: null, expired: true, step: "when" };
    case "booked":
      return { ...state, bookedId: action.id, step: "done" };
    case "restart":
      return START;
  }
}

/** The free times nearest the one taken (other starts only), earliest first. */
export function nearestAlternatives(taken: Slot, candidates: Slot[], count = 3): Slot[] {
  const at = Date.parse(taken.start);
  const byStart = new Map<string, Slot>();
  for (const slot of candidates) {
    if (slot.start !== taken.start && !byStart.has(slot.start)) byStart.set(slot.start, slot);
  }
  return [...byStart.values()]
    .sort((a, b) => Math.abs(Date.parse(a.start) - at) - Math.abs(Date.parse(b.start) - at))
    .slice(0, count)
    .sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
}

/** One slot per start time (with anyone suitable, several clinicians share a time). */
export function distinctTimes(slots: Slot[]): Slot[] {
  const seen = new Set<string>();
  return slots.filter((slot) => !seen.has(slot.start) && seen.add(slot.start));
}

/** Whole seconds left until ``expiresAt`` (never below 0). */
export function secondsLeft(expiresAt: string, now: number): number {
  return Math.max(0, Math.floor((Date.parse(expiresAt) - now) / 1000));
}

/** "4:05" for 245 seconds. */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** The local date (YYYY-MM-DD) at a time zone, and the days from it. */
export function localDate(now: Date, timeZone: string): string {
  return new Intl.DateTimeFormat("en-CA", {
    timeZone,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
  }).format(now);
}

export function daysFrom(first: string, count: number): string[] {
  const [y, m, d] = first.split("-").map(Number);
  return Array.from({ length: count }, (_, n) =>
    new Date(Date.UTC(y ?? 1970, (m ?? 1) - 1, (d ?? 1) + n)).toISOString().slice(0, 10),
  );
}

export type Channel = "email" | "sms";

export interface Details {
  email: string;
  phone: string;
  channel: Channel;
}

export type DetailsProblem =
  | "details.emailInvalid"
  | "details.emailMissing"
  | "details.phoneInvalid"
  | "details.phoneMissing";

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]{2,}$/;
const PHONE = /^\+[1-9]\d{6,14}$/;

/** E.164 from what the patient typed: spaces, dashes, dots and brackets dropped. */
export function normalisedPhone(typed: string): string {
  return typed.replace(/[\s\-().]/g, "");
}

/** What is wrong with each field, as the key of a text that says how to fix it. */
export function detailsProblems(details: Details): Partial<Record<"email" | "phone", DetailsProblem>> {
  const problems: Partial<Record<"email" | "phone", DetailsProblem>> = {};
  const email = details.email.trim();
  const phone = normalisedPhone(details.phone);
  if (email && !EMAIL.test(email)) problems.email = "details.emailInvalid";
  else if (!email && details.channel === "email") problems.email = "details.emailMissing";
  if (phone && !PHONE.test(phone)) problems.phone = "details.phoneInvalid";
  else if (!phone && details.channel === "sms") problems.phone = "details.phoneMissing";
  return problems;
}

export interface ContactLine {
  system: "phone" | "email" | "sms";
  value: string;
  use?: "home" | "work" | "mobile" | "temp" | "old" | null;
}

/** The patient's contacts with the email and mobile number typed in the details step: each
 * replaces the entries of its kind, every other entry (a home phone, ...) is kept, and a
 * field left empty changes nothing. Null when nothing changes. */
export function updatedContacts(
  existing: readonly { system: string; value: string; use?: string | null }[],
  details: Pick<Details, "email" | "phone">,
): ContactLine[] | null {
  const typed: ContactLine[] = [];
  if (details.email.trim()) typed.push({ system: "email", value: details.email.trim() });
  if (details.phone.trim()) typed.push({ system: "sms", value: normalisedPhone(details.phone), use: "mobile" });
  const replaced = new Set(typed.map((c) => c.system));
  const kept = existing
    .filter((c) => !replaced.has(c.system as ContactLine["system"]))
    .map((c) => ({ system: c.system as ContactLine["system"], value: c.value, ...(c.use ? { use: c.use as ContactLine["use"] } : {}) }));
  const next = [...kept, ...typed];
  const key = (list: readonly { system: string; value: string }[]) => list.map((c) => `${c.system}:${c.value}`).sort().join("|");
  return key(next) === key(existing) ? null : next;
}
