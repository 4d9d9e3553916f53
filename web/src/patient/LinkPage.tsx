// Where a message's link lands (a reminder's confirm, cancel or move; a waitlist offer's
// accept): no sign-in, the link is the key. Opening it shows what it would do; the one
// button acts, once.
import { useEffect, useRef, useState } from "react";
import { api, problemOf, slugOf } from "../api/client";
import { Notice } from "../App";
import { useI18n } from "../i18n/i18n";
import type { MessageKey } from "../i18n/messages";

type Action = "confirm" | "cancel" | "reschedule" | "accept";
interface Shown {
  action: Action;
  visit: string;
  choices?: { value: string; label: string }[] | null;
}

const REFUSED: Record<string, MessageKey> = {
  "link-used": "link.used",
  "link-expired": "link.expired",
};

export function LinkPage({ token }: { token: string }) {
  const { t } = useI18n();
  const [shown, setShown] = useState<Shown | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [start, setStart] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState(false);
  const heading = useRef<HTMLHeadingElement>(null);

  function refused(error: unknown, response: Response) {
    const found = problemOf(error, response);
    const known = REFUSED[slugOf(found)];
    // A refusal (4xx) is written for the patient (a cut-off passed, ...); a failure is not.
    setProblem(known ? t(known) : found.status < 500 && found.status > 0 ? found.detail : t("error.generic", { detail: found.detail }));
  }

  useEffect(() => {
    api.GET("/v1/links/{token}", { params: { path: { token } } }).then(({ data, error, response }) => {
      if (data) setShown(data as unknown as Shown);
      else refused(error, response);
    });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [token]);

  async function act() {
    setBusy(true);
    const { data, error, response } = await api.POST("/v1/links/{token}", {
      params: { path: { token } },
      body: start ? { start } : {},
    });
    setBusy(false);
    if (data) setDone(true);
    else refused(error, response);
    heading.current?.focus();
  }

  if (problem)
    return (
      <div>
        <h1 ref={heading} tabIndex={-1}>
          {t("link.problemTitle")}
        </h1>
        <Notice text={problem} />
        <a href="/app/">{t("link.signIn")}</a>
      </div>
    );
  if (!shown) return <p role="status">{t("app.loading")}</p>;
  const action = shown.action;
  const choices = shown.choices ?? [];
  return (
    <div>
      <h1 ref={heading} tabIndex={-1}>
        {t(`link.${action}.title` as MessageKey)}
      </h1>
      <p className="summary-line">{shown.visit}</p>
      {done ? (
        <>
          <Notice text={t(`link.${action}.done` as MessageKey)} kind="success" />
          <a href="/app/">{t("link.signIn")}</a>
        </>
      ) : action === "reschedule" && choices.length === 0 ? (
        <Notice text={t("link.noTimes")} kind="info" />
      ) : (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void act();
          }}
        >
          {action === "reschedule" && (
            <fieldset className="choices">
              <legend>{t("link.chooseTime")}</legend>
              {choices.map((c) => (
                <label key={c.value} className="choice">
                  <input type="radio" name="start" value={c.value} checked={start === c.value} onChange={() => setStart(c.value)} />
                  <span className="choice-body">{c.label}</span>
                </label>
              ))}
            </fieldset>
          )}
          <div className="actions">
            <button type="submit" className={action === "cancel" ? "danger" : "primary"} disabled={busy || (action === "reschedule" && !start)}>
              {t(`link.${action}.button` as MessageKey)}
            </button>
          </div>
        </form>
      )}
    </div>
  );
}
