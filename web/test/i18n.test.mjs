// The page's catalogues: every language has every key, the same placeholders and plural
// tables; every key the page's code asks for exists; t() and pickLanguage() behave.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { LANGUAGES, pickLanguage, setCatalogue, t, useLanguage } from "../i18n.js";

const WEB = fileURLToPath(new URL("..", import.meta.url));
const load = (lang) => JSON.parse(readFileSync(join(WEB, "locales", `${lang}.json`), "utf8"));
const catalogues = Object.fromEntries(Object.keys(LANGUAGES).map((lang) => [lang, load(lang)]));
const en = catalogues.en;
const placeholders = (v) => [...new Set(JSON.stringify(v).match(/\{\w+\}/g) ?? [])].sort();
const code = [join(WEB, "app.js"), ...readdirSync(join(WEB, "ui")).map((f) => join(WEB, "ui", f))]
  .map((f) => readFileSync(f, "utf8")).join("\n");

test("every language has exactly the English keys, placeholders and plural forms", () => {
  for (const [lang, messages] of Object.entries(catalogues)) {
    assert.deepEqual(Object.keys(messages).sort(), Object.keys(en).sort(), lang);
    for (const [key, value] of Object.entries(en)) {
      const other = messages[key];
      assert.equal(typeof other, typeof value, `${lang} ${key}`);
      if (typeof value === "object") {
        assert.ok(other.other, `${lang} ${key} has an "other" form`);
        for (const category of new Intl.PluralRules(lang).resolvedOptions().pluralCategories) {
          if (lang !== "en" || category in value) assert.ok(category in other || category === "many" || category === "few", `${lang} ${key} ${category}`);
        }
      }
      // Urdu and Spanish may leave out {count} in a singular form; the set must be a subset.
      for (const p of placeholders(other)) assert.ok(placeholders(value).includes(p), `${lang} ${key} ${p}`);
      assert.ok(String(JSON.stringify(other)).trim().length > 2, `${lang} ${key} is empty`);
    }
  }
});

test("every key the page's code names exists in English", () => {
  const literal = [...code.matchAll(/\bt\("([\w.-]+)"/g)].map((m) => m[1]);
  assert.ok(literal.length > 150);
  for (const key of literal) assert.ok(key in en, key);
  const html = readFileSync(join(WEB, "index.html"), "utf8");
  for (const [, key] of html.matchAll(/data-i18n="([\w.-]+)"/g)) assert.ok(key in en, key);
  // Keys built at run time: the families the code composes.
  for (const s of ["in-log", "pending", "held", "withdrawn", "rejected", "failed", "unchecked"]) assert.ok(`case.state.${s}` in en, s);
  for (const k of ["image", "video", "file"]) assert.ok(`case.unnamed.${k}` in en, k);
  for (const r of ["flat-picture", "flat-video", "video-decode", "not-media", "empty", "too-large", "damaged", "heic", "tiff",
    "image-format", "video-format", "failed"]) {
    assert.ok(`why.${r}` in en && `todo.${r}` in en, r);
  }
  const known = code.match(/const known = \[([^\]]+)\]/)[1].match(/"(\w+)"/g).map((s) => s.slice(1, -1));
  for (const c of [...known, "other"]) assert.ok(`send.error.${c}` in en, c);
});

test("no person-facing text is written in the page's code", () => {
  // Text nodes come from t(): a quoted sentence (capital letter, words, space) in ui/ is a slip.
  for (const [, text] of code.matchAll(/h\("\w+", \{[^}]*\}, "([^"]{3,})"\)/g)) assert.fail(`literal text: ${text}`);
});

test("t() replaces placeholders, picks plural forms and falls back to English", async () => {
  for (const [lang, messages] of Object.entries(catalogues)) setCatalogue(lang, messages);
  await useLanguage("en");
  assert.equal(t("files.added", { count: 1 }), "1 file added.");
  assert.equal(t("files.added", { count: 3 }), "3 files added.");
  assert.equal(t("return.error.group", { group: 3 }), "Check group 3 of your recovery code: it seems to have a typo.");
  assert.equal(t("no.such.key"), "no.such.key");
  await useLanguage("es");
  assert.equal(t("files.added", { count: 1 }), "1 archivo añadido.");
  assert.equal(t("files.added", { count: 1000000 }), "1.000.000 archivos añadidos.");
  const partial = { ...catalogues.es };
  delete partial["start.new"];
  setCatalogue("es", partial);
  assert.equal(t("start.new"), en["start.new"]);
  await useLanguage("xx");
  assert.equal(t("start.title"), en["start.title"]);
});

test("pickLanguage takes the first language the page has", () => {
  assert.equal(pickLanguage(["fr-FR", "es-MX", "en"]), "es");
  assert.equal(pickLanguage(["ur-PK"]), "ur");
  assert.equal(pickLanguage(["de"]), "en");
  assert.equal(pickLanguage([]), "en");
  assert.equal(LANGUAGES.ur.dir, "rtl");
});
