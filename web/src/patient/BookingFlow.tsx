// A patient books: what you need -> where and with whom -> when -> your details -> review
// -> you are all set. The chosen time is held while the patient types; a time someone else
// took meanwhile is answered with the nearest free ones.
import { useEffect, useReducer, useRef, useState } from "react";
import { api, problemOf, type AppointmentType, type Location, type Patient, type Slot } from "../api/client";
import { Notice } from "../App";
import { useI18n } from "../i18n/i18n";
import type { MessageKey } from "../i18n/messages";
import { START, STEPS, nearestAlternatives, reduce, updatedContacts, type Details } from "./flow";
import { DetailsStep, DoneStep, NeedStep, ReviewStep, WhenStep, WhereStep } from "./steps";

const STEP_NAMES: Record<(typeof STEPS)[number], MessageKey> = {
  need: "step.need",
  where: "step.where",
  when: "step.when",
  details: "step.details",
  review: "step.review",
  done: "step.done",
};

export interface Reference {
  types: AppointmentType[];
  locations: Location[];
  patient: Patient | null;
}

export function useReference(): [Reference | null, string | null] {
  const [reference, setReference] = useState<Reference | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    (async () => {
      const [types, locations, me] = await Promise.all([
        api.GET("/v1/appointment-types", { params: { query: { page_size: 200 } } }),
        api.GET("/v1/locations", { params: { query: { page_size: 200 } } }),
        api.GET("/v1/me"),
      ]);
      const patientId = me.data?.patient_id;
      const patient = patientId
        ? (await api.GET("/v1/patients/{patient_id}", { params: { path: { patient_id: patientId } } })).data
        : null;
      if (!types.data || !locations.data) throw problemOf(types.error ?? locations.error);
      if (live) {
        setReference({
          types: types.data.appointment_types.filter((x) => !x.retired),
          locations: locations.data.locations.filter((x) => !x.retired),
          patient: patient ?? null,
        });
      }
    })().catch((error: unknown) => live && setProblem(problemOf(error).detail));
    return () => {
      live = false;
    };
  }, []);
  return [reference, problem];
}

