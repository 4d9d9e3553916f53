// A patient's own appointments: what is coming up (cancel, or change the time) and what
// was before.
import { useCallback, useEffect, useRef, useState } from "react";
import { api, problemOf, type PatientAppointment, type Slot } from "../api/client";
import { Notice } from "../App";
import { useI18n } from "../i18n/i18n";
import type { MessageKey } from "../i18n/messages";
import { useReference } from "./BookingFlow";
import { daysFrom, distinctTimes, localDate } from "./flow";
import { typeText } from "./steps";

const ACTIVE = new Set(["pending", "booked", "checked-in", "arrived"]);

export function MyAppointments() {
  const { t, when, language } = useI18n();
  const [reference, referenceProblem] = useReference();
  const [appointments, setAppointments] = useState<PatientAppointment[] | null>(null);
  const [message, setMessage] = useState<{ text: string; kind: "success" | "problem" } | null>(null);
  const [cancelling, setCancelling] = useState<string | null>(null);
  const [moving, setMoving] = useState<string | null>(null);
  const heading = useRef<HTMLHeadingElement>(null);

  const load = useCallback(async () => {
    const { data, error, response } = await api.GET("/v1/me/appointments", { params: { query: { page_size: 200 } } });
    if (data) setAppointments(data.appointments);
    else setMessage({ text: t("error.generic", { detail: problemOf(error, response).detail }), kind: "problem" });
  }, [t]);

  useEffect(() => {
    void load();
  }, [load]);

  if (referenceProblem) return <Notice text={t("app.unreachable")} />;
  if (!reference || !appointments) return <p role="status">{t("app.loading")}</p>;

  const zoneOf = (a: PatientAppointment) => reference.locations.find((l) => l.id === a.location_id)?.time_zone ?? "UTC";
  const now = Date.now();
  const upcoming = appointments.filter((a) => ACTIVE.has(a.status) && Date.parse(a.end) > now);
  const earlier = appointments.filter((a) => !upcoming.includes(a)).reverse();

  async function cancel(a: PatientAppointment) {
    const { data, error, response } = await api.POST("/v1/appointments/{appointment_id}/cancel", {
      params: { path: { appointment_id: a.id }, header: { "Idempotency-Key": crypto.randomUUID() } },
      body: { reason: "cancelled by the patient online" },
    });
    setCancelling(null);
    if (data) setMessage({ text: t("mine.cancelled", { when: when(a.start, zoneOf(a)) }), kind: "success" });
    else if (response.status === 409 || response.status === 422) setMessage({ text: t("mine.noLongerChange"), kind: "problem" });
    else setMessage({ text: t("error.generic", { detail: problemOf(error, response).detail }), kind: "problem" });
    heading.current?.focus();
    await load();
  }

  async function move(a: PatientAppointment, slot: Slot) {
    const { data, error, response } = await api.POST("/v1/appointments/{appointment_id}/reschedule", {
      params: { path: { appointment_id: a.id }, header: { "Idempotency-Key": crypto.randomUUID() } },
      body: { start: slot.start, preferred_resources: slot.resources },
    });
    setMoving(null);
    if (data) setMessage({ text: t("mine.moved", { when: when(slot.start, zoneOf(a)) }), kind: "success" });
    else if (response.status === 409 || response.status === 422) setMessage({ text: t("mine.noLongerChange"), kind: "problem" });
    else setMessage({ text: t("error.generic", { detail: problemOf(error, response).detail }), kind: "problem" });
    heading.current?.focus();
    await load();
  }

  function item(a: PatientAppointment, active: boolean) {
    const type = reference?.types.find((x) => x.id === a.appointment_type_id);
    const location = reference?.locations.find((l) => l.id === a.location_id);
    const name = type ? typeText(type, language).name : "";
    return (
      <li key={a.id} className="card appointment">
        <p className="choice-title">{when(a.start, zoneOf(a))}</p>
        <p>
          {name}
          {location ? ` · ${location.name}` : ""}
        </p>
        <p>
          <span className={`status status-${a.status}`}>{t(`status.${a.status}` as MessageKey)}</span>
        </p>
        {active && cancelling !== a.id && moving !== a.id && (
          <div className="actions">
            <button type="button" className="secondary" onClick={() => setMoving(a.id)} aria-label={`${t("mine.reschedule")}: ${when(a.start, zoneOf(a))}`}>
              {t("mine.reschedule")}
            </button>
            <button type="button" className="danger" onClick={() => setCancelling(a.id)} aria-label={`${t("mine.cancel")}: ${when(a.start, zoneOf(a))}`}>
              {t("mine.cancel")}
            </button>
          </div>
        )}
        {cancelling === a.id && (
          <div className="confirm" role="group" aria-label={t("mine.confirmCancel", { when: when(a.start, zoneOf(a)) })}>
            <p>{t("mine.confirmCancel", { when: when(a.start, zoneOf(a)) })}</p>
            <div className="actions">
              <button type="button" className="secondary" onClick={() => setCancelling(null)} autoFocus>
                {t("mine.keep")}
              </button>
              <button type="button" className="danger" onClick={() => void cancel(a)}>
                {t("mine.doCancel")}
              </button>
            </div>
          </div>
        )}
        {moving === a.id && <NewTime appointment={a} timeZone={zoneOf(a)} onPick={(slot) => void move(a, slot)} onClose={() => setMoving(null)} />}
      </li>
    );
  }

  return (
    <div>
      <h1 ref={heading} tabIndex={-1}>
        {t("mine.title")}
      </h1>
      {message && <Notice text={message.text} kind={message.kind} />}
      {appointments.length === 0 && <p>{t("mine.none")}</p>}
      {upcoming.length > 0 && (
        <section aria-labelledby="upcoming">
          <h2 id="upcoming">{t("mine.upcoming")}</h2>
          <ul className="plain">{upcoming.map((a) => item(a, true))}</ul>
        </section>
      )}
      {earlier.length > 0 && (
        <section aria-labelledby="earlier">
          <h2 id="earlier">{t("mine.past")}</h2>
          <ul className="plain">{earlier.map((a) => item(a, false))}</ul>
        </section>
      )}
    </div>
  );
}

function NewTime({ appointment, timeZone, onPick, onClose }: { appointment: PatientAppointment; timeZone: string; onPick: (slot: Slot) => void; onClose: () => void }) {
  const { t, when } = useI18n();
  const days = daysFrom(localDate(new Date(), timeZone), 14);
  const [slots, setSlots] = useState<Slot[] | null>(null);
  useEffect(() => {
    api
      .GET("/v1/slots", {
        params: {
          query: {
            appointment_type_id: appointment.appointment_type_id,
            location_id: [appointment.location_id],
            from: days[0] ?? "",
            to: days[days.length - 1] ?? "",
            page_size: 200,
          },
        },
      })
      .then(({ data }) => setSlots(distinctTimes(data?.slots ?? []).filter((s) => s.start !== appointment.start).slice(0, 12)));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [appointment.id]);
  return (
    <div className="confirm" role="group" aria-label={t("mine.pickNew")}>
      <p>{t("mine.pickNew")}</p>
      {slots === null ? (
        <p role="status">{t("app.loading")}</p>
      ) : (
        <ul className="times">
          {slots.map((slot) => (
            <li key={slot.start}>
              <button type="button" className="time" onClick={() => onPick(slot)}>
                {when(slot.start, timeZone)}
              </button>
            </li>
          ))}
        </ul>
      )}
      <div className="actions">
        <button type="button" className="secondary" onClick={onClose}>
          {t("mine.keep")}
        </button>
      </div>
    </div>
  );
}
