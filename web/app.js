// The person's page: one screen at a time, in plain words, from eligibility to receipts.
// app.js holds the state and the screens' shared actions; ui/*.js draw the screens.
//
// Nothing leaves the page but fingerprints and signatures (through hubclient.js). The case
// secret lives in this page's memory only, unless the person chooses "remember on this
// device" (remember.js: encrypted in IndexedDB). Modules that are only needed later (case
// keys, the hub client, receipts) are imported when first needed, so the first screen is
// quick to show.

import { fingerprint } from "./fingerprint.js";
import { LANGUAGES, currentLanguage, pickLanguage, t, useLanguage } from "./i18n.js";
import { h } from "./ui/dom.js";
import { startScreen, returnScreen } from "./ui/start.js";
import { eligibilityScreen, notInImageScreen, threatScreen, underageScreen } from "./ui/eligibility.js";
import { newCaseScreen } from "./ui/newcase.js";
import { confirmScreen, filesScreen } from "./ui/files.js";
import { sendingScreen, startSending } from "./ui/send.js";
import { caseScreen } from "./ui/casepage.js";

const SCREENS = {
  start: startScreen,
  eligibility: eligibilityScreen,
  underage: underageScreen,
  "not-in-image": notInImageScreen,
  threat: threatScreen,
  "new-case": newCaseScreen,
  files: filesScreen,
  confirm: confirmScreen,
  sending: sendingScreen,
  case: caseScreen,
  return: returnScreen,
};

/** Everything the page knows; only in memory. */
export const state = {
  step: "start",
  eligibility: { age: null, inImage: null, situation: null },
  /** {secret, caseId, code}: code is dropped once the person says they have kept it. */
  case: null,
  session: null,
  /** Files chosen in this visit (ui/files.js items). */
  files: [],
  showPreviews: false,
  /** Files whose fingerprints the hub accepted: {id, label, kind, entryIds, thumb}. */
  sent: [],
  status: null,
  receipts: new Map(),
  rememberChosen: false,
  deviceHasRemembered: false,
  send: null,
  /** What the confirmation showed: {files, hashes, owners}; exactly this is sent. */
  plan: null,
  /** The case puzzle solved while files are chosen: {state: "working"|"ready", progress}. */
  prep: null,
  held: false,
  confirming: null,
  working: null,
  statusError: null,
  checkedAt: null,
};

/** The hub's address as the page sees it: "/" on the hub, "/<token>/" under ncii-client ui. */
export function hubBase() {
  return new URL("./", document.baseURI).href;
}

// String literals, so `ncii-audit page` follows (and checks) every module the page loads.
const LOADERS = {
  case: () => import("./case.js"),
  hub: () => import("./hubclient.js"),
  remember: () => import("./remember.js"),
  receipts: () => import("./receipts.js"),
  submission: () => import("./submission.js"),
};
const loadedModules = {};

/** The modules that make and use a case, loaded on first use: `modules()` all of them,
 * `modules("remember")` only those named. */
export async function modules(...names) {
  const wanted = names.length ? names : Object.keys(LOADERS);
  await Promise.all(wanted.map(async (name) => { loadedModules[name] ??= await LOADERS[name](); }));
  return loadedModules;
}

/** Draws the current screen; `focus` moves focus to its heading (a new step). */
export function render({ focus = false } = {}) {
  const main = document.getElementById("main");
  const draw = SCREENS[state.step] ?? startScreen;
  const active = document.activeElement;
  // A redraw in place keeps focus on the same control (by id, else by data-testid).
  const keep = !focus && active && active !== main && main.contains(active)
    ? (active.id ? `#${CSS.escape(active.id)}` : active.dataset.testid ? `[data-testid="${active.dataset.testid}"]` : null)
    : null;
  const node = draw(ctx);
  main.replaceChildren(node);
  document.title = `${node.querySelector("h2")?.textContent ?? ""} · ${t("page.site")}`;
  document.body.dataset.screen = state.step;
  if (focus) {
    node.querySelector("h2")?.focus();
    window.scrollTo(0, 0);
  } else if (keep) {
    main.querySelector(keep)?.focus();
  }
}

/** Goes to screen `step` and moves focus to its heading. */
export function go(step) {
  state.step = step;
  render({ focus: true });
}

/** Forgets the case held in this page (not what the hub holds) and goes back to the start. */
export function closeCase() {
  for (const item of state.files) if (item.thumb) URL.revokeObjectURL(item.thumb);
  for (const item of state.sent) if (item.thumb) URL.revokeObjectURL(item.thumb);
  Object.assign(state, {
    eligibility: { age: null, inImage: null, situation: null },
    case: null, session: null, files: [], sent: [], status: null, receipts: new Map(),
    rememberChosen: false, send: null, plan: null, prep: null, returnForm: null, held: false, confirming: null, working: null, statusError: null,
  });
  go("start");
}

/** fetch for the modules, called as a plain function (a browser refuses window.fetch called
 * as another object's method). */
const pageFetch = (...args) => globalThis.fetch(...args);

const ctx = { state, go, render, closeCase, modules, hubBase, fetch: pageFetch, startSending: () => startSending(ctx) };

function staticTexts() {
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  const select = document.getElementById("language");
  select.replaceChildren(...Object.entries(LANGUAGES).map(([code, { name }]) =>
    h("option", { value: code, lang: code, selected: code === currentLanguage() }, name)));
}

/** Whether leaving now would lose something: a recovery code not yet kept, files chosen but
 * not sent, or a submission not yet acknowledged. The browser then asks before leaving. */
function wouldLoseWork() {
  return Boolean(state.case?.code) || state.files.length > 0 || Boolean(state.send);
}

async function main() {
  window.addEventListener("beforeunload", (event) => {
    if (wouldLoseWork()) event.preventDefault();
  });
  try {
    await useLanguage(pickLanguage());
  } catch {
    // A catalogue the browser refused (its integrity did not match) or could not fetch:
    // the page still works, in English.
    await useLanguage("en");
  }
  staticTexts();
  document.getElementById("language").addEventListener("change", async (event) => {
    await useLanguage(event.target.value);
    staticTexts();
    render();
    document.getElementById("language").focus();
  });
  render();
  document.body.dataset.ready = "1";
  // Whether this device remembers a case (then the start screen offers to forget it).
  try {
    const { remember } = await modules("remember");
    state.deviceHasRemembered = await remember.hasRemembered();
  } catch {
    state.deviceHasRemembered = false;
  }
  if (state.deviceHasRemembered && (state.step === "start" || state.step === "return")) render();
  warmUp();
}

/** Fetches now, while the hub is reachable, everything the page needs later: the case modules
 * and the fingerprint Worker with its modules (an empty file is refused by the Worker at once,
 * which is all this asks of it). A person whose connection drops, or whose hub stops, after the
 * page loaded can still fingerprint, and "try again" needs nothing more from the hub. */
function warmUp() {
  modules().catch(() => {});
  fingerprint(new Blob([])).catch(() => {});
}

main();
