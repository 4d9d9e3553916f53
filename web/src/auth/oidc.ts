// Sign-in with OAuth2's authorization code flow and PKCE (RFC 7636), the way a browser app
// signs in at any OpenID Connect provider: the gateway's /app/config.json names the issuer
// and client id, the issuer's discovery document names its endpoints.
import { session } from "./session";

export interface WebConfig {
  issuer: string;
  client_id: string;
  scope: string;
}

interface Discovery {
  authorization_endpoint: string;
  token_endpoint: string;
}

const PENDING = "clinic.sign-in";
export const CALLBACK_PATH = "/app/callback";

export async function loadConfig(): Promise<WebConfig> {
  const answer = await fetch("/app/config.json", { cache: "no-cache" });
  if (!answer.ok) throw new Error(`the gateway did not give the app's configuration (${answer.status})`);
  return (await answer.json()) as WebConfig;
}

async function discover(issuer: string): Promise<Discovery> {
  const answer = await fetch(`${issuer}/.well-known/openid-configuration`);
  if (!answer.ok) throw new Error(`the identity provider did not answer (${answer.status})`);
  return (await answer.json()) as Discovery;
}

export function base64url(bytes: Uint8Array): string {
  let text = "";
  bytes.forEach((b) => (text += String.fromCharCode(b)));
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export async function challengeOf(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

function randomText(bytes: number): string {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** Leaves for the identity provider; it sends the browser back to /app/callback. */
export async function signIn(config: WebConfig, returnTo: string): Promise<void> {
  const { authorization_endpoint } = await discover(config.issuer);
  const verifier = randomText(48);
  const state = randomText(24);
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, returnTo }));
  const query = new URLSearchParams({
    response_type: "code",
    client_id: config.client_id,
    redirect_uri: window.location.origin + CALLBACK_PATH,
    scope: config.scope,
    state,
    code_challenge: await challengeOf(verifier),
    code_challenge_method: "S256",
  });
  window.location.assign(`${authorization_endpoint}?${query}`);
}

/** Redeems the code the provider sent back; answers where the user was going. */
export async function completeSignIn(config: WebConfig, address: URL): Promise<string> {
  const pending = JSON.parse(sessionStorage.getItem(PENDING) ?? "null") as
    | { verifier: string; state: string; returnTo: string }
    | null;
  sessionStorage.removeItem(PENDING);
  const code = address.searchParams.get("code");
  // Nothing the address says is shown unless this tab started the sign-in it answers.
  if (!pending || address.searchParams.get("state") !== pending.state) {
    throw new Error("this sign-in was not started here, or was already used");
  }
  const error = address.searchParams.get("error");
  if (error) throw new Error(error === "access_denied" ? "access was denied" : `the identity provider refused (${error.slice(0, 40)})`);
  if (!code) throw new Error("the identity provider sent no code");
  const { token_endpoint } = await discover(config.issuer);
  const answer = await fetch(token_endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: window.location.origin + CALLBACK_PATH,
      client_id: config.client_id,
      code_verifier: pending.verifier,
    }),
  });
  const body = (await answer.json()) as {
    access_token?: string;
    expires_in?: number;
    error_description?: string;
  };
  if (!answer.ok || !body.access_token) {
    throw new Error(body.error_description ?? `the sign-in failed (${answer.status})`);
  }
  session.start(body.access_token, body.expires_in ?? 3600);
  return pending.returnTo;
}
