// The signed-in user's access token, kept for this browser tab only (sessionStorage): it
// is gone when the tab closes, and another tab signs in on its own.
const KEY = "clinic.session";

interface Stored {
  token: string;
  expiresAt: number;
}

type Listener = () => void;
const listeners = new Set<Listener>();

function read(): Stored | null {
  try {
    const stored = JSON.parse(sessionStorage.getItem(KEY) ?? "null") as Stored | null;
    return stored && stored.expiresAt > Date.now() ? stored : null;
  } catch {
    return null;
  }
}

export const session = {
  token(): string | null {
    return read()?.token ?? null;
  },
  signedIn(): boolean {
    return read() !== null;
  },
  start(token: string, expiresInSeconds: number): void {
    const stored: Stored = { token, expiresAt: Date.now() + (expiresInSeconds - 30) * 1000 };
    sessionStorage.setItem(KEY, JSON.stringify(stored));
    listeners.forEach((l) => l());
  },
  expire(): void {
    if (sessionStorage.getItem(KEY) === null) return;
    sessionStorage.removeItem(KEY);
    listeners.forEach((l) => l());
  },
  subscribe(listener: Listener): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
};
