// The desk's side panels: an appointment's history, booking for a caller, the waitlist.
import { useEffect, useId, useState } from "react";
import { api, problemOf, type AppointmentType, type Location, type Slot } from "../api/client";
import { Notice } from "../App";
import { useI18n } from "../i18n/i18n";
import type { MessageKey } from "../i18n/messages";
import { distinctTimes } from "../patient/flow";
import type { CalendarAppointment } from "./calendar";

type HistoryEvent = {
  event: string;
  status: string;
  recorded_at: string;
  start?: string | null;
  reason?: string | null;
  by?: string | null;
  actor?: { user_id: string; role: string; channel: string } | null;
};

function Panel({ title, onClose, children }: { title: string; onClose: () => void; children: React.ReactNode }) {
  const { t } = useI18n();
  const id = useId();
  return (
    <section className="card panel" aria-labelledby={id}>
      <div className="panel-head">
        <h2 id={id} tabIndex={-1} ref={(h) => h?.focus()}>
          {title}
        </h2>
        <button type="button" className="small" onClick={onClose}>
          {t("desk.close")}
        </button>
      </div>
      {children}
    </section>
  );
}

export function History({ appointment, patientName, timeZone, onClose }: { appointment: CalendarAppointment; patientName: string; timeZone: string; onClose: () => void }) {
  const { t, when } = useI18n();
  const [events, setEvents] = useState<HistoryEvent[] | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    api.GET("/v1/appointments/{appointment_id}/history", { params: { path: { appointment_id: appointment.id } } }).then(({ data, error, response }) => {
      if (data) setEvents(data.events as unknown as HistoryEvent[]);
      else setProblem(problemOf(error, response).detail);
    });
  }, [appointment.id]);
  return (
    <Panel title={t("desk.historyTitle", { name: patientName, when: when(appointment.start, timeZone) })} onClose={onClose}>
      {problem && <Notice text={problem} />}
      {!events && !problem && <p role="status">{t("app.loading")}</p>}
      {events && (
        <ol className="history">
          {events.map((e, n) => (
            <li key={n}>
              <p className="choice-title">
                {e.event} · <span className={`status status-${e.status}`}>{t(`status.${e.status}` as MessageKey)}</span>
              </p>
              <p className="meta">
                {t("desk.historyWhen", {
                  when: when(e.recorded_at, timeZone),
                  who: e.actor ? `${e.actor.user_id} (${e.actor.role}, ${e.actor.channel})` : (e.by ?? "—"),
                })}
              </p>
              {e.start && <p>{t("desk.historyTime", { when: when(e.start, timeZone) })}</p>}
              {e.reason && <p>{t("desk.historyReason", { reason: e.reason })}</p>}
            </li>
          ))}
        </ol>
      )}
    </Panel>
  );
}

