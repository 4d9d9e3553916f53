// KPIs with charts: utilisation, no-shows, cancellations and bookings per day, week or month,
// for every location or one. Each chart is drawn in SVG (no chart library to download) and
// said in words for screen readers; the table below gives every figure exactly.
import { useEffect, useState } from "react";
import { api, problemOf, type Location } from "../api/client";
import { Notice } from "../App";
import { useI18n } from "../i18n/i18n";
import { localDate } from "../patient/flow";
import { everyPeriod, weeksAround, scaleTop, series, type KpiBucket } from "./model";
import { useAdminText, type AdminKey } from "./text";

type Period = "day" | "week" | "month";

const CHARTS: { measure: string; key: AdminKey; ratio: boolean }[] = [
  { measure: "utilisation", key: "kpis.utilisation", ratio: true },
  { measure: "no_show_rate", key: "kpis.noShow", ratio: true },
  { measure: "cancellation_rate", key: "kpis.cancellation", ratio: true },
  { measure: "appointments_booked", key: "kpis.booked", ratio: false },
];

export function Kpis({ locations }: { locations: Location[] }) {
  const t = useAdminText();
  const zone = locations[0]?.time_zone ?? "UTC";
  const initial = weeksAround(localDate(new Date(), zone));
  const [from, setFrom] = useState(initial.from);
  const [to, setTo] = useState(initial.to);
  const [period, setPeriod] = useState<Period>("week");
  const [locationId, setLocationId] = useState<string>("");
  const [asked, setAsked] = useState({ from: initial.from, to: initial.to, period: "week" as Period, locationId: "" });
  const [buckets, setBuckets] = useState<KpiBucket[] | null>(null);
  const [problem, setProblem] = useState<string | null>(null);

  useEffect(() => {
    let current = true;
    setBuckets(null);
    const query = {
      from: asked.from,
      to: asked.to,
      period: asked.period,
      ...(asked.locationId ? { location_id: [asked.locationId] } : {}),
    };
    api.GET("/v1/kpis", { params: { query } }).then(({ data, error, response }) => {
      if (!current) return;
      if (!data) return setProblem(problemOf(error, response).detail);
      setProblem(null);
      setBuckets(everyPeriod(data.buckets as KpiBucket[], asked.from, asked.to, asked.period));
    });
    return () => {
      current = false;
    };
  }, [asked]);

  return (
    <section aria-labelledby="kpis-title">
      <h2 id="kpis-title" className="visually-hidden">
        {t("admin.kpis")}
      </h2>
      <p>{t("kpis.lead")}</p>
      <form
        className="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          setAsked({ from, to, period, locationId });
        }}
      >
        <label>
          {t("kpis.from")} <input type="date" value={from} onChange={(e) => setFrom(e.target.value)} required />
        </label>
        <label>
          {t("kpis.to")} <input type="date" value={to} min={from} onChange={(e) => setTo(e.target.value)} required />
        </label>
        <label>
          {t("kpis.period")}{" "}
          <select value={period} onChange={(e) => setPeriod(e.target.value as Period)}>
            {(["day", "week", "month"] as const).map((p) => (
              <option key={p} value={p}>
                {t(`kpis.period.${p}`)}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t("kpis.location")}{" "}
          <select value={locationId} onChange={(e) => setLocationId(e.target.value)}>
            <option value="">{t("kpis.all")}</option>
            {locations.map((l) => (
              <option key={l.id} value={l.id}>
                {l.name}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" className="small primary">
          {t("kpis.show")}
        </button>
      </form>
      {problem && <Notice text={problem} />}
      {!buckets && !problem && <p role="status">…</p>}
      {buckets && buckets.every((b) => b.working_minutes === undefined && b.appointments_booked === undefined) && <p>{t("kpis.none")}</p>}
      {buckets && buckets.length > 0 && (
        <>
          <div className="charts">
            {CHARTS.map((chart) => (
              <BarChart key={chart.measure} title={t(chart.key)} buckets={buckets} measure={chart.measure} ratio={chart.ratio} from={asked.from} to={asked.to} />
            ))}
          </div>
          <Figures buckets={buckets} />
        </>
      )}
    </section>
  );
}

function useFigure() {
  const { language } = useI18n();
  const t = useAdminText();
  return (value: number | null, ratio: boolean) =>
    value === null
      ? t("kpis.noValue")
      : new Intl.NumberFormat(language, ratio ? { style: "percent", maximumFractionDigits: 1 } : { maximumFractionDigits: 1 }).format(value);
}

const WIDTH = 320;
const HEIGHT = 160;
const AXIS = 40;

function BarChart({ title, buckets, measure, ratio, from, to }: { title: string; buckets: KpiBucket[]; measure: string; ratio: boolean; from: string; to: string }) {
  const t = useAdminText();
  const figure = useFigure();
  const points = series(buckets, measure);
  const top = scaleTop(
    points.map((p) => p.value),
    ratio,
  );
  const slot = (WIDTH - AXIS) / Math.max(points.length, 1);
  const bar = Math.max(2, Math.min(40, slot * 0.7));
  const said = t("kpis.chart", {
    measure: title,
    from,
    to,
    values: points.map((p) => `${p.label} ${figure(p.value, ratio)}`).join(", "),
  });
  return (
    <figure className="card chart">
      <figcaption>{title}</figcaption>
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT + 24}`} role="img" aria-label={said} preserveAspectRatio="xMidYMid meet">
        {[0, 0.5, 1].map((f) => (
          <g key={f}>
            <line x1={AXIS} x2={WIDTH} y1={HEIGHT - f * HEIGHT + 4} y2={HEIGHT - f * HEIGHT + 4} className="grid" />
            <text x={AXIS - 4} y={HEIGHT - f * HEIGHT + 8} textAnchor="end" className="tick">
              {figure(top * f, ratio)}
            </text>
          </g>
        ))}
        {points.map((p, n) => {
          const height = p.value === null ? 0 : (Math.min(p.value, top) / top) * HEIGHT;
          const x = AXIS + n * slot + (slot - bar) / 2;
          return (
            <g key={p.label}>
              {p.value === null ? (
                <text x={x + bar / 2} y={HEIGHT} textAnchor="middle" className="tick">
                  –
                </text>
              ) : (
                <rect x={x} y={HEIGHT - height + 4} width={bar} height={Math.max(height, 1)} className="bar">
                  <title>{`${p.label}: ${figure(p.value, ratio)}`}</title>
                </rect>
              )}
              {(points.length <= 8 || n % Math.ceil(points.length / 8) === 0) && (
                <text x={x + bar / 2} y={HEIGHT + 20} textAnchor="middle" className="tick">
                  {p.label.slice(5)}
                </text>
              )}
            </g>
          );
        })}
      </svg>
    </figure>
  );
}

function Figures({ buckets }: { buckets: KpiBucket[] }) {
  const t = useAdminText();
  const figure = useFigure();
  return (
    <div className="table-scroll" role="region" aria-labelledby="figures-title" tabIndex={0}>
      <table className="figures">
        <caption id="figures-title">{t("kpis.figures")}</caption>
        <thead>
          <tr>
            <th scope="col">{t("kpis.bucket")}</th>
            {CHARTS.map((c) => (
              <th key={c.measure} scope="col">
                {t(c.key)}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {buckets.map((b) => (
            <tr key={`${b.period_start}-${b.group ?? ""}`}>
              <th scope="row">{b.period_start}</th>
              {CHARTS.map((c) => {
                const value = b[c.measure];
                return <td key={c.measure}>{figure(typeof value === "number" ? value : null, c.ratio)}</td>;
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
