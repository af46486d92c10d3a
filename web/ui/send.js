// Step 4: sign and send. The hub client (hubclient.js) solves the case puzzle when the hub asks
// for one (progress shown), seals the envelope once and keeps its bytes until the hub says
// yes, so "try again" after a failure sends the very same bytes: nothing is lost, and never a
// second case.
import { t } from "../i18n.js";
import { announce, button, h, para, screen } from "./dom.js";
import { plan } from "./files.js";
import { refreshStatus, saveRemembered } from "./casepage.js";

/** Most hashes in one request (the hub's default max_hashes_per_request). */
export const HASHES_PER_REQUEST = 1000;

/** Hub error codes a retry can cure (the same envelope again, later). */
const RETRY = new Set(["network", "timeout", "bad_response", "rate_limited", "review_queue_full", "database_unavailable",
  "unavailable", "internal_error", "puzzle_expired", "puzzle_invalid", "overloaded"]);

export async function startSending(ctx) {
  const state = ctx.state;
  const items = state.files.filter((f) => f.send.length);
  const { records, owners } = plan(items);
  const chunks = [];
  for (let at = 0; at < records.length; at += HASHES_PER_REQUEST) {
    chunks.push({ records: records.slice(at, at + HASHES_PER_REQUEST), owners: owners.slice(at, at + HASHES_PER_REQUEST) });
  }
  state.send = { items, chunks, done: 0, entries: new Map(), phase: "starting", progress: null, error: null, held: false };
  ctx.go("sending");
  await sendRemaining(ctx);
}

function fraction(p) {
  if (typeof p === "number") return p;
  if (p && Number.isFinite(p.done) && Number.isFinite(p.total) && p.total > 0) return p.done / p.total;
  if (p && Number.isFinite(p.fraction)) return p.fraction;
  return null;
}

async function sendRemaining(ctx) {
  const state = ctx.state;
  const s = state.send;
  s.error = null;
  s.phase = "sending";
  ctx.render();
  try {
    const { hub } = await ctx.modules("hub");
    state.session ??= new hub.CaseSession({ secret: state.case.secret, base: ctx.hubBase() });
    while (s.done < s.chunks.length) {
      const chunk = s.chunks[s.done];
      const answer = await state.session.submit(chunk.records, {
        onPuzzleProgress: (p) => {
          if (s.phase !== "puzzle") { s.phase = "puzzle"; ctx.render(); }
          s.progress = fraction(p);
          const bar = document.querySelector('[data-testid="send-progress"]');
          if (bar && s.progress !== null) bar.value = Math.round(100 * s.progress);
        },
      });
      if (s.phase === "puzzle") { s.phase = "sending"; ctx.render(); }
      answer.entries.forEach((entry, i) => {
        for (const owner of chunk.owners[i] ?? []) {
          if (!s.entries.has(owner)) s.entries.set(owner, []);
          s.entries.get(owner).push(entry.entry_id);
        }
      });
      if (answer.status === "held") s.held = true;
      s.done += 1;
    }
  } catch (err) {
    s.error = { code: err?.code ?? "failed", retry: err?.retryable ?? RETRY.has(err?.code) };
    s.phase = "failed";
    ctx.render({ focus: true });
    announce(t("send.failed.title"));
    return;
  }
  // Accepted: the chosen files become the case's sent files, each with its entry ids.
  for (const item of s.items) {
    state.sent.push({ id: item.id, label: item.name, kind: item.kind, thumb: item.thumb, entryIds: s.entries.get(item.id) ?? [] });
    item.thumb = null;
  }
  state.files = state.files.filter((f) => !s.items.includes(f));
  state.held = state.held || s.held;
  state.send = null;
  await saveRemembered(ctx);
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
        s.error.retry ? button(t("common.tryAgain"), () => sendRemaining(ctx), { testid: "send-retry", kind: "primary" }) : null,
        button(t("send.failed.back"), () => ctx.go("files"), { testid: "send-back" })));
  }
  const puzzle = s.phase === "puzzle";
  const bar = h("progress", { max: "100", testid: "send-progress", "aria-labelledby": "send-status" });
  if (puzzle && s.progress !== null) bar.value = Math.round(100 * s.progress);
  return screen("sending", t("send.title"),
    h("p", { id: "send-status", role: "status", testid: "send-status" }, puzzle ? t("send.puzzle") : t("send.sending")),
    bar,
    para(puzzle ? t("send.puzzle.why") : t("send.wait")),
    s.chunks.length > 1 ? para(t("send.parts", { done: s.done, count: s.chunks.length })) : null);
}
