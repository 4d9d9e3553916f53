// Clinic admin: appointment types, schedules and their exceptions, and the KPIs with charts.
// Loaded only for clinic and organisation admins; every change goes through the gateway's
// /v1 like any other client's (audited there, as this admin).
import { useEffect, useState } from "react";
import { api, problemOf, type Location } from "../api/client";
import { Notice } from "../App";
import { follow, usePath } from "../router";
import { Kpis } from "./kpis";
import { Schedules } from "./schedules";
import { useAdminText, type AdminKey } from "./text";
import { AppointmentTypes } from "./types";

const SECTIONS: { path: string; key: AdminKey }[] = [
  { path: "/app/admin/types", key: "admin.types" },
  { path: "/app/admin/schedules", key: "admin.schedules" },
  { path: "/app/admin/kpis", key: "admin.kpis" },
];

export function Admin({ locationIds }: { locationIds: string[] | null }) {
  const t = useAdminText();
  const path = usePath();
  const [locations, setLocations] = useState<Location[] | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const section = SECTIONS.find((s) => path.startsWith(s.path)) ?? SECTIONS[0]!;

  useEffect(() => {
    api.GET("/v1/locations", { params: { query: { page_size: 200 } } }).then(({ data, error, response }) => {
      if (!data) return setProblem(problemOf(error, response).detail);
      setLocations(data.locations.filter((l) => !l.retired && (!locationIds || locationIds.includes(l.id))));
    });
  }, [locationIds]);

  return (
    <>
      <h1>
        {t("admin.title")}: {t(section.key)}
      </h1>
      <nav aria-label={t("admin.sections")} className="tabs">
        {SECTIONS.map((s) => (
          <a key={s.path} href={s.path} onClick={follow} aria-current={s === section ? "page" : undefined}>
            {t(s.key)}
          </a>
        ))}
      </nav>
      {problem && <Notice text={problem} />}
      {locations &&
        (section.path === "/app/admin/types" ? (
          <AppointmentTypes />
        ) : section.path === "/app/admin/schedules" ? (
          <Schedules locations={locations} />
        ) : (
          <Kpis locations={locations} />
        ))}
    </>
  );
}

/** A labelled input whose problem (if any) is said next to it and tied to it for screen
 * readers. */
export function Field({
  id,
  label,
  hint,
  problem,
  children,
}: {
  id: string;
  label: string;
  hint?: string;
  problem?: string | null;
  children: React.ReactNode;
}) {
  return (
    <div className={problem ? "field invalid" : "field"}>
      <label htmlFor={id}>{label}</label>
      {hint && (
        <span className="hint" id={`${id}-hint`}>
          {hint}
        </span>
      )}
      {children}
      {problem && (
        <span className="problem" id={`${id}-problem`} aria-live="polite">
          {problem}
        </span>
      )}
    </div>
  );
}

/** The aria-describedby of a Field's input: its hint and its problem. */
export function describedBy(id: string, hint: boolean, problem: string | null | undefined): string | undefined {
  const ids = [hint ? `${id}-hint` : null, problem ? `${id}-problem` : null].filter(Boolean);
  return ids.length > 0 ? ids.join(" ") : undefined;
}
