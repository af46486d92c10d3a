// Steps 5 and 6: the case. Per file: in the public log (the receipt checked here, in the page:
// the checkpoint's signature against the log key the page ships with, the inclusion proof from
// tiles), waiting, held for review, withdrawn. Withdraw one file or everything; remember the
// case on this device (encrypted) or forget it; add more files; come back later.
import { t } from "../i18n.js";
import { announce, button, h, para, screen } from "./dom.js";
import { forgetPanel } from "./start.js";

const POLL_MS = 2000;
const POLL_ROUNDS = 60;
let pollTimer = null;
let pollRounds = 0;

function normaliseId(text) {
  return String(text).toUpperCase().replace(/[\s-]/g, "").replace(/O/g, "0").replace(/[IL]/g, "1");
}

function recoveryMessage(err) {
  if (err.group) return t("return.error.group", { group: err.group });
  if (err.code === "empty") return t("return.error.codeEmpty");
  if (err.code === "length") return t("return.error.length");
  return t("return.error.code");
}

function hubMessage(err) {
  if (err?.code === "unknown_case") return t("return.error.unknown");
  if (err?.code === "network" || err?.code === "timeout") return t("send.error.network");
  return t("send.error.other");
}

/** Opens a case from its number and recovery code; returns null, or {field, message}. */
export async function openCase(ctx, caseIdText, codeText) {
  let mods;
  try {
    mods = await ctx.modules("case", "hub");
  } catch {
    return { field: null, message: t("send.error.modules") };
  }
  const { case: keys, hub } = mods;
  if (!normaliseId(caseIdText)) return { field: "case", message: t("return.error.caseEmpty") };
  let secret;
  try {
    secret = keys.parseRecoveryCode(codeText);
  } catch (err) {
    if (err instanceof keys.RecoveryCodeError) return { field: "code", message: recoveryMessage(err) };
    throw err;
  }
  const { caseId } = keys.deriveCase(secret);
  if (normaliseId(caseIdText) !== normaliseId(caseId)) return { field: "case", message: t("return.error.mismatch") };
  const session = new hub.CaseSession({ secret, base: ctx.hubBase(), fetch: ctx.fetch });
  let status;
  try {
    status = await session.status();
  } catch (err) {
    return { field: null, message: hubMessage(err) };
  }
  const state = ctx.state;
  Object.assign(state, { case: { secret, caseId, code: null }, session, status, sent: [], receipts: new Map(), rememberChosen: false });
  if (state.deviceHasRemembered) {
    try {
      const { remember } = await ctx.modules("remember");
      const saved = await remember.recall(secret);
      if (saved?.files) {
        state.sent = saved.files.map((f, i) => ({ id: `r${i}`, label: f.label, kind: f.kind, entryIds: f.entryIds, thumb: null }));
        state.rememberChosen = true;
      }
    } catch {
      // Unreadable (another browser profile's, or damaged): the hub's list still shows.
    }
  }
  ctx.go("case");
  refreshStatus(ctx);
  return null;
}

/** Saves the case's file list on this device if the person chose to (else nothing). */
export async function saveRemembered(ctx) {
  const state = ctx.state;
  if (!state.rememberChosen || !state.case) return;
  const { remember } = await ctx.modules("remember");
  await remember.remember(state.case.secret, {
    files: state.sent.map((f) => ({ label: f.label, kind: f.kind, entryIds: f.entryIds })),
  });
  state.deviceHasRemembered = true;
}

/** Asks the hub for the case's status, checks receipts of what is in the log, and keeps
 * asking every few seconds while something is still waiting. */
export async function refreshStatus(ctx) {
  const state = ctx.state;
  clearTimeout(pollTimer);
  if (!state.session) return;
  state.statusError = null;
  try {
    const { receipts } = await ctx.modules("receipts");
    state.status = await state.session.status();
    const integrated = state.status.entries.filter((e) => e.state === "integrated" && !state.receipts.has(e.entry_id));
    if (integrated.length) {
      let logKey = "";
      try { logKey = receipts.logKeyFromPage(document); } catch { logKey = ""; }
      if (logKey) {
        const checked = await receipts.receiptsFor({ base: ctx.hubBase(), logKey, entries: integrated, fetch: ctx.fetch });
        for (const r of checked) if (r.state !== "pending") state.receipts.set(r.entry.entry_id, r.state);
      } else {
        for (const e of integrated) state.receipts.set(e.entry_id, "unchecked");
      }
    }
  } catch (err) {
    state.statusError = err?.code ?? "failed";
  }
  state.checkedAt = new Date();
  if (state.step !== "case") return;
  ctx.render();
  const waiting = rows(state).some((r) => r.state === "pending");
  if (waiting && pollRounds < POLL_ROUNDS && !state.statusError) {
    pollRounds += 1;
    pollTimer = setTimeout(() => refreshStatus(ctx), POLL_MS);
  } else {
    pollRounds = 0;
  }
}

