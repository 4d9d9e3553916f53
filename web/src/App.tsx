// The app's frame: sign-in, the header (what you can do, language, sign out) and the page
// the address names.
import { Suspense, lazy, useEffect, useState, useSyncExternalStore } from "react";
import { api, type Schemas } from "./api/client";
import { CALLBACK_PATH, completeSignIn, loadConfig, signIn, type WebConfig } from "./auth/oidc";
import { session } from "./auth/session";
import { useI18n } from "./i18n/i18n";
import { LANGUAGE_NAMES, type Language } from "./i18n/messages";
import { BookingFlow } from "./patient/BookingFlow";
import { LinkPage } from "./patient/LinkPage";
import { MyAppointments } from "./patient/MyAppointments";
import { follow, navigate, usePath } from "./router";

type Me = Schemas["MeView"];

// Staff pages load only for staff: a patient's phone never downloads them.
const Desk = lazy(() => import("./desk/Desk").then((m) => ({ default: m.Desk })));
const Admin = lazy(() => import("./admin/Admin").then((m) => ({ default: m.Admin })));
const STAFF = new Set(["front_desk", "provider", "clinic_admin", "org_admin"]);
const ADMINS = new Set(["clinic_admin", "org_admin"]);

export function App() {
  const { t } = useI18n();
  const path = usePath();
  const signedIn = useSyncExternalStore(session.subscribe, session.signedIn);
  const [config, setConfig] = useState<WebConfig | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [me, setMe] = useState<Me | null>(null);

  useEffect(() => {
    loadConfig().then(setConfig, (error: Error) => setProblem(error.message));
  }, []);

  useEffect(() => {
    if (!config || path !== CALLBACK_PATH) return;
    completeSignIn(config, new URL(window.location.href)).then(
      (returnTo) => navigate(returnTo, true),
      (error: Error) => {
        setProblem(t("app.signInFailed", { reason: error.message }));
        navigate("/app/", true);
      },
    );
  }, [config, path, t]);

  useEffect(() => {
    if (!signedIn) {
      setMe(null);
      return;
    }
    api.GET("/v1/me").then(({ data }) => setMe(data ?? null));
  }, [signedIn]);

  let page;
  const link = /^\/app\/links\/([A-Za-z0-9_-]+)$/.exec(path);
  if (link?.[1]) page = <LinkPage token={link[1]} />;
  else if (problem && !signedIn && !config) page = <Notice text={problem} />;
  else if (!config || path === CALLBACK_PATH) page = <p role="status">{t("app.signingIn")}</p>;
  else if (!signedIn) page = <SignIn config={config} failure={problem} />;
  else if (!me) page = <p role="status">{t("app.loading")}</p>;
  else if (STAFF.has(me.role))
    page = (
      <Suspense fallback={<p role="status">{t("app.loading")}</p>}>
        {ADMINS.has(me.role) && path.startsWith("/app/admin") ? (
          <Admin locationIds={me.location_ids ?? null} />
        ) : (
          <Desk locationIds={me.location_ids ?? null} />
        )}
      </Suspense>
    );
  else if (me.role !== "patient") page = <Notice text={t("app.staffOnly", { role: me.role })} />;
  else if (path.startsWith("/app/appointments")) page = <MyAppointments />;
  else page = <BookingFlow key={path} />;

  return (
    <>
      <a className="skip" href="#main">
        {t("app.skip")}
      </a>
      <Header me={me} />
      <main id="main" tabIndex={-1} className={me && STAFF.has(me.role) ? "wide" : undefined}>
        {page}
      </main>
    </>
  );
}

function Header({ me }: { me: Me | null }) {
  const { t, language, choose } = useI18n();
  const path = usePath();
  const patient = me?.role === "patient";
  const admin = me ? ADMINS.has(me.role) : false;
  const inAdmin = path.startsWith("/app/admin");
  return (
    <header className="top">
      <div className="brand">{t("app.name")}</div>
      {admin && (
        <nav aria-label={t("app.name")}>
          <a href="/app/" onClick={follow} aria-current={inAdmin ? undefined : "page"}>
            {t("nav.desk")}
          </a>
          <a href="/app/admin/types" onClick={follow} aria-current={inAdmin ? "page" : undefined}>
            {t("nav.admin")}
          </a>
        </nav>
      )}
      {patient && (
        <nav aria-label={t("app.name")}>
          <a href="/app/" onClick={follow} aria-current={path.startsWith("/app/appointments") ? undefined : "page"}>
            {t("nav.book")}
          </a>
          <a href="/app/appointments" onClick={follow} aria-current={path.startsWith("/app/appointments") ? "page" : undefined}>
            {t("nav.mine")}
          </a>
        </nav>
      )}
      <div className="tools">
        <label>
          <span className="visually-hidden">{t("app.language")}</span>
          <select value={language} onChange={(e) => choose(e.target.value as Language)} aria-label={t("app.language")}>
            {Object.entries(LANGUAGE_NAMES).map(([code, name]) => (
              <option key={code} value={code} lang={code}>
                {name}
              </option>
            ))}
          </select>
        </label>
        {me && (
          <button type="button" className="quiet" onClick={() => session.expire()}>
            {t("app.signOut")}
          </button>
        )}
      </div>
    </header>
  );
}

function SignIn({ config, failure }: { config: WebConfig; failure: string | null }) {
  const { t } = useI18n();
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(failure);
  return (
    <section className="card narrow" aria-labelledby="sign-in-title">
      <h1 id="sign-in-title">{t("app.signInTitle")}</h1>
      <p>{t("app.signInLead")}</p>
      {problem && <Notice text={problem} />}
      <button
        type="button"
        className="primary"
        disabled={busy}
        onClick={() => {
          setBusy(true);
          const returnTo = window.location.pathname.startsWith("/app/") ? window.location.pathname : "/app/";
          signIn(config, returnTo).catch(() => {
            setBusy(false);
            setProblem(t("app.unreachable"));
          });
        }}
      >
        {t("app.signIn")}
      </button>
    </section>
  );
}

export function Notice({ text, kind = "problem" }: { text: string; kind?: "problem" | "info" | "success" }) {
  return (
    <p className={`notice ${kind}`} role={kind === "problem" ? "alert" : "status"}>
      {text}
    </p>
  );
}
