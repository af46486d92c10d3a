// Step 2: the case is made here, in the page (case.js: the derivation of crypto/case.py). The
// recovery code is shown once, with copy, print and save-as-file, and the person says they
// have kept it before going on. The hub learns of the case only with the first fingerprints.
import { t } from "../i18n.js";
import { announce, button, h, para, screen } from "./dom.js";
import { prepareCase } from "./send.js";

async function makeCase(ctx) {
  try {
    const { case: keys } = await ctx.modules("case");
    const secret = keys.newCaseSecret();
    const { caseId } = keys.deriveCase(secret);
    ctx.state.case = { secret, caseId, code: keys.encodeRecoveryCode(secret) };
    ctx.state.session = null;
  } catch {
    ctx.state.case = { failed: true };
  }
  ctx.render({ focus: true });
}

/** The text the person copies or saves: their case number and recovery code, and where. */
function keepText(ctx) {
  const { caseId, code } = ctx.state.case;
  return [t("code.file.title"), "", `${t("code.caseId")}: ${caseId}`, `${t("code.code")}: ${code}`,
    `${t("code.file.where")}: ${new URL("./", document.baseURI).href}`, "", t("code.file.warning"), ""].join("\n");
}

function saveAsFile(ctx) {
  const blob = new Blob([keepText(ctx)], { type: "text/plain;charset=utf-8" });
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: t("code.file.name"), class: "visually-hidden" });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  announce(t("code.saved"));
}

async function copy(ctx, note) {
  try {
    await navigator.clipboard.writeText(keepText(ctx));
    note.textContent = t("code.copied");
  } catch {
    // No clipboard (a page not on https, or refused): select the code so the person can copy it.
    const code = document.querySelector('[data-testid="recovery-code"]');
    window.getSelection().selectAllChildren(code);
    note.textContent = t("code.copy.failed");
  }
}

export function newCaseScreen(ctx) {
  const c = ctx.state.case;
  if (!c) {
    makeCase(ctx);
    return screen("new-case", t("code.making"), h("p", { role: "status" }, t("code.making.body")));
  }
  if (c.failed) {
    return screen("new-case", t("code.failed.title"), para(t("code.failed.body")),
      h("div", { class: "actions" }, button(t("common.tryAgain"), () => { ctx.state.case = null; ctx.render({ focus: true }); }, { testid: "code-retry", kind: "primary" })));
  }
  if (!c.code) {
    // Shown once: after "I have kept it" the page does not show it again.
    return screen("new-case", t("code.title"), para(t("code.gone")),
      h("div", { class: "actions" }, button(t("common.continue"), () => ctx.go("files"), { testid: "code-continue", kind: "primary" })));
  }
  const note = h("p", { class: "note", role: "status", testid: "code-note" });
  const kept = h("input", { type: "checkbox", id: "code-kept", testid: "code-kept", "aria-describedby": "code-kept-error" });
  const error = h("p", { class: "field-error", id: "code-kept-error", testid: "code-kept-error" });
  return screen("new-case", t("code.title"),
    para(t("code.intro")),
    h("div", { class: "code-card print-area", testid: "code-card" },
      h("p", { class: "print-only" }, t("code.file.title")),
      h("dl", {},
        h("dt", {}, t("code.caseId")), h("dd", { class: "mono", testid: "case-id", dir: "ltr" }, c.caseId),
        h("dt", {}, t("code.code")), h("dd", { class: "mono code", testid: "recovery-code", dir: "ltr" }, c.code)),
      h("p", { class: "print-only" }, t("code.file.warning"))),
    para(t("code.why"), { class: "important" }),
    h("div", { class: "actions" },
      button(t("code.copy"), () => copy(ctx, note), { testid: "code-copy" }),
      button(t("code.print"), () => window.print(), { testid: "code-print" }),
      button(t("code.save"), () => saveAsFile(ctx), { testid: "code-save" })),
    note,
    h("div", { class: "field check" }, kept, h("label", { for: "code-kept" }, t("code.kept")), error),
    h("div", { class: "actions" },
      button(t("common.continue"), () => {
        if (!kept.checked) {
          error.textContent = t("code.kept.missing");
          kept.setAttribute("aria-invalid", "true");
          kept.focus();
          return;
        }
        c.code = null;
        ctx.go("files");
        prepareCase(ctx);
      }, { testid: "code-continue", kind: "primary" })));
}
