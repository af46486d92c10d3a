// A tiny message catalogue: every person-facing string of the page comes from
// locales/<lang>.json. t(key, params) looks a key up in the chosen language, then English;
// "{name}" is replaced by params.name; a value that is an object is a plural table chosen by
// params.count with Intl.PluralRules. No library: the page must stay small and auditable.

export const LANGUAGES = Object.freeze({
  en: { name: "English", dir: "ltr" },
  es: { name: "Español", dir: "ltr" },
  ur: { name: "اردو", dir: "rtl" },
});
export const DEFAULT_LANGUAGE = "en";

// String literals, so `ncii-audit page` sees (and checks) every catalogue the page can load.
const CATALOGUES = {
  en: new URL("./locales/en.json", import.meta.url),
  es: new URL("./locales/es.json", import.meta.url),
  ur: new URL("./locales/ur.json", import.meta.url),
};

const loaded = new Map();
let current = DEFAULT_LANGUAGE;

/** The first of the person's preferred languages the page has ("es-MX" -> "es"), else English. */
export function pickLanguage(preferred = globalThis.navigator?.languages ?? []) {
  for (const tag of preferred) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (Object.hasOwn(LANGUAGES, base)) return base;
  }
  return DEFAULT_LANGUAGE;
}

/** The Subresource Integrity of `url` if the hub's import map lists it (it lists modules;
 * a catalogue listed there is checked by the browser too). */
function integrityFor(url) {
  const map = globalThis.document?.querySelector('script[type="importmap"]');
  if (!map) return undefined;
  try {
    const table = JSON.parse(map.textContent).integrity ?? {};
    return table[url.pathname] ?? table[url.href];
  } catch {
    return undefined;
  }
}

async function fetchCatalogue(lang) {
  if (loaded.has(lang)) return loaded.get(lang);
  const url = CATALOGUES[lang];
  const integrity = integrityFor(url);
  const response = await fetch(url, integrity ? { integrity } : {});
  if (!response.ok) throw new Error(`catalogue ${lang}: HTTP ${response.status}`);
  const messages = await response.json();
  loaded.set(lang, messages);
  return messages;
}

/** Installs a catalogue given directly (Node tests, or a page that bundles one). */
export function setCatalogue(lang, messages) {
  loaded.set(lang, messages);
}

/** Loads `lang` (and English, the fallback), makes it current and sets <html lang dir>. */
export async function useLanguage(lang) {
  if (!Object.hasOwn(LANGUAGES, lang)) lang = DEFAULT_LANGUAGE;
  await fetchCatalogue(DEFAULT_LANGUAGE);
  if (lang !== DEFAULT_LANGUAGE) await fetchCatalogue(lang);
  current = lang;
  const root = globalThis.document?.documentElement;
  if (root) {
    root.lang = lang;
    root.dir = LANGUAGES[lang].dir;
  }
  return lang;
}

export function currentLanguage() {
  return current;
}

function lookup(lang, key) {
  const messages = loaded.get(lang);
  return messages && Object.hasOwn(messages, key) ? messages[key] : undefined;
}

/** The message `key` in the current language, with `{name}` replaced from `params`. */
export function t(key, params = {}) {
  let value = lookup(current, key) ?? lookup(DEFAULT_LANGUAGE, key);
  if (value === undefined) return key;
  if (typeof value === "object") {
    const category = new Intl.PluralRules(current).select(Number(params.count ?? 0));
    value = value[category] ?? value.other;
  }
  return value.replace(/\{(\w+)\}/g, (whole, name) => {
    if (!Object.hasOwn(params, name)) return whole;
    const v = params[name];
    return typeof v === "number" ? formatNumber(v) : String(v);
  });
}

export function formatNumber(n) {
  return new Intl.NumberFormat(current).format(n);
}

/** A file size in words the person knows (KB, MB, GB), in the current language's digits. */
export function formatBytes(bytes) {
  const units = [["gigabyte", 2 ** 30], ["megabyte", 2 ** 20], ["kilobyte", 2 ** 10]];
  for (const [unit, size] of units) {
    if (bytes >= size) {
      return new Intl.NumberFormat(current, { style: "unit", unit, unitDisplay: "short", maximumFractionDigits: 1 }).format(bytes / size);
    }
  }
  return new Intl.NumberFormat(current, { style: "unit", unit: "byte", unitDisplay: "narrow" }).format(bytes);
}