function entryState(state, e) {
  if (!e) return "pending";
  if (e.withdrawn) return "withdrawn";
  if (e.state === "held") return "held";
  if (e.state === "rejected") return "rejected";
  if (e.state !== "integrated") return "pending";
  return state.receipts.get(e.entry_id) ?? "pending";
}

function combine(states) {
  if (!states.length) return "pending";
  if (states.every((s) => s === "withdrawn")) return "withdrawn";
  for (const s of ["rejected", "held", "failed", "pending"]) if (states.includes(s)) return s;
  if (states.includes("unchecked")) return "unchecked";
  return "in-log";
}

/** One row per file: the labelled ones this device knows, then what only the hub knows,
 * grouped as files are sent (a file's picture or video fingerprints, then its MD5 and SHA-256:
 * submission.js and client/plan.py, so a file ends at each SHA-256). */
export function rows(state) {
  const additions = (state.status?.entries ?? []).filter((e) => e.kind === "addition");
  const byId = new Map(additions.map((e) => [e.entry_id, e]));
  const out = [];
  const known = new Set();
  for (const f of state.sent) {
    for (const id of f.entryIds) known.add(id);
    const states = f.entryIds.map((id) => entryState(state, byId.get(id)));
    out.push({ key: `f${f.id}`, label: f.label, kind: f.kind, thumb: f.thumb, entryIds: f.entryIds, state: combine(states) });
  }
  const groups = [];
  const withdrawn = [];
  for (const e of additions) {
    if (known.has(e.entry_id)) continue;
    if (!e.hash) { withdrawn.push(e); continue; }
    if (!groups.length || groups.at(-1).closed) groups.push([]);
    groups.at(-1).push(e);
    if (e.hash.algorithm === "sha256") groups.at(-1).closed = true;
  }
  let n = 0;
  for (const g of groups) {
    n += 1;
    const algs = g.map((e) => e.hash.algorithm);
    const kind = algs.includes("pdq") ? "image" : algs.includes("vpdq") ? "video" : "file";
    out.push({ key: `h${g[0].entry_id}`, label: t(`case.unnamed.${kind}`, { n }), kind, entryIds: g.map((e) => e.entry_id),
      state: combine(g.map((e) => entryState(state, e))), unnamed: true });
  }
  if (withdrawn.length) {
    out.push({ key: "withdrawn", label: t("case.withdrawnOthers", { count: withdrawn.length }), kind: "file",
      entryIds: withdrawn.map((e) => e.entry_id), state: "withdrawn", unnamed: true });
  }
  return out;
}

async function withdraw(ctx, entryIds, what) {
  const state = ctx.state;
  state.confirming = null;
  state.working = what;
  ctx.render();
  try {
    await state.session.withdraw(entryIds);
    state.working = null;
    announce(what === "all" ? t("withdraw.all.done") : t("withdraw.done"));
  } catch (err) {
    state.working = null;
    state.statusError = err?.code ?? "failed";
    ctx.render();
    return;
  }
  await refreshStatus(ctx);
  document.querySelector('[data-testid="case-files"]')?.focus();
}

function stateText(s) {
  return t(`case.state.${s}`);
}

function rowItem(ctx, row) {
  const state = ctx.state;
  const confirming = state.confirming === row.key;
  const canWithdraw = row.state !== "withdrawn" && row.state !== "rejected" && !state.status?.withdrawn;
  const thumb = row.thumb && row.kind === "image"
    ? h("img", { class: `thumb${state.showPreviews ? "" : " blurred"}`, src: row.thumb, alt: "" })
    : h("span", { class: "thumb placeholder", "aria-hidden": "true" });
  return h("li", { class: "file", testid: "case-file", "data-state": row.state },
    thumb,
    h("div", { class: "file-text" },
      h("p", { class: "file-name" }, h("bdi", {}, row.label)),
      h("p", { class: `file-status status-${row.state}`, testid: "case-file-status" }, stateText(row.state)),
      confirming ? h("div", { class: "confirm", role: "group", "aria-label": t("withdraw.confirm.title") },
        para(t("withdraw.confirm")),
        h("div", { class: "actions" },
          button(t("withdraw.yes"), () => withdraw(ctx, row.entryIds.filter((id) => id), row.key),
            { testid: "withdraw-confirm", kind: "danger", id: `withdraw-yes-${row.key}` }),
          button(t("common.cancel"), () => { state.confirming = null; ctx.render(); document.getElementById(`withdraw-${row.key}`)?.focus(); },
            { testid: "withdraw-cancel", id: `withdraw-no-${row.key}` }))) : null),
    canWithdraw && !confirming
      ? button(t("withdraw.one"), () => { state.confirming = row.key; ctx.render(); document.getElementById(`withdraw-yes-${row.key}`)?.focus(); },
        { testid: "withdraw-file", id: `withdraw-${row.key}`, "aria-label": t("withdraw.one.label", { name: row.label }) })
      : null);
}

