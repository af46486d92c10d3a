// The first screen (start a case, or come back to one) and the "I already have a case" form.
import { t } from "../i18n.js";
import { announce, button, h, list, para, screen } from "./dom.js";
import { openCase } from "./casepage.js";

export function forgetPanel(ctx) {
  if (!ctx.state.deviceHasRemembered) return null;
  return h("div", { class: "panel", testid: "remembered-panel" },
    para(t("device.remembered")),
    button(t("device.forget"), async () => {
      const { remember } = await ctx.modules("remember");
      await remember.forget();
      ctx.state.deviceHasRemembered = false;
      ctx.state.rememberChosen = false;
      ctx.render();
      // The button is gone: focus goes to the "remember" box (case screen) or the heading.
      (document.querySelector('[data-testid="remember-device"]') ?? document.querySelector("main h2"))?.focus();
      announce(t("device.forgotten"));
    }, { testid: "forget-device" }));
}

export function startScreen(ctx) {
  return screen("start", t("start.title"),
    para(t("start.intro")),
    list([t("start.point.device"), t("start.point.sent"), t("start.point.partners"), t("start.point.code")], { class: "points" }),
    h("div", { class: "actions" },
      button(t("start.new"), () => ctx.go("eligibility"), { testid: "start-new", kind: "primary" }),
      button(t("start.return"), () => ctx.go("return"), { testid: "start-return" })),
    forgetPanel(ctx));
}

/** Text field with its label and a place for its error (linked by aria-describedby). */
function field(id, label, hint, attrs) {
  return h("div", { class: "field" },
    h("label", { for: id }, label),
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null,
    h("input", { id, type: "text", autocomplete: "off", autocapitalize: "characters", spellcheck: "false",
      "aria-describedby": hint ? `${id}-hint ${id}-error` : `${id}-error`, ...attrs }),
    h("p", { class: "field-error", id: `${id}-error`, testid: `${attrs.testid}-error` }));
}

export function returnScreen(ctx) {
  // What was typed survives a redraw (a change of language), in memory only.
  const typed = (ctx.state.returnForm ??= { caseId: "", code: "" });
  const form = h("form", { class: "form", novalidate: true, testid: "return-form" },
    field("return-case-id", t("return.caseId"), t("return.caseId.hint"), { testid: "return-case-id", maxlength: "40", value: typed.caseId,
      oninput: (event) => { typed.caseId = event.target.value; } }),
    field("return-code", t("return.code"), t("return.code.hint"), { testid: "return-code", maxlength: "200", value: typed.code,
      oninput: (event) => { typed.code = event.target.value; } }),
    h("p", { class: "form-error", role: "alert", testid: "return-error" }),
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "button primary", testid: "return-open" }, t("return.open")),
      button(t("common.back"), () => ctx.go("start"), { testid: "return-back" })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const caseInput = form.querySelector("#return-case-id");
    const codeInput = form.querySelector("#return-code");
    for (const el of form.querySelectorAll(".field-error, .form-error")) el.textContent = "";
    for (const el of [caseInput, codeInput]) el.removeAttribute("aria-invalid");
    const problem = await openCase(ctx, caseInput.value, codeInput.value);
    if (!problem) {
      ctx.state.returnForm = null; // the code is not kept once the case is open
      return;
    }
    const target = problem.field === "case" ? caseInput : problem.field === "code" ? codeInput : null;
    if (target) {
      target.setAttribute("aria-invalid", "true");
      form.querySelector(`#${target.id}-error`).textContent = problem.message;
      target.focus();
    } else {
      form.querySelector(".form-error").textContent = problem.message;
    }
  });
  return screen("return", t("return.title"), para(t("return.intro")), form, forgetPanel(ctx));
}
