// The steps of the patient's booking flow (BookingFlow holds their state).
import { useEffect, useId, useState, type Dispatch, type RefObject } from "react";
import { api, type AppointmentType, type Location, type Patient, type Resource, type Slot } from "../api/client";
import { Notice } from "../App";
import { useI18n, type I18n } from "../i18n/i18n";
import { follow } from "../router";
import {
  clock,
  daysFrom,
  detailsProblems,
  distinctTimes,
  localDate,
  normalisedPhone,
  secondsLeft,
  type Action,
  type Details,
  type FlowState,
  type Hold,
} from "./flow";

type Heading = RefObject<HTMLHeadingElement | null>;
const DAYS_SHOWN = 14;

/** What patients read about a type, in their language when the clinic wrote it. */
export function typeText(type: AppointmentType, language: string) {
  const own = type.patient_facing?.[language];
  return {
    name: own?.name || type.name,
    description: own?.description || "",
    preparation: own?.preparation || type.preparation || "",
  };
}

function specialtyOf(type: AppointmentType): string | null {
  for (const step of type.steps ?? []) {
    for (const need of step.requirements) {
      if (need.category === "provider" && need.specialty) return need.specialty;
    }
  }
  return type.specialty ?? null;
}

function readable(code: string): string {
  const text = code.replace(/-/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function StepHeading({ heading, text }: { heading: Heading; text: string }) {
  return (
    <h1 ref={heading} tabIndex={-1}>
      {text}
    </h1>
  );
}

function Actions({ onBack, onContinue, canContinue = true, label }: { onBack?: () => void; onContinue?: () => void; canContinue?: boolean; label?: string }) {
  const { t } = useI18n();
  return (
    <div className="actions">
      {onBack && (
        <button type="button" className="secondary" onClick={onBack}>
          {t("flow.back")}
        </button>
      )}
      {onContinue && (
        <button type="submit" className="primary" disabled={!canContinue} onClick={onContinue}>
          {label ?? t("flow.continue")}
        </button>
      )}
    </div>
  );
}

export function NeedStep({ heading, types, chosen, onChoose, onContinue }: { heading: Heading; types: AppointmentType[]; chosen: string | null; onChoose: (id: string) => void; onContinue: () => void }) {
  const { t, language } = useI18n();
  if (types.length === 0) return <Notice text={t("need.none")} kind="info" />;
  return (
    <form onSubmit={(e) => e.preventDefault()}>
      <StepHeading heading={heading} text={t("need.title")} />
      <fieldset className="choices">
        <legend>{t("need.lead")}</legend>
        {types.map((type) => {
          const text = typeText(type, language);
          return (
            <label key={type.id} className="choice">
              <input type="radio" name="type" value={type.id} checked={chosen === type.id} onChange={() => onChoose(type.id)} />
              <span className="choice-body">
                <span className="choice-title">{text.name}</span>
                <span className="meta">{t("need.minutes", { minutes: type.duration_minutes })}</span>
                {text.description && <span>{text.description}</span>}
                {text.preparation && <span className="hint">{t("need.preparation", { text: text.preparation })}</span>}
              </span>
            </label>
          );
        })}
      </fieldset>
      <Actions onContinue={onContinue} canContinue={chosen !== null} />
    </form>
  );
}

interface Next {
  slot: Slot | null;
  loading: boolean;
}

function useNextFree(typeId: string, locationId: string | null, providerIds: (string | null)[]): Record<string, Next> {
  const [next, setNext] = useState<Record<string, Next>>({});
  const key = providerIds.join(",");
  useEffect(() => {
    if (!locationId) return;
    let live = true;
    setNext(Object.fromEntries(providerIds.map((id) => [id ?? "", { slot: null, loading: true }])));
    for (const id of providerIds) {
      api
        .GET("/v1/slots/next-available", {
          params: {
            query: {
              appointment_type_id: typeId,
              location_id: [locationId],
              provider_id: id ? [id] : [],
              within_days: 60,
            },
          },
        })
        .then(({ data }) => {
          if (live) setNext((all) => ({ ...all, [id ?? ""]: { slot: data?.earliest ?? null, loading: false } }));
        });
    }
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [typeId, locationId, key]);
  return next;
}

export function WhereStep({ heading, type, locations, state, dispatch }: { heading: Heading; type: AppointmentType; locations: Location[]; state: FlowState; dispatch: Dispatch<Action> }) {
  const { t, when } = useI18n();
  const [providers, setProviders] = useState<Resource[]>([]);
  const specialty = specialtyOf(type);
  const locationId = state.locationId ?? (locations.length === 1 ? (locations[0]?.id ?? null) : null);

  useEffect(() => {
    if (locationId && !state.locationId) dispatch({ type: "chooseLocation", id: locationId });
  }, [locationId, state.locationId, dispatch]);

  useEffect(() => {
    if (!locationId) return;
    let live = true;
    api
      .GET("/v1/providers", { params: { query: { location_id: locationId, page_size: 200, ...(specialty ? { specialty } : {}) } } })
      .then(({ data }) => live && setProviders((data?.resources ?? []).filter((p) => !p.retired)));
    return () => {
      live = false;
    };
  }, [locationId, specialty]);

  const next = useNextFree(type.id, locationId, [null, ...providers.map((p) => p.id)]);
  const location = locations.find((l) => l.id === locationId);

  function nextText(id: string | null) {
    const found = next[id ?? ""];
    if (!found || found.loading) return t("where.checking");
    if (!found.slot || !location) return t("where.noneSoon");
    return t("where.next", { when: when(found.slot.start, location.time_zone) });
  }

  return (
    <form onSubmit={(e) => e.preventDefault()}>
      <StepHeading heading={heading} text={t("where.title")} />
      <fieldset className="choices">
        <legend>{t("where.location")}</legend>
        {locations.map((l) => (
          <label key={l.id} className="choice">
            <input type="radio" name="location" value={l.id} checked={locationId === l.id} onChange={() => dispatch({ type: "chooseLocation", id: l.id })} />
            <span className="choice-body">
              <span className="choice-title">{l.name}</span>
              <span className="meta">{[l.address.street, l.address.city].filter(Boolean).join(", ")}</span>
            </span>
          </label>
        ))}
      </fieldset>
      {locationId && (
        <fieldset className="choices">
          <legend>{t("where.provider")}</legend>
          <label className="choice">
            <input type="radio" name="provider" value="" checked={state.providerId === null} onChange={() => dispatch({ type: "chooseProvider", id: null })} />
            <span className="choice-body">
              <span className="choice-title">{t("where.anyone")}</span>
              <span className="meta">{t("where.anyoneHint")}</span>
              <span className="next">{nextText(null)}</span>
            </span>
          </label>
          {providers.map((p) => {
            const languages = p.languages ?? [];
            return (
              <label key={p.id} className="choice">
                <input type="radio" name="provider" value={p.id} checked={state.providerId === p.id} onChange={() => dispatch({ type: "chooseProvider", id: p.id })} />
                <span className="choice-body">
                  <span className="choice-title">{p.name}</span>
                  {p.specialties.length > 0 && <span className="meta">{t("where.specialty", { name: p.specialties.map(readable).join(", ") })}</span>}
                  {languages.length > 0 && <span className="meta">{t("where.languages", { names: languages.map((code) => languageName(code)).join(", ") })}</span>}
                  <span className="next">{nextText(p.id)}</span>
                </span>
              </label>
            );
          })}
        </fieldset>
      )}
      <Actions onBack={() => dispatch({ type: "back" })} onContinue={() => dispatch({ type: "continue" })} canContinue={locationId !== null} />
    </form>
  );
}

function languageName(code: string): string {
  try {
    return new Intl.DisplayNames([document.documentElement.lang || "en"], { type: "language" }).of(code) ?? code;
  } catch {
    return code;
  }
}

export function WhenStep({ heading, type, location, state, dispatch, busy, onHold }: { heading: Heading; type: AppointmentType; location: Location; state: FlowState; dispatch: Dispatch<Action>; busy: boolean; onHold: (slot: Slot) => void }) {
  const { t, when } = useI18n();
  const today = localDate(new Date(), location.time_zone);
  const days = daysFrom(today, DAYS_SHOWN);
  const [slots, setSlots] = useState<Slot[] | null>(null);
  const day = state.day;
  const timesId = useId();

  // The first day shown is the first with a free time.
  useEffect(() => {
    if (day) return;
    api
      .GET("/v1/slots/next-available", {
        params: { query: { appointment_type_id: type.id, location_id: [location.id], provider_id: state.providerId ? [state.providerId] : [], within_days: 60 } },
      })
      .then(({ data }) => dispatch({ type: "chooseDay", day: data?.earliest?.local_start.slice(0, 10) ?? today }));
  }, [day, type.id, location.id, state.providerId, today, dispatch]);

  useEffect(() => {
    if (!day) return;
    let live = true;
    setSlots(null);
    api
      .GET("/v1/slots", {
        params: { query: { appointment_type_id: type.id, location_id: [location.id], from: day, to: day, provider_id: state.providerId ? [state.providerId] : [], page_size: 200 } },
      })
      .then(({ data }) => live && setSlots(distinctTimes(data?.slots ?? [])));
    return () => {
      live = false;
    };
  }, [day, type.id, location.id, state.providerId, state.taken]);

  const shownDays = day && !days.includes(day) ? [...days, day] : days;
  return (
    <div>
      <StepHeading heading={heading} text={t("when.title")} />
      {state.expired && <Notice text={t("when.expired")} kind="info" />}
      {state.taken && (
        <div className="notice info" role="alert">
          <p>
            {state.taken.alternatives.length > 0
              ? t("when.taken", { time: when(state.taken.slot.start, location.time_zone, "time") })
              : t("when.noAlternatives")}
          </p>
          {state.taken.alternatives.length > 0 && (
            <ul className="times" aria-label={t("when.taken", { time: when(state.taken.slot.start, location.time_zone, "time") })}>
              {state.taken.alternatives.map((slot) => (
                <li key={slot.start}>
                  <button type="button" className="time" data-start={slot.start} disabled={busy} onClick={() => onHold(slot)}>
                    {when(slot.start, location.time_zone)}
                  </button>
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
      <fieldset className="days">
        <legend>{t("when.day")}</legend>
        <div className="day-row">
          {shownDays.map((d) => (
            <label key={d} className="day">
              <input type="radio" name="day" value={d} checked={d === day} onChange={() => dispatch({ type: "chooseDay", day: d })} />
              <span>{dayLabel(d, when)}</span>
            </label>
          ))}
        </div>
      </fieldset>
      {day && (
        <section aria-labelledby={timesId} aria-busy={slots === null || busy}>
          <h2 id={timesId}>{t("when.times", { day: when(`${day}T12:00:00Z`, "UTC", "day") })}</h2>
          {slots === null ? (
            <p role="status">{t("app.loading")}</p>
          ) : slots.length === 0 ? (
            <p>{t("when.noTimes")}</p>
          ) : (
            <ul className="times" aria-labelledby={timesId}>
              {slots.map((slot) => (
                <li key={slot.start}>
                  <button type="button" className="time" data-start={slot.start} disabled={busy} onClick={() => onHold(slot)}>
                    {when(slot.start, location.time_zone, "time")}
                  </button>
                </li>
              ))}
            </ul>
          )}
          {busy && <p role="status">{t("when.holding")}</p>}
        </section>
      )}
      <Actions onBack={() => dispatch({ type: "back" })} />
    </div>
  );
}

function dayLabel(day: string, when: I18n["when"]): string {
  // The date itself, named at noon UTC: the same calendar day in every zone a clinic is in.
  return when(`${day}T12:00:00Z`, "UTC", "day");
}

export function HoldTimer({ hold, timeZone, onExpired }: { hold: Hold; timeZone: string; onExpired: () => void }) {
  const { t, when } = useI18n();
  const [now, setNow] = useState(Date.now());
  const left = secondsLeft(hold.expiresAt, now);
  useEffect(() => {
    const timer = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(timer);
  }, []);
  useEffect(() => {
    if (left === 0) onExpired();
  }, [left, onExpired]);
  const minutes = Math.ceil(left / 60);
  return (
    <div className="hold">
      <p aria-hidden="true">{t("hold.left", { time: when(hold.slot.start, timeZone), left: clock(left) })}</p>
      {/* Screen readers hear the time left once a minute, not every second. */}
      <p className="visually-hidden" role="status">
        {t("hold.left", { time: when(hold.slot.start, timeZone), left: t("hold.minutes", { n: minutes }) })}
      </p>
    </div>
  );
}

export function DetailsStep({ heading, patient, initial, hold, onExpired, onBack, onSave }: { heading: Heading; patient: Patient | null; initial: Details | null; hold: Hold; onExpired: () => void; onBack: () => void; onSave: (details: Details) => void }) {
  const { t } = useI18n();
  const contact = (system: string) => patient?.contacts.find((c) => c.system === system)?.value ?? "";
  const [details, setDetails] = useState<Details>(
    initial ?? {
      email: contact("email"),
      phone: contact("sms") || contact("phone"),
      channel: patient?.preferred_channel === "sms" ? "sms" : "email",
    },
  );
  const [touched, setTouched] = useState<Record<string, boolean>>({});
  const [tried, setTried] = useState(false);
  const problems = detailsProblems(details);
  const shown = (field: "email" | "phone") => (tried || touched[field] ? problems[field] : undefined);

  function submit() {
    setTried(true);
    if (Object.keys(problems).length > 0) {
      document.getElementById(problems.email ? "email" : "phone")?.focus();
      return;
    }
    onSave({ ...details, email: details.email.trim(), phone: normalisedPhone(details.phone) });
  }

  return (
    <form
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        submit();
      }}
    >
      <StepHeading heading={heading} text={t("details.title")} />
      <HoldTimer hold={hold} timeZone={hold.slot.time_zone} onExpired={onExpired} />
      <p>{t("details.lead")}</p>
      {tried && Object.keys(problems).length > 0 && <Notice text={t("details.fix")} />}
      {patient && (
        <p>
          <span className="label">{t("details.name")}: </span>
          {patient.given_name} {patient.family_name}
        </p>
      )}
      <Field id="email" label={t("details.email")} type="email" autoComplete="email" value={details.email} problem={shown("email") && t(shown("email")!)} onChange={(email) => setDetails({ ...details, email })} onBlur={() => setTouched({ ...touched, email: true })} />
      <Field id="phone" label={t("details.phone")} hint={t("details.phoneHint")} type="tel" autoComplete="tel" value={details.phone} problem={shown("phone") && t(shown("phone")!)} onChange={(phone) => setDetails({ ...details, phone })} onBlur={() => setTouched({ ...touched, phone: true })} />
      <fieldset className="choices compact">
        <legend>{t("details.remind")}</legend>
        {(["email", "sms"] as const).map((channel) => (
          <label key={channel} className="choice">
            <input type="radio" name="channel" value={channel} checked={details.channel === channel} onChange={() => setDetails({ ...details, channel })} />
            <span className="choice-body">{t(channel === "email" ? "details.byEmail" : "details.bySms")}</span>
          </label>
        ))}
      </fieldset>
      <div className="actions">
        <button type="button" className="secondary" onClick={onBack}>
          {t("flow.back")}
        </button>
        <button type="submit" className="primary">
          {t("flow.continue")}
        </button>
      </div>
    </form>
  );
}

function Field({ id, label, hint, type, autoComplete, value, problem, onChange, onBlur }: { id: string; label: string; hint?: string; type: string; autoComplete: string; value: string; problem?: string | false | undefined; onChange: (value: string) => void; onBlur: () => void }) {
  const described = [hint ? `${id}-hint` : "", problem ? `${id}-problem` : ""].filter(Boolean).join(" ");
  return (
    <div className={`field${problem ? " invalid" : ""}`}>
      <label htmlFor={id}>{label}</label>
      {hint && (
        <span id={`${id}-hint`} className="hint">
          {hint}
        </span>
      )}
      <input id={id} name={id} type={type} autoComplete={autoComplete} value={value} aria-invalid={problem ? true : undefined} aria-describedby={described || undefined} onChange={(e) => onChange(e.target.value)} onBlur={onBlur} />
      {problem && (
        <span id={`${id}-problem`} className="problem">
          {problem}
        </span>
      )}
    </div>
  );
}

export function ReviewStep({ heading, type, location, hold, details, busy, onExpired, onBack, onBook }: { heading: Heading; type: AppointmentType; location: Location; hold: Hold; details: Details | null; busy: boolean; onExpired: () => void; onBack: () => void; onBook: () => void }) {
  const { t, language } = useI18n();
  const text = typeText(type, language);
  return (
    <div>
      <StepHeading heading={heading} text={t("review.title")} />
      <HoldTimer hold={hold} timeZone={location.time_zone} onExpired={onExpired} />
      <Summary type={type} location={location} slot={hold.slot} />
      {details && (
        <dl className="summary">
          <dt>{t("review.remind")}</dt>
          <dd>{details.channel === "email" ? `${t("details.byEmail")}: ${details.email}` : `${t("details.bySms")}: ${details.phone}`}</dd>
        </dl>
      )}
      {text.preparation && <p className="hint">{t("need.preparation", { text: text.preparation })}</p>}
      {(type.cancellation_cutoff_minutes ?? 0) > 0 && <p>{t("review.cancelRule", { hours: Math.round((type.cancellation_cutoff_minutes ?? 0) / 60) })}</p>}
      <div className="actions">
        <button type="button" className="secondary" onClick={onBack} disabled={busy}>
          {t("flow.back")}
        </button>
        <button type="button" className="primary" onClick={onBook} disabled={busy}>
          {busy ? t("review.booking") : t("review.book")}
        </button>
      </div>
    </div>
  );
}

export function Summary({ type, location, slot }: { type: AppointmentType; location: Location; slot: Slot }) {
  const { t, language, when } = useI18n();
  // Who the patient sees: the resources of the type's provider roles (not rooms or devices).
  const roles = new Set((type.steps ?? []).flatMap((s) => s.requirements.filter((r) => r.category === "provider").map((r) => r.role)));
  const people = Object.entries(slot.resource_names ?? {})
    .filter(([role, name]) => roles.has(role) && name)
    .map(([, name]) => name as string);
  return (
    <dl className="summary">
      <dt>{t("review.what")}</dt>
      <dd>
        {typeText(type, language).name} ({t("need.minutes", { minutes: type.duration_minutes })})
      </dd>
      <dt>{t("review.when")}</dt>
      <dd>{when(slot.start, location.time_zone)}</dd>
      <dt>{t("review.where")}</dt>
      <dd>{[location.name, location.address.street, location.address.city].filter(Boolean).join(", ")}</dd>
      {people.length > 0 && (
        <>
          <dt>{t("review.with")}</dt>
          <dd>{people.join(", ")}</dd>
        </>
      )}
    </dl>
  );
}

export function DoneStep({ heading, type, location, slot, onAgain }: { heading: Heading; type: AppointmentType; location: Location; slot: Slot; onAgain: () => void }) {
  const { t } = useI18n();
  return (
    <div>
      <StepHeading heading={heading} text={t("done.title")} />
      <Notice text={t("done.lead")} kind="success" />
      <Summary type={type} location={location} slot={slot} />
      <div className="actions">
        <a className="button secondary" href="/app/appointments" onClick={follow}>
          {t("done.mine")}
        </a>
        <button type="button" className="secondary" onClick={onAgain}>
          {t("done.another")}
        </button>
      </div>
    </div>
  );
}
