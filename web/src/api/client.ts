// The one way the app reaches the platform: the gateway's /v1, typed from its OpenAPI
// document (src/api/schema.d.ts is generated from tests/contract/openapi/gateway.json at
// build time, so a breaking change of the API breaks this build).
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";
import { session } from "../auth/session";

export type Schemas = components["schemas"];
export type Slot = Schemas["SlotView"];
export type AppointmentType = Schemas["AppointmentTypeView"];
export type Location = Schemas["LocationView"];
export type Resource = Schemas["ResourceView"];
export type Appointment = Schemas["AppointmentView"];
export type PatientAppointment = Schemas["PatientAppointmentView"];
export type Patient = Schemas["PatientView"];
export type Problem = Schemas["Problem"];

export const api = createClient<paths>({ baseUrl: window.location.origin });

api.use({
  onRequest({ request }) {
    const token = session.token();
    if (token) request.headers.set("Authorization", `Bearer ${token}`);
    // Every POST needs a key; callers that may retry one intent pass their own.
    if (request.method === "POST" && !request.headers.has("Idempotency-Key")) {
      request.headers.set("Idempotency-Key", crypto.randomUUID());
    }
    return request;
  },
  onResponse({ response }) {
    if (response.status === 401) session.expire();
    return response;
  },
});

/** A problem+json answer, or one made up for a network failure. */
export function problemOf(error: unknown, response?: Response): Problem {
  if (error && typeof error === "object" && "status" in error && "type" in error) {
    return error as Problem;
  }
  return {
    type: "about:blank",
    title: "The platform could not be reached",
    status: response?.status ?? 0,
    detail: String(error ?? "no answer"),
  };
}

/** The problem type's slug: "slot-taken" of ".../problems/slot-taken". */
export function slugOf(problem: Problem): string {
  return problem.type.split("/").pop() ?? "";
}
