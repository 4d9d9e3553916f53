// The front desk: a location's day (or a provider's week), colour-coded statuses with their
// names, check-in in one action, an appointment's history, booking for a caller, the
// waitlist; kept current by the gateway's live updates, so two desks never act on a stale
// screen. Keyboard: ← → days, t today, w week/day, n book, r reload, ? the keys.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { api, problemOf, type Location, type Resource } from "../api/client";
import { Notice } from "../App";
import { useI18n } from "../i18n/i18n";
import type { MessageKey } from "../i18n/messages";
import { localDate } from "../patient/flow";
import { actionsFor, FactChase, ordered, shiftDate, type CalendarAppointment, type DeskAction, type LocationDay, type Reloaded } from "./calendar";
import { connectLive, type AppointmentFact, type LiveState } from "./live";
import { History, QuickBook, Waitlist } from "./panels";

const ACTION_LABEL: Record<DeskAction, MessageKey> = {
  "check-in": "desk.checkIn",
  arrive: "desk.arrive",
  complete: "desk.complete",
  "no-show": "desk.noShow",
  cancel: "desk.cancel",
};

interface WeekDay {
  date: string;
  appointments: CalendarAppointment[];
}

const SHORTCUTS = "clinic.desk.shortcuts";

type Panel = { kind: "history"; appointment: CalendarAppointment } | { kind: "book" } | { kind: "waitlist" } | { kind: "keys" } | null;

