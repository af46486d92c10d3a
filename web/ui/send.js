// Step 4: sign and send. The hub client (hubclient.js) solves the case puzzle when the hub asks
// for one (progress shown), seals the envelope once and keeps its bytes until the hub says
// yes, so "try again" after a failure sends the very same bytes: nothing is lost, and never a
// second case.
import { t } from "../i18n.js";
import { announce, button, h, para, screen } from "./dom.js";
import { refreshStatus, saveRemembered } from "./casepage.js";

/** Hub error codes a retry can cure (the same envelope again, later). */
const RETRY = new Set(["network", "timeout", "bad_response", "rate_limited", "review_queue_full", "database_unavailable",
  "hub_stopping", "unavailable", "internal_error", "puzzle_expired", "puzzle_invalid", "overloaded"]);

/** The case's session with the hub (made once per case). */
export async function session(ctx) {
  const state = ctx.state;
  if (!state.session) {
    const { hub } = await ctx.modules("hub");
    state.session = new hub.CaseSession({ secret: state.case.secret, base: ctx.hubBase(), fetch: ctx.fetch });
  }
  return state.session;
}

function showPrep(prep) {
  const el = document.querySelector('[data-testid="case-prep"]');
  if (!el) return;
  el.dataset.state = prep.state;
  el.querySelector("span").textContent = prepText(prep);
  const bar = el.querySelector("progress");
  if (bar) bar.hidden = prep.state !== "working";
  if (bar && prep.progress !== null) bar.value = Math.round(100 * prep.progress);
}

export function prepText(prep) {
  return prep.state === "ready" ? t("prep.ready") : t("prep.working");
}

/** Solves the hub's case puzzle while the person chooses files (a new case only), so that
 * sending is quick; progress on the files screen. A failure here is not shown: sending
 * prepares again (and says what went wrong then). */
export async function prepareCase(ctx) {
  const state = ctx.state;
  if (state.prep) return;
  const prep = { state: "working", progress: 0, onProgress: null, done: null };
  state.prep = prep;
  let finished;
  prep.done = new Promise((resolve) => { finished = resolve; });
  try {
    const s = await session(ctx);
    if (typeof s.prepareNewCase === "function") {
      await s.prepareNewCase({
        onPuzzleProgress: (p) => {
          prep.progress = fraction(p);
          showPrep(prep);
          prep.onProgress?.(prep.progress);
        },
      });
    }
    prep.state = "ready";
    prep.progress = 1;
    showPrep(prep);
  } catch {
    state.prep = null;
    document.querySelector('[data-testid="case-prep"]')?.remove();
  } finally {
    finished();
  }
}

/** Sends exactly what the confirmation screen showed (state.plan). */
export async function startSending(ctx) {
  const state = ctx.state;
  if (!state.plan) return;
  state.send = { phase: "starting", progress: null, error: null };
  ctx.go("sending");
  await sendPlan(ctx);
}

/** Progress in 0..1. The puzzle reports tries done and the tries expected on average: the
 * chance of having solved it by now (1 - e^-done/expected) rises smoothly and never stalls. */
function fraction(p) {
  if (typeof p === "number") return p;
  if (p && Number.isFinite(p.done) && Number.isFinite(p.expected) && p.expected > 0) return 1 - Math.exp(-p.done / p.expected);
  if (p && Number.isFinite(p.done) && Number.isFinite(p.total) && p.total > 0) return p.done / p.total;
  if (p && Number.isFinite(p.fraction)) return p.fraction;
  return null;
}

