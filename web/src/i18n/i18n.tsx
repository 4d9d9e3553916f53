// The chosen language, remembered in this browser (localStorage), first guessed from the
// browser's own; texts and dates in it.
import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from "react";
import { LANGUAGES, type Language, type MessageKey } from "./messages";

const STORED = "clinic.language";

export function initialLanguage(stored: string | null, preferred: readonly string[]): Language {
  if (stored && stored in LANGUAGES) return stored as Language;
  for (const tag of preferred) {
    const base = tag.toLowerCase().split("-")[0] ?? "";
    if (base in LANGUAGES) return base as Language;
  }
  return "en";
}

export function format(text: string, values: Record<string, string | number> = {}): string {
  return text.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in values ? String(values[name]) : whole,
  );
}

export interface I18n {
  language: Language;
  choose(language: Language): void;
  t(key: MessageKey, values?: Record<string, string | number>): string;
  /** A moment as the patient reads it, in the clinic's time zone. */
  when(iso: string, timeZone: string, style?: "long" | "time" | "day"): string;
}

const Context = createContext<I18n | null>(null);

function readStored(): string | null {
  try {
    return localStorage.getItem(STORED);
  } catch {
    return null;
  }
}

export function I18nProvider({ children }: { children: ReactNode }) {
  const [language, setLanguage] = useState<Language>(() =>
    initialLanguage(readStored(), navigator.languages ?? [navigator.language]),
  );
  const choose = useCallback((next: Language) => {
    try {
      localStorage.setItem(STORED, next);
    } catch {
      // private mode: chosen for this visit only
    }
    document.documentElement.lang = next;
    setLanguage(next);
  }, []);
  const value = useMemo<I18n>(() => {
    document.documentElement.lang = language;
    const messages = LANGUAGES[language];
    return {
      language,
      choose,
      t: (key, values) => format(messages[key], values),
      when: (iso, timeZone, style = "long") => {
        const options: Intl.DateTimeFormatOptions =
          style === "time"
            ? { hour: "numeric", minute: "2-digit" }
            : style === "day"
              ? { weekday: "long", day: "numeric", month: "long" }
              : { weekday: "long", day: "numeric", month: "long", hour: "numeric", minute: "2-digit" };
        return new Intl.DateTimeFormat(language, { ...options, timeZone }).format(new Date(iso));
      },
    };
  }, [language, choose]);
  return <Context.Provider value={value}>{children}</Context.Provider>;
}

export function useI18n(): I18n {
  const value = useContext(Context);
  if (!value) throw new Error("useI18n outside I18nProvider");
  return value;
}
