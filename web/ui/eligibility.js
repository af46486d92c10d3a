// Step 1: who this is for. 18 or older in the pictures and in them; shared or threatened.
import { t } from "../i18n.js";
import { button, h, link, list, para, screen } from "./dom.js";

export const TAKE_IT_DOWN = "https://takeitdown.ncmec.org/";

function question(name, legend, options, answers) {
  return h("fieldset", { class: "question", testid: `elig-${name}` },
    h("legend", {}, legend),
    options.map(([value, label]) => h("label", { class: "choice" },
      h("input", { type: "radio", name, value, testid: `elig-${name}-${value}`, checked: answers[name] === value,
        onchange: () => { answers[name] = value; } }),
      h("span", {}, label))));
}

export function eligibilityScreen(ctx) {
  const answers = ctx.state.eligibility;
  const error = h("p", { class: "form-error", role: "alert", testid: "elig-error" });
  const form = h("form", { class: "form", novalidate: true },
    question("age", t("elig.age"), [["yes", t("elig.age.yes")], ["no", t("elig.age.no")]], answers),
    question("in", t("elig.in"), [["yes", t("elig.in.yes")], ["no", t("elig.in.no")]], answers),
    question("situation", t("elig.situation"), [["shared", t("elig.situation.shared")], ["threatened", t("elig.situation.threatened")]], answers),
    error,
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "button primary", testid: "elig-continue" }, t("common.continue")),
      button(t("common.back"), () => ctx.go("start"), { testid: "elig-back" })));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (answers.age === "no") return ctx.go("underage");
    if (answers.in === "no") return ctx.go("not-in-image");
    const missing = ["age", "in", "situation"].find((name) => !answers[name]);
    if (missing) {
      error.textContent = t("elig.missing");
      form.querySelector(`input[name="${missing}"]`).focus();
      return;
    }
    ctx.go(answers.situation === "threatened" ? "threat" : "new-case");
  });
  return screen("eligibility", t("elig.title"), para(t("elig.intro")), form);
}

export function underageScreen(ctx) {
  return screen("underage", t("underage.title"),
    para(t("underage.body")),
    h("p", { class: "big-link" }, link(t("underage.link"), TAKE_IT_DOWN, { testid: "takeitdown-link" })),
    para(t("underage.nothing")),
    para(t("underage.help")),
    h("div", { class: "actions" }, button(t("common.back"), () => ctx.go("eligibility"), { testid: "underage-back" })));
}

export function notInImageScreen(ctx) {
  return screen("not-in-image", t("notin.title"),
    para(t("notin.body")),
    para(t("notin.helper")),
    para(t("help.where")),
    helpLinks(),
    h("div", { class: "actions" }, button(t("common.back"), () => ctx.go("eligibility"), { testid: "notin-back" })));
}

export function helpLinks() {
  return list([
    link(t("help.link.ccri"), "https://cybercivilrights.org/"),
    link(t("help.link.rph"), "https://revengepornhelpline.org.uk/"),
    link(t("help.link.drf"), "https://digitalrightsfoundation.pk/"),
  ], { class: "help-links" });
}

export function threatScreen(ctx) {
  return screen("threat", t("threat.title"),
    para(t("threat.notalone")),
    list([t("threat.pay"), t("threat.keep"), t("threat.report"), t("threat.police")], { class: "points" }),
    para(t("help.where")),
    helpLinks(),
    para(t("threat.now")),
    h("div", { class: "actions" },
      button(t("common.continue"), () => ctx.go("new-case"), { testid: "threat-continue", kind: "primary" }),
      button(t("common.back"), () => ctx.go("eligibility"), { testid: "threat-back" })));
}
