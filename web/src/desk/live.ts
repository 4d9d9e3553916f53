// The gateway's live updates (GET /v1/live, server-sent events) read with fetch, so the
// bearer token goes in a header (EventSource cannot send one); reconnects with backoff.
import { session } from "../auth/session";

export interface AppointmentFact {
  event: string;
  appointment_id: string;
  version: number;
  occurred_at: string;
  location_id: string | null;
  start: string | null;
  end: string | null;
  status: string | null;
}

export type LiveState = "connecting" | "live" | "paused";

export interface LiveHandlers {
  onFact(fact: AppointmentFact): void;
  /** live: facts flow (reload what is shown, something may have been missed); paused: not. */
  onState(state: LiveState): void;
}

/** Parses a chunk of the stream; answers the events complete so far and the rest. */
export function parseEvents(buffer: string): { events: { event: string; data: string }[]; rest: string } {
  const events: { event: string; data: string }[] = [];
  const blocks = buffer.split(/\r?\n\r?\n/);
  const rest = blocks.pop() ?? "";
  for (const block of blocks) {
    let event = "message";
    const data: string[] = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (data.length > 0) events.push({ event, data: data.join("\n") });
  }
  return { events, rest };
}

export function connectLive(handlers: LiveHandlers): () => void {
  let stopped = false;
  let controller: AbortController | null = null;
  let delay = 1000;

  async function run() {
    while (!stopped) {
      handlers.onState("connecting");
      controller = new AbortController();
      try {
        const answer = await fetch("/v1/live", {
          headers: { Authorization: `Bearer ${session.token() ?? ""}`, Accept: "text/event-stream" },
          signal: controller.signal,
          cache: "no-store",
        });
        if (answer.status === 401) {
          session.expire();
          return;
        }
        if (!answer.ok || !answer.body) throw new Error(`live updates answered ${answer.status}`);
        const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          const parsed = parseEvents(buffer + value);
          buffer = parsed.rest;
          for (const { event, data } of parsed.events) {
            if (event === "appointment") handlers.onFact(JSON.parse(data) as AppointmentFact);
            else if (event === "live") {
              delay = 1000;
              handlers.onState("live");
            } else if (event === "paused" || event === "overflow") handlers.onState("paused");
          }
        }
      } catch {
        if (stopped) return;
      }
      handlers.onState("paused");
      await new Promise((resume) => setTimeout(resume, delay));
      delay = Math.min(delay * 2, 30_000);
    }
  }

  void run();
  return () => {
    stopped = true;
    controller?.abort();
  };
}
