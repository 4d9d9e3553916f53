// Schedules: a provider's, room's or device's weekly hours (checked as they are typed) and the
// exceptions that change single days: leave, holidays, blocked or extra time.
import { useCallback, useEffect, useRef, useState } from "react";
import { api, problemOf, type Location, type Resource } from "../api/client";
import { Notice } from "../App";
import { useI18n } from "../i18n/i18n";
import { localDate } from "../patient/flow";
import { describedBy, Field } from "./Admin";
import { hoursProblems, zonedInstant, type WeeklyHours } from "./model";
import { useAdminText, type AdminKey } from "./text";

type Category = Resource["category"];
const KINDS = ["leave", "holiday", "blocked", "extra"] as const;
type Kind = (typeof KINDS)[number];

interface Exception {
  id: string;
  kind: Kind;
  start: string;
  end: string;
  reason?: string | null;
  location_id?: string | null;
}

interface Schedule {
  resource_id: string;
  version: number;
  weekly_hours: WeeklyHours[];
  exceptions: Exception[];
}

// The same three routes for each kind of resource.
const ROUTE = { provider: "/v1/providers", room: "/v1/rooms", device: "/v1/devices" } as const;
type ScheduleRoute = "/v1/providers/{resource_id}/schedule";
type HoursRoute = "/v1/providers/{resource_id}/schedule/weekly-hours";
type ExceptionsRoute = "/v1/providers/{resource_id}/schedule/exceptions";
type ExceptionRoute = "/v1/providers/{resource_id}/schedule/exceptions/{exception_id}";

export function Schedules({ locations }: { locations: Location[] }) {
  const t = useAdminText();
  const [resources, setResources] = useState<Resource[] | null>(null);
  const [chosen, setChosen] = useState<string>("");
  const [problem, setProblem] = useState<string | null>(null);

  useEffect(() => {
    const mine = new Set(locations.map((l) => l.id));
    Promise.all(
      (Object.keys(ROUTE) as Category[]).map((category) =>
        api.GET(ROUTE[category] as "/v1/providers", { params: { query: { page_size: 200 } } }),
      ),
    ).then((answers) => {
      const failed = answers.find((a) => !a.data);
      if (failed) return setProblem(problemOf(failed.error, failed.response).detail);
      const all = answers
        .flatMap((a) => a.data?.resources ?? [])
        .filter((r) => !r.retired && r.location_ids.some((l) => mine.has(l)));
      setResources(all);
      setChosen((current) => current || (all[0]?.id ?? ""));
    });
  }, [locations]);

  const resource = resources?.find((r) => r.id === chosen) ?? null;
  return (
    <section aria-labelledby="schedules-title">
      <h2 id="schedules-title" className="visually-hidden">
        {t("admin.schedules")}
      </h2>
      <p>{t("schedules.lead")}</p>
      {problem && <Notice text={problem} />}
      {resources && (
        <div className="field narrow-field">
          <label htmlFor="schedule-resource">{t("schedules.resource")}</label>
          <select id="schedule-resource" value={chosen} onChange={(e) => setChosen(e.target.value)}>
            {resources.map((r) => (
              <option key={r.id} value={r.id}>
                {r.name} ({r.kind})
              </option>
            ))}
          </select>
        </div>
      )}
      {resource && <ResourceSchedule key={resource.id} resource={resource} locations={locations} />}
    </section>
  );
}

function ResourceSchedule({ resource, locations }: { resource: Resource; locations: Location[] }) {
  const [schedule, setSchedule] = useState<Schedule | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const base = ROUTE[resource.category];

  const load = useCallback(async () => {
    const { data, error, response } = await api.GET(`${base}/{resource_id}/schedule` as ScheduleRoute, {
      params: { path: { resource_id: resource.id } },
    });
    if (!data) return setProblem(problemOf(error, response).detail);
    setSchedule(data as unknown as Schedule);
  }, [base, resource.id]);
  useEffect(() => void load(), [load]);

  const places = locations.filter((l) => resource.location_ids.includes(l.id));
  if (problem) return <Notice text={problem} />;
  if (!schedule) return <p role="status">…</p>;
  return (
    <>
      <Hours resource={resource} base={base} places={places} initial={schedule.weekly_hours} onSaved={setSchedule} />
      <Exceptions resource={resource} base={base} places={places} schedule={schedule} onChanged={load} />
    </>
  );
}