export function BookingFlow() {
  const { t } = useI18n();
  const [state, dispatch] = useReducer(reduce, START);
  const [reference, problem] = useReference();
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<string | null>(null);
  const [details, setDetails] = useState<Details | null>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  const first = useRef(true);

  // A hold the flow drops (another time, type, place or clinician; the patient leaves) is
  // let go at once, not left to block the time until it expires. A booked one is kept.
  const held = useRef<string | null>(null);
  const booked = useRef(new Set<string>());
  if (state.bookedId) booked.current.add(state.bookedId);
  useEffect(() => {
    const now = state.hold?.id ?? null;
    if (held.current && held.current !== now && !booked.current.has(held.current)) void release(held.current);
    held.current = now;
  }, [state.hold]);
  useEffect(
    () => () => {
      if (held.current && !booked.current.has(held.current)) void release(held.current);
    },
    [],
  );

  // A new step is announced: focus moves to its heading (not on the first page load).
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    heading.current?.focus();
  }, [state.step]);

  if (problem) return <Notice text={t("app.unreachable")} />;
  if (!reference) return <p role="status">{t("app.loading")}</p>;

  const type = reference.types.find((x) => x.id === state.typeId) ?? null;
  const location = reference.locations.find((x) => x.id === state.locationId) ?? null;
  const index = STEPS.indexOf(state.step);

  async function hold(slot: Slot) {
    setBusy(true);
    try {
      await holding(slot);
    } catch {
      setFailure(t("app.unreachable")); // no answer at all: the network, not a refusal
    } finally {
      setBusy(false);
    }
  }

  async function holding(slot: Slot) {
    if (!type || !location) return;
    setFailure(null);
    const { data, error, response } = await api.POST("/v1/holds", {
      params: { header: { "Idempotency-Key": crypto.randomUUID() } },
      body: {
        appointment_type_id: type.id,
        location_id: location.id,
        start: slot.start,
        preferred_resources: slot.resources,
      },
    });
    if (data) {
      dispatch({ type: "held", hold: { id: data.id, expiresAt: data.hold_expires_at ?? slot.end, slot } });
    } else if (response.status === 409 || response.status === 422) {
      // Taken meanwhile (or no longer bookable): the nearest free times that day and the next.
      const day = slot.local_start.slice(0, 10);
      const after = new Date(Date.parse(day) + 86_400_000).toISOString().slice(0, 10);
      const { data: around } = await api.GET("/v1/slots", {
        params: {
          query: {
            appointment_type_id: type.id,
            location_id: [location.id],
            from: day,
            to: after,
            provider_id: state.providerId ? [state.providerId] : [],
            page_size: 200,
          },
        },
      });
      dispatch({ type: "taken", slot, alternatives: nearestAlternatives(slot, around?.slots ?? []) });
    } else {
      setFailure(t("error.generic", { detail: problemOf(error, response).detail }));
    }
  }

  async function book() {
    if (!state.hold) return;
    setBusy(true);
    setFailure(null);
    const { data, error, response } = await api.POST("/v1/appointments/{appointment_id}/confirm", {
      params: {
        path: { appointment_id: state.hold.id },
        header: { "Idempotency-Key": `confirm-${state.hold.id}` },
      },
    });
    setBusy(false);
    if (data) dispatch({ type: "booked", id: data.id });
    else if (response.status === 409 || response.status === 410) dispatch({ type: "expired" });
    else setFailure(t("error.generic", { detail: problemOf(error, response).detail }));
  }

  /** The details saved first (a refusal is shown, and the patient stays to fix it). */
  async function saveDetails(chosen: Details) {
    const patient = reference?.patient;
    setFailure(null);
    if (patient) {
      setBusy(true);
      const contacts = updatedContacts(patient.contacts, chosen);
      const saved = contacts
        ? await api.PATCH("/v1/patients/{patient_id}", { params: { path: { patient_id: patient.id } }, body: { contacts } })
        : null;
      const preferred = saved?.error
        ? saved
        : await api.PUT("/v1/patients/{patient_id}/preferences", {
            params: { path: { patient_id: patient.id } },
            body: {
              preferred_channel: chosen.channel,
              ...(chosen.channel === "email" ? { consent_email: true } : { consent_sms: true }),
            },
          });
      setBusy(false);
      if (preferred.error) {
        setFailure(t("error.generic", { detail: problemOf(preferred.error, preferred.response).detail }));
        return;
      }
    }
    setDetails(chosen);
    dispatch({ type: "continue" });
  }

  const stepName = t(STEP_NAMES[state.step]);
  return (
    <div className="flow">
      <nav aria-label={t("step.progress", { n: index + 1, total: STEPS.length, name: stepName })}>
        <ol className="progress">
          {STEPS.map((step, n) => (
            <li key={step} className={n < index ? "past" : n === index ? "current" : ""} aria-current={n === index ? "step" : undefined}>
              <span className="visually-hidden">{t(STEP_NAMES[step])}</span>
            </li>
          ))}
        </ol>
        <p className="progress-text">{t("step.progress", { n: index + 1, total: STEPS.length, name: stepName })}</p>
      </nav>
      {failure && <Notice text={failure} />}
      {state.step === "need" && (
        <NeedStep heading={heading} types={reference.types} chosen={state.typeId} onChoose={(id) => dispatch({ type: "chooseType", id })} onContinue={() => dispatch({ type: "continue" })} />
      )}
      {state.step === "where" && type && (
        <WhereStep
          heading={heading}
          type={type}
          locations={reference.locations}
          state={state}
          dispatch={dispatch}
        />
      )}
      {state.step === "when" && type && location && (
        <WhenStep heading={heading} type={type} location={location} state={state} dispatch={dispatch} busy={busy} onHold={hold} />
      )}
      {state.step === "details" && state.hold && (
        <DetailsStep heading={heading} patient={reference.patient} initial={details} hold={state.hold} onExpired={() => dispatch({ type: "expired" })} onBack={() => dispatch({ type: "back" })} onSave={saveDetails} />
      )}
      {state.step === "review" && state.hold && type && location && (
        <ReviewStep heading={heading} type={type} location={location} hold={state.hold} details={details} busy={busy} onExpired={() => dispatch({ type: "expired" })} onBack={() => dispatch({ type: "back" })} onBook={book} />
      )}
      {state.step === "done" && state.hold && type && location && (
        <DoneStep heading={heading} type={type} location={location} slot={state.hold.slot} onAgain={() => dispatch({ type: "restart" })} />
      )}
    </div>
  );
}

/** A hold the patient moved away from is let go at once, not left to expire. */
async function release(id: string): Promise<void> {
  await api.POST("/v1/appointments/{appointment_id}/cancel", {
    params: { path: { appointment_id: id }, header: { "Idempotency-Key": `release-${id}` } },
    body: { reason: "the patient chose another time" },
  });
}

