// Appointment types: what can be booked, for how long, what to prepare, whether patients book
// it online, and when its reminders go out.
import { useCallback, useEffect, useRef, useState } from "react";
import { api, problemOf, type AppointmentType, type Schemas } from "../api/client";
import { Notice } from "../App";
import { describedBy, Field } from "./Admin";
import { LIMITS, parseReminderPlan, reminderText, wholeHours } from "./model";
import { useAdminText } from "./text";

interface Draft {
  name: string;
  duration: string;
  specialty: string;
  preparation: string;
  bookable: boolean;
  noticeHours: string;
  cutoffHours: string;
  reminders: string;
}

const EMPTY: Draft = {
  name: "",
  duration: "20",
  specialty: "",
  preparation: "",
  bookable: true,
  noticeHours: "0",
  cutoffHours: "24",
  reminders: "1d, 2h",
};

function draftOf(type: AppointmentType): Draft {
  return {
    name: type.name,
    duration: String(type.duration_minutes),
    specialty: type.specialty ?? "",
    preparation: type.preparation ?? "",
    bookable: type.patient_bookable,
    noticeHours: String(Math.round((type.minimum_notice_minutes ?? 0) / 60)),
    cutoffHours: String(Math.round((type.cancellation_cutoff_minutes ?? 0) / 60)),
    reminders: reminderText((type.reminder_plan ?? []).map((r) => r.before_minutes)),
  };
}

type Problems = Partial<Record<keyof Draft, string>>;