export function Desk({ locationIds }: { locationIds: string[] | null }) {
  const { t, when } = useI18n();
  const [locations, setLocations] = useState<Location[] | null>(null);
  const [locationId, setLocationId] = useState<string | null>(null);
  const [date, setDate] = useState<string | null>(null);
  const [providers, setProviders] = useState<Resource[]>([]);
  const [providerId, setProviderId] = useState<string>("");
  const [day, setDay] = useState<LocationDay | null>(null);
  const [week, setWeek] = useState<WeekDay[] | null>(null);
  const [withRooms, setWithRooms] = useState(false);
  const [live, setLive] = useState<LiveState>("connecting");
  const [news, setNews] = useState<string>("");
  const [problem, setProblem] = useState<string | null>(null);
  const [panel, setPanel] = useState<Panel>(null);
  const [names, setNames] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState<string | null>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  const asked = useRef(new Set<string>());
  // Single-key shortcuts can be turned off (WCAG 2.1.4: speech input types letters).
  const [shortcuts, setShortcuts] = useState(() => localStorage.getItem(SHORTCUTS) !== "off");
  const chooseShortcuts = (on: boolean) => {
    localStorage.setItem(SHORTCUTS, on ? "on" : "off");
    setShortcuts(on);
  };
  const location = locations?.find((l) => l.id === locationId) ?? null;

  useEffect(() => {
    api.GET("/v1/locations", { params: { query: { page_size: 200 } } }).then(({ data, error, response }) => {
      if (!data) return setProblem(problemOf(error, response).detail);
      const mine = data.locations.filter((l) => !l.retired && (!locationIds || locationIds.includes(l.id)));
      setLocations(mine);
      const first = mine[0];
      if (first) {
        setLocationId(first.id);
        setDate(localDate(new Date(), first.time_zone));
      }
    });
  }, [locationIds]);

  useEffect(() => {
    if (!locationId) return;
    api.GET("/v1/providers", { params: { query: { location_id: locationId, page_size: 200 } } }).then(({ data }) =>
      setProviders((data?.resources ?? []).filter((p) => !p.retired)),
    );
  }, [locationId]);

  // Only the newest load is shown: an answer for the day or place the desk has left (a
  // slow reload, a live update's) is dropped.
  const loads = useRef(0);
  const load = useCallback(async (): Promise<Reloaded> => {
    if (!locationId || !date) return null;
    const mine = ++loads.current;
    if (providerId) {
      const { data, error, response } = await api.GET("/v1/providers/{resource_id}/calendar", {
        params: { path: { resource_id: providerId }, query: { date, days: 7 } },
      });
      if (mine !== loads.current) return null;
      if (!data) {
        setProblem(problemOf(error, response).detail);
        return null;
      }
      setWeek(data.days.map((d) => ({ date: d.date, appointments: d.appointments as unknown as CalendarAppointment[] })));
      return "week";
    }
    const { data, error, response } = await api.GET("/v1/locations/{location_id}/calendar", {
      params: { path: { location_id: locationId }, query: { date } },
    });
    if (mine !== loads.current) return null;
    if (!data) {
      setProblem(problemOf(error, response).detail);
      return null;
    }
    const loaded = data as unknown as LocationDay;
    setDay(loaded);
    setProblem(null);
    return loaded;
  }, [locationId, date, providerId]);

  useEffect(() => {
    setDay(null);
    setWeek(null);
    void load();
  }, [load]);

  // Patients' names for the appointments shown (each read is in the access audit).
  useEffect(() => {
    const ids = new Set<string>();
    day?.resources.forEach((c) => c.appointments.forEach((a) => ids.add(a.patient_id)));
    week?.forEach((d) => d.appointments.forEach((a) => ids.add(a.patient_id)));
    // Each patient is read once (every read is audited), not again while it is on its way.
    const missing = [...ids].filter((id) => !(id in names) && !asked.current.has(id));
    if (missing.length === 0) return;
    missing.forEach((id) => asked.current.add(id));
    Promise.all(
      missing.map((id) =>
        api.GET("/v1/patients/{patient_id}", { params: { path: { patient_id: id } } }).then(({ data }) => {
          if (!data) asked.current.delete(id); // asked again with the next load
          return [id, data ? `${data.given_name} ${data.family_name}` : null] as const;
        }),
      ),
    ).then((found) => {
      const named = found.filter((pair): pair is readonly [string, string] => pair[1] !== null);
      setNames((all) => ({ ...all, ...Object.fromEntries(named) }));
    });
  }, [day, week, names]);

  // Live updates: a fact about this location reloads the day until it shows it (one chase
  // for all facts, so none is left behind).
  const latest = useRef(load);
  latest.current = load;
  const chase = useMemo(() => new FactChase(() => latest.current()), []);
  useEffect(() => {
    return connectLive({
      onState(state) {
        setLive(state);
        if (state === "live") void latest.current();
      },
      async onFact(fact: AppointmentFact) {
        if (fact.location_id && fact.location_id !== locationId) return;
        await chase.hear(fact);
        const status = fact.status ? t(`status.${fact.status}` as MessageKey) : fact.event;
        setNews(t("desk.updated", { what: fact.start && location ? `${when(fact.start, location.time_zone)}: ${status}` : status }));
      },
    });
  }, [locationId, location, t, when, chase]);

  async function act(appointment: CalendarAppointment, action: DeskAction) {
    setBusy(appointment.id);
    const path = { appointment_id: appointment.id };
    const header = { "Idempotency-Key": crypto.randomUUID() };
    const answer =
      action === "cancel"
        ? await api.POST("/v1/appointments/{appointment_id}/cancel", { params: { path, header }, body: { reason: "cancelled at the front desk" } })
        : action === "check-in"
          ? await api.POST("/v1/appointments/{appointment_id}/check-in", { params: { path, header } })
          : action === "arrive"
            ? await api.POST("/v1/appointments/{appointment_id}/arrive", { params: { path, header } })
            : action === "complete"
              ? await api.POST("/v1/appointments/{appointment_id}/complete", { params: { path, header } })
              : await api.POST("/v1/appointments/{appointment_id}/no-show", { params: { path, header } });
    setBusy(null);
    if (answer.data) {
      setNews(t("desk.done", { name: names[appointment.patient_id] ?? "", status: t(`status.${answer.data.status}` as MessageKey) }));
      await load();
    } else setProblem(problemOf(answer.error, answer.response).detail);
  }

  // Keyboard shortcuts, except while typing in a field.
  useEffect(() => {
    function onKey(event: KeyboardEvent) {
      const target = event.target as HTMLElement;
      if (!shortcuts || event.ctrlKey || event.metaKey || event.altKey || /^(INPUT|SELECT|TEXTAREA)$/.test(target.tagName)) return;
      if (event.key.startsWith("Arrow") && target.closest("[role=toolbar]")) return; // the toolbar's own keys
      const keys: Record<string, () => void> = {
        ArrowLeft: () => date && setDate(shiftDate(date, providerId ? -7 : -1)),
        ArrowRight: () => date && setDate(shiftDate(date, providerId ? 7 : 1)),
        t: () => location && setDate(localDate(new Date(), location.time_zone)),
        w: () => setProviderId(providerId ? "" : (providers[0]?.id ?? "")),
        n: () => setPanel({ kind: "book" }),
        r: () => void load(),
        "?": () => setPanel({ kind: "keys" }),
      };
      const run = keys[event.key];
      if (run) {
        event.preventDefault();
        run();
      }
    }
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [date, location, providerId, providers, load, shortcuts]);

  const columns = useMemo(() => (day ? ordered(day.resources, withRooms) : []), [day, withRooms]);

  if (problem && !locations) return <Notice text={t("app.unreachable")} />;
  if (!locations || !location || !date) return <p role="status">{t("app.loading")}</p>;

  function card(a: CalendarAppointment) {
    const name = names[a.patient_id] ?? "…";
    const actions = actionsFor(a.status, a.start, Date.now());
    return (
      <li key={a.id} className={`card slot status-line-${a.status}`} data-appointment={a.id}>
        <p className="choice-title">
          <time dateTime={a.start}>{when(a.start, location!.time_zone, "time")}</time>–<time dateTime={a.end}>{when(a.end, location!.time_zone, "time")}</time> {name}
        </p>
        <p className="meta">{a.appointment_type?.name}</p>
        <p>
          <span className={`status status-${a.status}`}>{t(`status.${a.status}` as MessageKey)}</span>
        </p>
        <div className="row-actions">
          {actions.map((action) => (
            <button key={action} type="button" className={action === "cancel" || action === "no-show" ? "danger small" : action === "check-in" ? "primary small" : "small"} disabled={busy === a.id} onClick={() => void act(a, action)} aria-label={`${t(ACTION_LABEL[action])}: ${name}, ${when(a.start, location!.time_zone, "time")}`}>
              {t(ACTION_LABEL[action])}
            </button>
          ))}
          <button type="button" className="quiet small" onClick={() => setPanel({ kind: "history", appointment: a })} aria-label={`${t("desk.history")}: ${name}, ${when(a.start, location!.time_zone, "time")}`}>
            {t("desk.history")}
          </button>
        </div>
      </li>
    );
  }

  return (
    <div className="desk">
      <h1 ref={heading} tabIndex={-1}>
        {t("desk.title")}: {location.name}
      </h1>
      <div className="toolbar" role="toolbar" aria-label={t("desk.tools")}>
        {locations.length > 1 && (
          <label>
            {t("desk.location")}{" "}
            <select value={locationId ?? ""} onChange={(e) => setLocationId(e.target.value)}>
              {locations.map((l) => (
                <option key={l.id} value={l.id}>
                  {l.name}
                </option>
              ))}
            </select>
          </label>
        )}
        <label>
          {t("desk.show")}{" "}
          <select value={providerId} onChange={(e) => setProviderId(e.target.value)}>
            <option value="">{t("desk.wholeDay")}</option>
            {providers.map((p) => (
              <option key={p.id} value={p.id}>
                {t("desk.weekOf", { name: p.name })}
              </option>
            ))}
          </select>
        </label>
        <button type="button" className="small" onClick={() => setDate(shiftDate(date, providerId ? -7 : -1))} aria-label={t(providerId ? "desk.previousWeek" : "desk.previousDay")}>
          ←
        </button>
        <button type="button" className="small" onClick={() => setDate(localDate(new Date(), location.time_zone))}>
          {t("desk.today")}
        </button>
        <button type="button" className="small" onClick={() => setDate(shiftDate(date, providerId ? 7 : 1))} aria-label={t(providerId ? "desk.nextWeek" : "desk.nextDay")}>
          →
        </button>
        <button type="button" className="small primary" onClick={() => setPanel({ kind: "book" })}>
          {t("desk.book")}
        </button>
        <button type="button" className="small" onClick={() => setPanel({ kind: "waitlist" })}>
          {t("desk.waitlist")}
        </button>
        <button type="button" className="small quiet" onClick={() => setPanel({ kind: "keys" })}>
          {t("desk.keys")}
        </button>
        <span className={`live live-${live}`} role="status">
          {t(live === "live" ? "desk.live" : live === "paused" ? "desk.paused" : "desk.connecting")}
        </span>
      </div>
      <p className="visually-hidden" role="status" aria-live="polite">
        {news}
      </p>
      {problem && <Notice text={t("error.generic", { detail: problem })} />}
      {panel?.kind === "history" && <History appointment={panel.appointment} patientName={names[panel.appointment.patient_id] ?? ""} timeZone={location.time_zone} onClose={() => setPanel(null)} />}
      {panel?.kind === "book" && <QuickBook location={location} date={date} onClose={() => setPanel(null)} onBooked={() => void load()} />}
      {panel?.kind === "waitlist" && <Waitlist location={location} onClose={() => setPanel(null)} />}
      {panel?.kind === "keys" && <Keys on={shortcuts} onChoose={chooseShortcuts} onClose={() => setPanel(null)} />}
      {!providerId && (
        <section aria-labelledby="day-title">
          <h2 id="day-title">{when(`${date}T12:00:00Z`, "UTC", "day")}</h2>
          <label className="inline">
            <input type="checkbox" checked={withRooms} onChange={(e) => setWithRooms(e.target.checked)} /> {t("desk.rooms")}
          </label>
          {!day ? (
            <p role="status">{t("app.loading")}</p>
          ) : (
            <div className="columns">
              {columns.map((c) => (
                <section key={c.resource.id} className="column" aria-labelledby={`col-${c.resource.id}`}>
                  <h3 id={`col-${c.resource.id}`}>{c.resource.name}</h3>
                  {c.appointments.length === 0 ? <p className="meta">{t("desk.empty")}</p> : <ul className="plain">{c.appointments.map(card)}</ul>}
                </section>
              ))}
            </div>
          )}
        </section>
      )}
      {providerId && (
        <section aria-labelledby="week-title">
          <h2 id="week-title">{t("desk.weekOf", { name: providers.find((p) => p.id === providerId)?.name ?? "" })}</h2>
          {!week ? (
            <p role="status">{t("app.loading")}</p>
          ) : (
            <div className="columns week">
              {week.map((d) => (
                <section key={d.date} className="column" aria-labelledby={`day-${d.date}`}>
                  <h3 id={`day-${d.date}`}>{when(`${d.date}T12:00:00Z`, "UTC", "day")}</h3>
                  {d.appointments.length === 0 ? <p className="meta">{t("desk.empty")}</p> : <ul className="plain">{d.appointments.map(card)}</ul>}
                </section>
              ))}
            </div>
          )}
        </section>
      )}
    </div>
  );
}

function Keys({ on, onChoose, onClose }: { on: boolean; onChoose: (on: boolean) => void; onClose: () => void }) {
  const { t } = useI18n();
  const keys: [string, MessageKey][] = [
    ["← →", "desk.keyDays"],
    ["t", "desk.keyToday"],
    ["w", "desk.keyWeek"],
    ["n", "desk.keyBook"],
    ["r", "desk.keyReload"],
    ["?", "desk.keyHelp"],
  ];
  return (
    <section className="card panel" aria-labelledby="keys-title">
      <h2 id="keys-title">{t("desk.keys")}</h2>
      <dl className="summary">
        {keys.map(([key, text]) => (
          <div key={key} className="pair">
            <dt>
              <kbd>{key}</kbd>
            </dt>
            <dd>{t(text)}</dd>
          </div>
        ))}
      </dl>
      <label className="inline">
        <input type="checkbox" checked={on} onChange={(e) => onChoose(e.target.checked)} /> {t("desk.keysOn")}
      </label>
      <button type="button" className="small" onClick={onClose} autoFocus>
        {t("desk.close")}
      </button>
    </section>
  );
}