async function sendPlan(ctx) {
  const state = ctx.state;
  const s = state.send;
  const { files, hashes, owners } = state.plan;
  s.error = null;
  s.phase = "sending";
  ctx.render();
  let answer;
  try {
    const caseSession = await session(ctx);
    // The puzzle still being solved in the background: wait for it here, with its progress,
    // rather than solve a second one.
    const prep = state.prep;
    if (prep?.state === "working" && prep.done) {
      s.phase = "puzzle";
      s.progress = prep.progress;
      ctx.render();
      prep.onProgress = (value) => {
        s.progress = value;
        const bar = document.querySelector('[data-testid="send-progress"]');
        if (bar) bar.value = Math.round(100 * value);
      };
      await prep.done;
      prep.onProgress = null;
      s.phase = "sending";
      ctx.render();
    }
    // The same files' records on a retry: the session re-sends the envelope it sealed first.
    answer = await caseSession.submit(files.map((f) => f.records), {
      onPuzzleProgress: (p) => {
        if (s.phase !== "puzzle") { s.phase = "puzzle"; ctx.render(); }
        s.progress = fraction(p);
        const bar = document.querySelector('[data-testid="send-progress"]');
        if (bar && s.progress !== null) bar.value = Math.round(100 * s.progress);
      },
    });
  } catch (err) {
    // A module that could not be loaded (hub unreachable) is worth trying again too.
    const code = typeof err?.code === "string" ? err.code : "modules";
    s.error = { code, retry: err?.retryable ?? (RETRY.has(code) || code === "modules") };
    s.phase = "failed";
    ctx.render({ focus: true });
    announce(t("send.failed.title"));
    return;
  }
  // Accepted: each chosen file becomes a sent file with its entry ids (the session's answer
  // names them per file, in the order given; else the entries follow the plan's hashes).
  const entries = new Map(files.map((f) => [f.id, []]));
  if (Array.isArray(answer.files) && answer.files.length === files.length) {
    answer.files.forEach((f, i) => entries.set(files[i].id, [...(f.entry_ids ?? [])]));
  } else if ((answer.entries ?? []).length === hashes.length) {
    answer.entries.forEach((entry, i) => {
      for (const owner of owners[i] ?? []) entries.get(owner)?.push(entry.entry_id);
    });
  }
  for (const item of files) {
    state.sent.push({ id: item.id, label: item.name, kind: item.kind, thumb: item.thumb, entryIds: entries.get(item.id) });
    item.thumb = null;
  }
  state.files = state.files.filter((f) => !files.includes(f));
  state.held = state.held || answer.status === "held" || Boolean(answer.held);
  state.send = null;
  state.plan = null;
  try {
    await saveRemembered(ctx);
  } catch {
    announce(t("device.failed"));
  }
  ctx.go("case");
  announce(t("send.done"));
  refreshStatus(ctx);
}

function errorMessage(code) {
  const known = ["network", "timeout", "rate_limited", "review_queue_full", "case_withdrawn", "low_quality", "denied_hash",
    "too_many_hashes", "case_limit", "puzzle_expired", "puzzle_invalid", "modules"];
  if (known.includes(code)) return t(`send.error.${code}`);
  return t("send.error.other");
}

export function sendingScreen(ctx) {
  const s = ctx.state.send;
  if (!s) return screen("sending", t("send.title"), para(t("send.nothing")));
  if (s.phase === "failed") {
    return screen("sending", t("send.failed.title"),
      h("div", { class: "panel warning", testid: "send-error", "data-code": s.error.code }, para(errorMessage(s.error.code)), para(t("send.failed.kept"))),
      h("div", { class: "actions" },
        s.error.retry ? button(t("common.tryAgain"), () => sendPlan(ctx), { testid: "send-retry", kind: "primary" }) : null,
        button(t("send.failed.back"), () => ctx.go("files"), { testid: "send-back" })));
  }
  const puzzle = s.phase === "puzzle";
  const bar = h("progress", { max: "100", testid: "send-progress", "aria-labelledby": "send-status" });
  if (puzzle && s.progress !== null) bar.value = Math.round(100 * s.progress);
  return screen("sending", t("send.title"),
    h("p", { id: "send-status", role: "status", testid: "send-status" }, puzzle ? t("send.puzzle") : t("send.sending")),
    bar,
    para(puzzle ? t("send.puzzle.why") : t("send.wait")));
}