function Hours({
  resource,
  base,
  places,
  initial,
  onSaved,
}: {
  resource: Resource;
  base: string;
  places: Location[];
  initial: WeeklyHours[];
  onSaved: (schedule: Schedule) => void;
}) {
  const t = useAdminText();
  // Hours at locations this admin does not manage are shown, not edited, and sent back as
  // they were (the weekly hours are replaced as a whole).
  const mine = new Set(places.map((p) => p.id));
  const kept = initial.filter((r) => !mine.has(r.location_id));
  const next = useRef(0);
  const keyed = (r: WeeklyHours) => ({ ...r, key: next.current++ });
  const [rows, setRows] = useState(() => initial.filter((r) => mine.has(r.location_id)).map(keyed));
  const [busy, setBusy] = useState(false);
  const [news, setNews] = useState<string | null>(null);
  const [refusal, setRefusal] = useState<string | null>(null);
  const weekdays = t("schedules.weekdays").split(",");
  const problems = hoursProblems(rows);
  const rowProblem = (n: number) => problems.find((p) => p.row === n)?.problem;
  const say: Record<string, AdminKey> = { time: "schedules.problemTime", order: "schedules.problemOrder", overlap: "schedules.problemOverlap" };

  const change = (n: number, changes: Partial<WeeklyHours>) => {
    setNews(null);
    setRows((all) => all.map((r, m) => (m === n ? { ...r, ...changes } : r)));
  };

  async function save() {
    if (problems.length > 0) return setRefusal(t("admin.fix"));
    setBusy(true);
    setRefusal(null);
    try {
      const hours = [...rows.map(({ key: _key, ...row }) => row), ...kept];
      const { data, error, response } = await api.PUT(`${base}/{resource_id}/schedule/weekly-hours` as HoursRoute, {
        params: { path: { resource_id: resource.id } },
        body: { hours },
      });
      if (!data) return setRefusal(problemOf(error, response).detail ?? null);
      setNews(t("schedules.hoursSaved"));
      onSaved(data as unknown as Schedule);
    } catch {
      setRefusal(t("admin.unreachable"));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card admin-form" aria-labelledby="hours-title">
      <h3 id="hours-title">{t("schedules.weekly")}</h3>
      {places[0] && <p className="meta">{t("schedules.timesIn", { zone: places.map((p) => `${p.name} (${p.time_zone})`).join(", ") })}</p>}
      {news && <Notice text={news} kind="success" />}
      {refusal && <Notice text={refusal} />}
      {rows.length === 0 && kept.length === 0 && <p>{t("schedules.noHours")}</p>}
      {kept.length > 0 && (
        <p className="meta">
          {t("schedules.elsewhere", {
            hours: kept.map((r) => `${weekdays[r.weekday] ?? r.weekday} ${r.start}–${r.end}`).join(", "),
          })}
        </p>
      )}
      <table className="hours">
        <thead>
          <tr>
            <th scope="col">{t("schedules.weekday")}</th>
            <th scope="col">{t("schedules.start")}</th>
            <th scope="col">{t("schedules.end")}</th>
            {places.length > 1 && <th scope="col">{t("schedules.location")}</th>}
            <th scope="col">
              <span className="visually-hidden">{t("admin.remove")}</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {rows.map((row, n) => {
            const wrong = rowProblem(n);
            const label = `${weekdays[row.weekday] ?? row.weekday}, ${n + 1}`;
            return (
              <tr key={row.key} className={wrong ? "invalid" : undefined}>
                <td>
                  <select aria-label={`${t("schedules.weekday")} (${label})`} value={row.weekday} onChange={(e) => change(n, { weekday: Number(e.target.value) })}>
                    {weekdays.map((name, d) => (
                      <option key={d} value={d}>
                        {name}
                      </option>
                    ))}
                  </select>
                </td>
                {(["start", "end"] as const).map((edge) => (
                  <td key={edge}>
                    <input
                      type="text"
                      inputMode="numeric"
                      size={5}
                      aria-label={`${t(edge === "start" ? "schedules.start" : "schedules.end")} (${label})`}
                      aria-invalid={wrong ? true : undefined}
                      aria-describedby={wrong ? `hours-problem-${n}` : undefined}
                      value={row[edge]}
                      onChange={(e) => change(n, { [edge]: e.target.value })}
                    />
                  </td>
                ))}
                {places.length > 1 && (
                  <td>
                    <select aria-label={`${t("schedules.location")} (${label})`} value={row.location_id} onChange={(e) => change(n, { location_id: e.target.value })}>
                      {places.map((p) => (
                        <option key={p.id} value={p.id}>
                          {p.name}
                        </option>
                      ))}
                    </select>
                  </td>
                )}
                <td>
                  <button type="button" className="small" aria-label={`${t("admin.remove")}: ${label} ${row.start}–${row.end}`} onClick={() => setRows((all) => all.filter((_, m) => m !== n))}>
                    {t("admin.remove")}
                  </button>
                  {wrong && (
                    <span className="problem" id={`hours-problem-${n}`}>
                      {t(say[wrong]!)}
                    </span>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <div className="actions">
        <button
          type="button"
          disabled={!places[0]}
          onClick={() => setRows((all) => [...all, keyed({ weekday: 0, start: "08:00", end: "12:00", location_id: places[0]?.id ?? "" })])}
        >
          {t("schedules.addRow")}
        </button>
        <button type="button" className="primary" disabled={busy} onClick={save}>
          {busy ? t("admin.saving") : t("admin.save")}
        </button>
      </div>
    </section>
  );
}

function Exceptions({
  resource,
  base,
  places,
  schedule,
  onChanged,
}: {
  resource: Resource;
  base: string;
  places: Location[];
  schedule: Schedule;
  onChanged: () => Promise<void>;
}) {
  const t = useAdminText();
  const { when } = useI18n();
  const zone = places[0]?.time_zone ?? resource.time_zone;
  const today = localDate(new Date(), zone);
  const [kind, setKind] = useState<Kind>("leave");
  const [startDate, setStartDate] = useState(today);
  const [startTime, setStartTime] = useState("00:00");
  const [endDate, setEndDate] = useState(today);
  const [endTime, setEndTime] = useState("23:59");
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const [news, setNews] = useState<string | null>(null);
  const [refusal, setRefusal] = useState<string | null>(null);

  const valid = /^\d{4}-\d{2}-\d{2}$/.test(startDate) && /^\d{4}-\d{2}-\d{2}$/.test(endDate) && /^\d{2}:\d{2}$/.test(startTime) && /^\d{2}:\d{2}$/.test(endTime);
  const start = valid ? zonedInstant(startDate, startTime, zone) : null;
  const end = valid ? zonedInstant(endDate, endTime, zone) : null;
  const backwards = start !== null && end !== null && end <= start;
  const range = (e: { start: string; end: string }) => t("schedules.range", { from: when(e.start, zone), to: when(e.end, zone) });

  async function add(event: React.FormEvent) {
    event.preventDefault();
    if (!start || !end || backwards) return setRefusal(t("schedules.problemRange"));
    setBusy(true);
    setRefusal(null);
    try {
      const { data, error, response } = await api.POST(`${base}/{resource_id}/schedule/exceptions` as ExceptionsRoute, {
        params: { path: { resource_id: resource.id }, header: { "Idempotency-Key": crypto.randomUUID() } },
        body: { kind, start, end, reason: reason.trim() },
      });
      if (!data) return setRefusal(problemOf(error, response).detail ?? null);
      setNews(t("schedules.exceptionAdded", { what: `${t(`schedules.kind.${kind}`)}, ${range({ start, end })}` }));
      setReason("");
      await onChanged();
    } catch {
      setRefusal(t("admin.unreachable"));
    } finally {
      setBusy(false);
    }
  }

  // Removing asks once more (WCAG 3.3.4: stored data is not deleted by one slip).
  const [confirming, setConfirming] = useState<string | null>(null);
  async function remove(exception: Exception) {
    setBusy(true);
    try {
      const { error, response } = await api.DELETE(`${base}/{resource_id}/schedule/exceptions/{exception_id}` as ExceptionRoute, {
        params: { path: { resource_id: resource.id, exception_id: exception.id } },
      });
      if (!response.ok) return setRefusal(problemOf(error, response).detail ?? null);
      setNews(t("schedules.exceptionRemoved"));
      setConfirming(null);
      await onChanged();
    } catch {
      setRefusal(t("admin.unreachable"));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card admin-form" aria-labelledby="exceptions-title">
      <h3 id="exceptions-title">{t("schedules.exceptions")}</h3>
      <p className="meta">{t("schedules.timesIn", { zone: `${places[0]?.name ?? resource.name} (${zone})` })}</p>
      {news && <Notice text={news} kind="success" />}
      {refusal && <Notice text={refusal} />}
      {schedule.exceptions.length === 0 ? (
        <p>{t("schedules.noExceptions")}</p>
      ) : (
        <ul className="plain">
          {schedule.exceptions.map((e) => (
            <li key={e.id} className="exception">
              <span>
                <strong>{t(`schedules.kind.${e.kind}`)}</strong>: {range(e)}
                {e.reason ? ` · ${e.reason}` : ""}
              </span>
              {confirming === e.id ? (
                <span className="row-actions">
                  <button type="button" className="small danger" disabled={busy} onClick={() => remove(e)}>
                    {t("admin.confirmRemove")}
                  </button>
                  <button type="button" className="small" onClick={() => setConfirming(null)}>
                    {t("admin.cancel")}
                  </button>
                </span>
              ) : (
                <button type="button" className="small" aria-label={`${t("admin.remove")}: ${t(`schedules.kind.${e.kind}`)}, ${range(e)}`} onClick={() => setConfirming(e.id)}>
                  {t("admin.remove")}
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      <form onSubmit={add} noValidate className="exception-form">
        <Field id="exception-kind" label={t("schedules.kind")}>
          <select id="exception-kind" value={kind} onChange={(e) => setKind(e.target.value as Kind)}>
            {KINDS.map((k) => (
              <option key={k} value={k}>
                {t(`schedules.kind.${k}`)}
              </option>
            ))}
          </select>
        </Field>
        <div className="pair-fields">
          <Field id="exception-start-date" label={t("schedules.startDate")}>
            <input id="exception-start-date" type="date" value={startDate} onChange={(e) => (setStartDate(e.target.value), e.target.value > endDate && setEndDate(e.target.value))} />
          </Field>
          <Field id="exception-start-time" label={t("schedules.startTime")}>
            <input id="exception-start-time" type="time" value={startTime} onChange={(e) => setStartTime(e.target.value)} />
          </Field>
          <Field id="exception-end-date" label={t("schedules.endDate")}>
            <input id="exception-end-date" type="date" value={endDate} onChange={(e) => setEndDate(e.target.value)} />
          </Field>
          <Field id="exception-end-time" label={t("schedules.endTime")} problem={backwards ? t("schedules.problemRange") : null}>
            <input
              id="exception-end-time"
              type="time"
              value={endTime}
              aria-invalid={backwards ? true : undefined}
              aria-describedby={describedBy("exception-end-time", false, backwards ? "x" : null)}
              onChange={(e) => setEndTime(e.target.value)}
            />
          </Field>
        </div>
        <Field id="exception-reason" label={t("schedules.reason")}>
          <input id="exception-reason" type="text" maxLength={500} value={reason} onChange={(e) => setReason(e.target.value)} />
        </Field>
        <div className="actions">
          <button type="submit" className="primary" disabled={busy}>
            {t("schedules.addException")}
          </button>
        </div>
      </form>
    </section>
  );
}