export function QuickBook({ location, date, onClose, onBooked }: { location: Location; date: string; onClose: () => void; onBooked: () => void }) {
  const { t, when } = useI18n();
  const [types, setTypes] = useState<AppointmentType[]>([]);
  const [typeId, setTypeId] = useState("");
  const [slots, setSlots] = useState<Slot[] | null>(null);
  const [slot, setSlot] = useState<Slot | null>(null);
  const [person, setPerson] = useState({ given: "", family: "", birth: "", phone: "" });
  const [identifier, setIdentifier] = useState("");
  const [patientId, setPatientId] = useState<string | null>(null);
  const [message, setMessage] = useState<{ text: string; kind: "problem" | "success" } | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    api.GET("/v1/appointment-types", { params: { query: { location_id: location.id, page_size: 200 } } }).then(({ data }) => {
      const open = (data?.appointment_types ?? []).filter((x) => !x.retired);
      setTypes(open);
      setTypeId(open[0]?.id ?? "");
    });
  }, [location.id]);

  useEffect(() => {
    if (!typeId) return;
    setSlots(null);
    setSlot(null);
    api
      .GET("/v1/slots", { params: { query: { appointment_type_id: typeId, location_id: [location.id], from: date, to: date, page_size: 200 } } })
      .then(({ data }) => setSlots(distinctTimes(data?.slots ?? [])));
  }, [typeId, location.id, date]);

  async function find() {
    setMessage(null);
    const { data, error, response } = await api.GET("/v1/patients", { params: { query: { identifier } } });
    const found = data?.patients[0];
    if (found) {
      setPatientId(found.id);
      setPerson({ given: found.given_name, family: found.family_name, birth: found.birth_date, phone: "" });
    } else setMessage({ text: data ? t("desk.noPatient") : problemOf(error, response).detail, kind: "problem" });
  }

  async function book() {
    if (!slot) return;
    setBusy(true);
    setMessage(null);
    let patient = patientId;
    if (!patient) {
      const registered = await api.POST("/v1/patients", {
        params: { header: { "Idempotency-Key": crypto.randomUUID() } },
        body: {
          given_name: person.given.trim(),
          family_name: person.family.trim(),
          birth_date: person.birth,
          contacts: person.phone ? [{ system: "sms", value: person.phone.replace(/[\s\-().]/g, ""), use: "mobile" }] : [],
        },
      });
      if (!registered.data) {
        setBusy(false);
        return setMessage({ text: problemOf(registered.error, registered.response).detail, kind: "problem" });
      }
      patient = registered.data.id;
      setPatientId(patient);
    }
    const booked = await api.POST("/v1/appointments", {
      params: { header: { "Idempotency-Key": crypto.randomUUID() } },
      body: { appointment_type_id: typeId, location_id: location.id, patient_id: patient, start: slot.start, preferred_resources: slot.resources },
    });
    setBusy(false);
    if (booked.data) {
      setMessage({ text: t("desk.booked", { name: `${person.given} ${person.family}`, when: when(slot.start, location.time_zone) }), kind: "success" });
      onBooked();
    } else setMessage({ text: problemOf(booked.error, booked.response).detail, kind: "problem" });
  }

  const ready = slot !== null && (patientId !== null || (person.given.trim() && person.family.trim() && /^\d{4}-\d{2}-\d{2}$/.test(person.birth)));
  return (
    <Panel title={t("desk.book")} onClose={onClose}>
      {message && <Notice text={message.text} kind={message.kind} />}
      <div className="field">
        <label htmlFor="quick-type">{t("desk.type")}</label>
        <select id="quick-type" value={typeId} onChange={(e) => setTypeId(e.target.value)}>
          {types.map((x) => (
            <option key={x.id} value={x.id}>
              {x.name} ({t("need.minutes", { minutes: x.duration_minutes })})
            </option>
          ))}
        </select>
      </div>
      <fieldset>
        <legend>{t("desk.freeTimes", { day: when(`${date}T12:00:00Z`, "UTC", "day") })}</legend>
        {slots === null ? (
          <p role="status">{t("app.loading")}</p>
        ) : slots.length === 0 ? (
          <p>{t("when.noTimes")}</p>
        ) : (
          <div className="times">
            {slots.slice(0, 24).map((s) => (
              <label key={s.start} className="day">
                <input type="radio" name="quick-time" checked={slot?.start === s.start} onChange={() => setSlot(s)} />
                <span>{when(s.start, location.time_zone, "time")}</span>
              </label>
            ))}
          </div>
        )}
      </fieldset>
      <fieldset>
        <legend>{t("desk.patient")}</legend>
        <div className="field">
          <label htmlFor="quick-identifier">{t("desk.identifier")}</label>
          <span className="hint" id="quick-identifier-hint">
            {t("desk.identifierHint")}
          </span>
          <div className="inline-form">
            <input id="quick-identifier" type="text" value={identifier} aria-describedby="quick-identifier-hint" onChange={(e) => setIdentifier(e.target.value)} />
            <button type="button" className="small" onClick={() => void find()} disabled={identifier.length < 3}>
              {t("desk.find")}
            </button>
          </div>
        </div>
        <p className="meta">{t("desk.orNew")}</p>
        {(
          [
            ["given", "desk.given", "text", "given-name"],
            ["family", "desk.family", "text", "family-name"],
            ["birth", "desk.birth", "date", "bday"],
            ["phone", "details.phone", "tel", "tel"],
          ] as const
        ).map(([field, label, type, autoComplete]) => (
          <div className="field" key={field}>
            <label htmlFor={`quick-${field}`}>{t(label)}</label>
            <input
              id={`quick-${field}`}
              type={type}
              autoComplete={autoComplete}
              value={person[field]}
              disabled={patientId !== null}
              onChange={(e) => setPerson({ ...person, [field]: e.target.value })}
            />
          </div>
        ))}
      </fieldset>
      <div className="actions">
        <button type="button" className="primary" disabled={!ready || busy} onClick={() => void book()}>
          {slot ? t("desk.bookAt", { when: when(slot.start, location.time_zone, "time") }) : t("desk.book")}
        </button>
      </div>
    </Panel>
  );
}

type Entry = { id: string; patient_id: string; appointment_type_id: string; earliest: string; latest: string; active?: boolean };

export function Waitlist({ location, onClose }: { location: Location; onClose: () => void }) {
  const { t, when } = useI18n();
  const [entries, setEntries] = useState<Entry[] | null>(null);
  const [names, setNames] = useState<Record<string, string>>({});
  const [types, setTypes] = useState<Record<string, string>>({});
  useEffect(() => {
    api.GET("/v1/waitlist-entries", { params: { query: { location_id: location.id, active: true, page_size: 200 } } }).then(async ({ data }) => {
      const listed = (data?.entries ?? []) as unknown as Entry[];
      setEntries(listed);
      const people = await Promise.all(
        [...new Set(listed.map((e) => e.patient_id))].map((id) =>
          api.GET("/v1/patients/{patient_id}", { params: { path: { patient_id: id } } }).then(({ data: p }) => [id, p ? `${p.given_name} ${p.family_name}` : "—"] as const),
        ),
      );
      setNames(Object.fromEntries(people));
    });
    api.GET("/v1/appointment-types", { params: { query: { page_size: 200 } } }).then(({ data }) =>
      setTypes(Object.fromEntries((data?.appointment_types ?? []).map((x) => [x.id, x.name]))),
    );
  }, [location.id]);
  return (
    <Panel title={t("desk.waitlistTitle", { location: location.name })} onClose={onClose}>
      {!entries ? (
        <p role="status">{t("app.loading")}</p>
      ) : entries.length === 0 ? (
        <p>{t("desk.waitlistEmpty")}</p>
      ) : (
        <ul className="plain">
          {entries.map((e) => (
            <li key={e.id} className="card">
              <p className="choice-title">{names[e.patient_id] ?? "…"}</p>
              <p>{types[e.appointment_type_id] ?? ""}</p>
              <p className="meta">
                {t("desk.waitlistBetween", { from: when(`${e.earliest}T12:00:00Z`, "UTC", "day"), to: when(`${e.latest}T12:00:00Z`, "UTC", "day") })}
              </p>
            </li>
          ))}
        </ul>
      )}
    </Panel>
  );
}