export function caseScreen(ctx) {
  const state = ctx.state;
  const all = rows(state);
  const inLog = all.filter((r) => r.state === "in-log").length;
  const live = all.filter((r) => r.state !== "withdrawn" && r.state !== "rejected").length;
  const confirmingAll = state.confirming === "all";
  const withdrawnCase = Boolean(state.status?.withdrawn);
  const remember = h("input", { type: "checkbox", id: "remember-device", testid: "remember-device", checked: state.rememberChosen,
    "aria-describedby": "remember-hint",
    onchange: async (event) => {
      state.rememberChosen = event.target.checked;
      try {
        if (state.rememberChosen) {
          await saveRemembered(ctx);
          announce(t("device.saved"));
        } else {
          const { remember: r } = await ctx.modules("remember");
          await r.forget();
          state.deviceHasRemembered = false;
          announce(t("device.forgotten"));
        }
      } catch {
        state.rememberChosen = !state.rememberChosen;
        announce(t("device.failed"));
      }
      ctx.render();
    } });
  return screen("case", t("case.title"),
    h("p", {}, t("code.caseId"), ": ", h("span", { class: "mono", testid: "case-number", dir: "ltr" }, state.case?.caseId ?? "")),
    state.held ? para(t("case.held"), { class: "panel note", testid: "case-held" }) : null,
    withdrawnCase ? para(t("case.withdrawn"), { class: "panel note", testid: "case-withdrawn" }) : null,
    live ? para(t("case.receipts")) : null,
    // Always present (a live region must exist before it speaks); empty when nothing is live.
    h("p", { class: "summary", role: "status", testid: "case-summary" },
      state.working ? t("case.working") : live ? t("case.summary", { done: inLog, count: live }) : ""),
    state.statusError ? para(state.statusError === "unknown_case" ? t("case.error.unknown") : t("case.error"), { class: "panel warning", role: "alert", testid: "case-error" }) : null,
    all.length
      ? h("ul", { class: "file-list", testid: "case-files", tabindex: "-1", "aria-label": t("case.list.label") }, all.map((row) => rowItem(ctx, row)))
      : para(t("case.empty"), { testid: "case-files" }),
    h("div", { class: "actions" },
      button(t("case.refresh"), () => refreshStatus(ctx), { testid: "status-refresh" }),
      withdrawnCase ? null : button(t("case.addMore"), () => ctx.go("files"), { testid: "add-more" })),
    h("div", { class: "panel" },
      h("div", { class: "field check" }, remember, h("label", { for: "remember-device" }, t("device.remember"))),
      para(t("device.remember.hint"), { id: "remember-hint", class: "hint" })),
    forgetPanel(ctx),
    withdrawnCase ? null : h("div", { class: "panel danger-zone" },
      h("h3", {}, t("withdraw.all.title")),
      para(t("withdraw.all.body")),
      confirmingAll
        ? h("div", { class: "actions" },
          button(t("withdraw.all.yes"), () => withdraw(ctx, "all", "all"), { testid: "withdraw-all-confirm", kind: "danger", id: "withdraw-all-yes" }),
          button(t("common.cancel"), () => { state.confirming = null; ctx.render(); document.getElementById("withdraw-all")?.focus(); }, { testid: "withdraw-all-cancel" }))
        : button(t("withdraw.all"), () => { state.confirming = "all"; ctx.render(); document.getElementById("withdraw-all-yes")?.focus(); },
          { testid: "withdraw-all", kind: "danger", id: "withdraw-all" })),
    h("div", { class: "actions" }, button(t("case.close"), () => ctx.closeCase(), { testid: "close-case" })),
    para(t("case.close.hint"), { class: "hint" }));
}