export function AppointmentTypes() {
  const t = useAdminText();
  const [types, setTypes] = useState<AppointmentType[] | null>(null);
  const [editing, setEditing] = useState<AppointmentType | "new" | null>(null);
  const [news, setNews] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);

  const load = useCallback(async () => {
    const { data, error, response } = await api.GET("/v1/appointment-types", {
      params: { query: { page_size: 200, include_retired: true } },
    });
    if (!data) return setProblem(problemOf(error, response).detail);
    setTypes(data.appointment_types);
  }, []);
  useEffect(() => void load(), [load]);

  function saved(type: AppointmentType, created: boolean) {
    // The list is a projection and may trail the write by a moment: show the answer now.
    setTypes((all) => [type, ...(all ?? []).filter((x) => x.id !== type.id)].sort((a, b) => a.name.localeCompare(b.name)));
    setEditing(null);
    setNews(t(created ? "types.created" : "types.saved", { name: type.name }));
  }

  return (
    <section aria-labelledby="types-title">
      <h2 id="types-title" className="visually-hidden">
        {t("admin.types")}
      </h2>
      <p>{t("types.lead")}</p>
      {news && <Notice text={news} kind="success" />}
      {problem && <Notice text={problem} />}
      {editing ? (
        <TypeForm
          key={editing === "new" ? "new" : editing.id}
          type={editing === "new" ? null : editing}
          onCancel={() => setEditing(null)}
          onSaved={saved}
        />
      ) : (
        <button type="button" className="primary" onClick={() => (setNews(null), setEditing("new"))}>
          {t("types.new")}
        </button>
      )}
      {types && (
        <ul className="plain admin-list">
          {types.map((type) => (
            <li key={type.id} className="card">
              <p className="choice-title">
                {type.name} · {t("types.minutes", { minutes: type.duration_minutes })}
              </p>
              <p className="meta">
                {type.retired ? t("types.retired") : type.patient_bookable ? t("types.online") : t("types.staffOnly")}
                {type.specialty ? ` · ${type.specialty}` : ""} ·{" "}
                {type.reminder_plan?.length
                  ? t("types.remindersAt", { plan: reminderText(type.reminder_plan.map((r) => r.before_minutes)) })
                  : t("types.noReminders")}
              </p>
              {type.preparation && <p>{type.preparation}</p>}
              {!type.retired && (
                <button type="button" className="small" onClick={() => (setNews(null), setEditing(type))} aria-label={t("types.edit", { name: type.name })}>
                  {t("admin.edit")}
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function TypeForm({
  type,
  onCancel,
  onSaved,
}: {
  type: AppointmentType | null;
  onCancel: () => void;
  onSaved: (type: AppointmentType, created: boolean) => void;
}) {
  const t = useAdminText();
  const [draft, setDraft] = useState<Draft>(() => (type ? draftOf(type) : EMPTY));
  const [touched, setTouched] = useState<Set<keyof Draft>>(new Set());
  const [busy, setBusy] = useState(false);
  const [refusal, setRefusal] = useState<string | null>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), []); // once, when the form opens
  // A type of several steps keeps its steps: its length is changed step by step, not here.
  const oneStep = !type || (type.steps?.length ?? 0) <= 1;
  const before = type ? draftOf(type) : null;
  const changed = (field: keyof Draft) => !before || draft[field] !== before[field];

  const problems: Problems = {};
  if (!draft.name.trim()) problems.name = t("types.problemName");
  const duration = /^\d{1,4}$/.test(draft.duration.trim()) ? Number(draft.duration) : NaN;
  if (oneStep && changed("duration") && !(duration >= LIMITS.durationMinutes[0] && duration <= LIMITS.durationMinutes[1]))
    problems.duration = t("types.problemDuration");
  if (changed("noticeHours") && wholeHours(draft.noticeHours, LIMITS.noticeHours) === null) problems.noticeHours = t("types.problemNotice");
  if (changed("cutoffHours") && wholeHours(draft.cutoffHours, LIMITS.cutoffHours) === null) problems.cutoffHours = t("types.problemCutoff");
  const plan = parseReminderPlan(draft.reminders);
  if (plan === null) problems.reminders = t("types.problemReminders");
  const shown = (field: keyof Draft) => (touched.has(field) ? problems[field] : undefined);
  const set = (field: keyof Draft) => (value: string | boolean) => {
    setDraft((d) => ({ ...d, [field]: value }));
    setTouched((all) => new Set(all).add(field));
  };

  async function save(event: React.FormEvent) {
    event.preventDefault();
    setTouched(new Set(Object.keys(draft) as (keyof Draft)[]));
    if (Object.keys(problems).length > 0) return setRefusal(t("admin.fix"));
    setBusy(true);
    setRefusal(null);
    // What the admin changed, and only that: untouched minutes, channels and steps stay.
    const channels = new Map((type?.reminder_plan ?? []).map((r) => [r.before_minutes, r.channel]));
    const fields: Schemas["UpdateAppointmentTypeRequest"] = {
      ...(changed("name") ? { name: draft.name.trim() } : {}),
      ...(changed("specialty") ? { specialty: draft.specialty.trim() || null } : {}),
      ...(changed("preparation") ? { preparation: draft.preparation.trim() } : {}),
      ...(changed("bookable") ? { patient_bookable: draft.bookable } : {}),
      ...(changed("noticeHours") ? { minimum_notice_minutes: (wholeHours(draft.noticeHours, LIMITS.noticeHours) ?? 0) * 60 } : {}),
      ...(changed("cutoffHours") ? { cancellation_cutoff_minutes: (wholeHours(draft.cutoffHours, LIMITS.cutoffHours) ?? 0) * 60 } : {}),
      ...(changed("reminders")
        ? {
            reminder_plan: (plan ?? []).map((before_minutes) => {
              const channel = channels.get(before_minutes) as "sms" | "email" | null | undefined;
              return channel ? { before_minutes, channel } : { before_minutes };
            }),
          }
        : {}),
    };
    try {
      const answer = type
        ? await api.PATCH("/v1/appointment-types/{appointment_type_id}", {
            params: { path: { appointment_type_id: type.id } },
            body: {
              ...fields,
              ...(oneStep && type.steps?.[0] && changed("duration")
                ? { steps: [{ ...type.steps[0], duration_minutes: duration, requirements: type.steps[0].requirements.map((r) => ({ ...r })) }] }
                : {}),
            },
          })
        : await api.POST("/v1/appointment-types", {
            params: { header: { "Idempotency-Key": crypto.randomUUID() } },
            body: {
              ...fields,
              name: draft.name.trim(),
              steps: [
                {
                  name: draft.name.trim(),
                  duration_minutes: duration,
                  offset_minutes: 0,
                  requirements: [{ category: "provider", role: "physician", specialty: draft.specialty.trim() || null }],
                },
              ],
            },
          });
      if (answer.data) onSaved(answer.data as AppointmentType, !type);
      else setRefusal(problemOf(answer.error, answer.response).detail ?? null);
    } catch {
      setRefusal(t("admin.unreachable"));
    } finally {
      setBusy(false);
    }
  }

  const input = (field: keyof Draft, label: string, extra: React.InputHTMLAttributes<HTMLInputElement> = {}, hint?: string) => {
    const id = `type-${field}`;
    return (
      <Field id={id} label={label} hint={hint} problem={shown(field)}>
        <input
          id={id}
          type="text"
          value={String(draft[field])}
          onChange={(e) => set(field)(e.target.value)}
          aria-invalid={shown(field) ? true : undefined}
          aria-describedby={describedBy(id, Boolean(hint), shown(field))}
          {...extra}
        />
      </Field>
    );
  };

  return (
    <form className="card admin-form" onSubmit={save} noValidate aria-labelledby="type-form-title">
      <h3 id="type-form-title" tabIndex={-1} ref={heading}>
        {type ? t("types.edit", { name: type.name }) : t("types.new")}
      </h3>
      {refusal && <Notice text={refusal} />}
      {input("name", t("types.name"), { autoComplete: "off", maxLength: 200 })}
      {input("duration", t("types.duration"), { inputMode: "numeric", disabled: !oneStep }, oneStep ? undefined : t("types.durationSteps"))}
      {input("specialty", t("types.specialty"), { autoComplete: "off" }, t("types.specialtyHint"))}
      <Field id="type-preparation" label={t("types.preparation")}>
        <textarea
          id="type-preparation"
          rows={3}
          value={draft.preparation}
          maxLength={2000}
          onChange={(e) => set("preparation")(e.target.value)}
        />
      </Field>
      <label className="inline">
        <input type="checkbox" checked={draft.bookable} onChange={(e) => set("bookable")(e.target.checked)} />
        {t("types.bookable")}
      </label>
      {input("noticeHours", t("types.notice"), { inputMode: "numeric" }, t("types.noticeHint"))}
      {input("cutoffHours", t("types.cutoff"), { inputMode: "numeric" }, t("types.cutoffHint"))}
      {input("reminders", t("types.reminders"), { autoComplete: "off" }, t("types.remindersHint"))}
      <div className="actions">
        <button type="button" onClick={onCancel}>
          {t("admin.cancel")}
        </button>
        <button type="submit" className="primary" disabled={busy}>
          {busy ? t("admin.saving") : type ? t("admin.save") : t("types.create")}
        </button>
      </div>
    </form>
  );
}
