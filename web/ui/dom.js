// Small DOM helpers shared by the screens: build elements, headings that take focus, the
// polite live region. No innerHTML anywhere: every text is set as text.

/** h("button", {class, testid, onclick, ...attrs}, ...children): an element. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "testid") el.dataset.testid = value;
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "checked" || key === "disabled" || key === "hidden" || key === "multiple") el[key] = Boolean(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child);
  }
  return el;
}

/** A screen: <section data-step=name> whose first child is its heading (focused on arrival). */
export function screen(name, title, ...children) {
  return h("section", { class: "screen", "data-step": name, "aria-labelledby": `h-${name}` },
    h("h2", { id: `h-${name}`, tabindex: "-1", class: "screen-heading", testid: "step-heading" }, title),
    ...children);
}

export function para(text, attrs = {}) {
  return h("p", attrs, text);
}

export function button(text, onclick, { testid, kind = "secondary", ...attrs } = {}) {
  return h("button", { type: "button", class: `button ${kind}`, testid, onclick, ...attrs }, text);
}

export function link(text, href, attrs = {}) {
  // Links to other sites open in this tab with no referrer: nothing about this page goes along.
  return h("a", { href, rel: "noopener noreferrer", ...attrs }, text);
}

export function list(items, attrs = {}) {
  return h("ul", attrs, items.map((item) => h("li", {}, item)));
}

/** Says `text` through the page's polite live region (once, even if it repeats). */
export function announce(text) {
  const region = document.getElementById("announce");
  if (!region) return;
  region.textContent = "";
  setTimeout(() => { region.textContent = text; }, 30);
}
