// ncii-client ui: the page. Files go only to the local process (same origin, 127.0.0.1);
// previews are drawn from local object URLs and never leave the browser.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const state = { files: [], results: [], objectUrls: [] };

  function say(text) { $("live").textContent = text; }
  function alertBox(text) {
    const box = $("alert");
    if (text) { box.textContent = text; box.hidden = false; } else { box.textContent = ""; box.hidden = true; }
  }
  function show(stepId) {
    for (const id of ["step-choose", "step-review", "step-case", "step-status"]) {
      $(id).hidden = id !== stepId;
    }
    const heading = $(stepId).querySelector("h2");
    if (heading) heading.focus();
  }
  function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }

  async function api(path, body) {
    let response;
    try {
      response = await fetch("api/" + path, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body || {}),
        credentials: "same-origin",
      });
    } catch (err) {
      throw new Error("The program on this computer is not answering. Is ncii-client ui still running?");
    }
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const message = data && data.error ? data.error.message : "Something went wrong. Try again.";
      const error = new Error(message);
      error.code = data && data.error ? data.error.code : "unexpected";
      throw error;
    }
    return data;
  }

  function releasePreviews() {
    for (const url of state.objectUrls) URL.revokeObjectURL(url);
    state.objectUrls = [];
  }

  function preview(file) {
    const isImage = file.type.startsWith("image/");
    const isVideo = file.type.startsWith("video/");
    if (isImage || isVideo) {
      const url = URL.createObjectURL(file);
      state.objectUrls.push(url);
      const el = document.createElement(isImage ? "img" : "video");
      el.className = "thumb";
      el.src = url;
      if (isImage) { el.alt = ""; } else { el.muted = true; el.preload = "metadata"; el.setAttribute("aria-hidden", "true"); }
      el.addEventListener("error", () => { el.replaceWith(placeholder(isVideo ? "video" : "no preview")); });
      return el;
    }
    return placeholder("no preview");
  }
  function placeholder(text) {
    const span = document.createElement("span");
    span.className = "thumb none";
    span.setAttribute("aria-hidden", "true");
    span.textContent = text;
    return span;
  }
  function row(file, detail, cls) {
    const li = document.createElement("li");
    li.appendChild(preview(file));
    const text = document.createElement("div");
    const name = document.createElement("div");
    name.className = "name";
    name.textContent = file.name;
    text.appendChild(name);
    if (detail) {
      const d = document.createElement("div");
      d.className = cls || "";
      d.textContent = detail;
      text.appendChild(d);
    }
    li.appendChild(text);
    return li;
  }

  // Step 1: choose
  $("files").addEventListener("change", () => {
    releasePreviews();
    state.files = Array.from($("files").files || []);
    const list = $("chosen");
    list.replaceChildren(...state.files.map((f) => row(f, "", "")));
    $("hash").disabled = state.files.length === 0;
    say(state.files.length ? plural(state.files.length, "file", "files") + " chosen. Nothing has been sent." : "");
  });

  $("hash").addEventListener("click", async () => {
    alertBox("");
    $("hash").disabled = true;
    await api("forget").catch(() => {});
    state.results = [];
    for (let i = 0; i < state.files.length; i++) {
      const file = state.files[i];
      say("Making fingerprints on this computer: file " + (i + 1) + " of " + state.files.length + "…");
      let result;
      try {
        const response = await fetch("api/files", {
          method: "POST",
          headers: { "Content-Type": "application/octet-stream" },
          body: file,
          credentials: "same-origin",
        });
        result = await response.json().catch(() => null);
        if (!response.ok) {
          const message = result && result.error ? result.error.message : "This file could not be read.";
          result = { id: null, fingerprints: 0, problem: "error", reason: message };
        }
      } catch (err) {
        result = { id: null, fingerprints: 0, problem: "error",
          reason: "The program on this computer did not answer. Is ncii-client ui still running?" };
      }
      state.results.push(result);
    }
    renderReview();
    $("hash").disabled = false;
  });

  // Step 2: review
  function renderReview() {
    const list = $("review");
    list.replaceChildren();
    let ready = 0, prints = 0, left = 0;
    state.files.forEach((file, i) => {
      const r = state.results[i];
      if (r.problem) {
        left++;
        list.appendChild(row(file, "Left out: " + r.reason, "excluded"));
      } else {
        ready++;
        prints += r.fingerprints;
        let detail = plural(r.fingerprints, "fingerprint", "fingerprints") + ", ready to send";
        if (r.kind === "video") detail += " (one of them covers " + plural(r.frames, "video frame", "video frames") + ")";
        list.appendChild(row(file, detail, "ok"));
      }
    });
    let summary = ready
      ? plural(prints, "fingerprint", "fingerprints") + " from " + plural(ready, "file", "files") + " are ready to send."
      : "No file can be sent.";
    if (left) summary += " " + plural(left, "file is", "files are") + " left out (see the reason beside each).";
    $("summary").textContent = summary;
    $("send").disabled = ready === 0;
    show("step-review");
    say("Fingerprints made. Nothing has been sent yet. " + summary);
  }

  $("restart").addEventListener("click", async () => {
    await api("forget").catch(() => {});
    releasePreviews();
    state.files = []; state.results = [];
    $("files").value = "";
    $("chosen").replaceChildren();
    $("hash").disabled = true;
    alertBox("");
    show("step-choose");
    say("Started again. Nothing was sent.");
  });

  async function send(newCase) {
    alertBox("");
    $("send").disabled = true;
    $("retry").disabled = true;
    say("Signing and sending the fingerprints (no pictures)…");
    const ids = state.results.filter((r) => !r.problem && r.id).map((r) => r.id);
    try {
      const answer = await api("submit", { files: ids, new_case: newCase });
      showCase(answer);
    } catch (err) {
      alertBox(err.message);
      say("");
    } finally {
      $("send").disabled = false;
      $("retry").disabled = false;
    }
  }
  $("send").addEventListener("click", () => send(true));
  $("retry").addEventListener("click", () => send(false));

  // Step 3: case id and recovery code
  function showCase(answer) {
    $("case-id").textContent = answer.case_id;
    $("status-case").textContent = answer.case_id;
    if (answer.recovery_code) {
      $("recovery-code").textContent = answer.recovery_code;
      $("written").checked = false;
      $("to-status").disabled = true;
    }
    if (answer.ok) {
      $("sent-note").textContent = "Sent: the service accepted " +
        plural(answer.sent, "fingerprint", "fingerprints") + ". No pictures were sent.";
      $("retry").hidden = true;
      releasePreviews();
      state.files = []; state.results = [];
      $("files").value = ""; $("chosen").replaceChildren();
    } else {
      $("sent-note").textContent = "Your case was created, but sending did not work yet: " +
        answer.error.message + " Nothing is lost; you can try again.";
      $("retry").hidden = false;
    }
    if (!$("step-case").hidden) { $("case-title").focus(); } else { show("step-case"); }
    say(answer.ok ? "Sent. Your case id and recovery code are shown." : "Not sent yet. " + answer.error.message);
  }
  $("written").addEventListener("change", () => { $("to-status").disabled = !$("written").checked; });
  $("to-status").addEventListener("click", () => {
    $("recovery-code").textContent = "(shown once: you wrote it down)";
    $("status").hidden = true;
    show("step-status");
  });

  // Step 4: status and withdrawal
  function renderStatus(s) {
    const box = $("status");
    const lines = [];
    if (s.withdrawn) {
      lines.push("This case is withdrawn. The service deleted its fingerprints; partner websites delete them when they next update.");
    } else {
      lines.push(plural(s.fingerprints - s.removed, "fingerprint is", "fingerprints are") + " active.");
      lines.push(plural(s.recorded, "is", "are") + " recorded in the public log, so anyone can check they were not changed later.");
      if (s.partners !== null && s.partners !== undefined) lines.push(plural(s.partners, "partner website has", "partner websites have") + " received them.");
      if (s.waiting) lines.push(plural(s.waiting, "is", "are") + " still waiting to be recorded (usually a few seconds).");
      if (s.held) lines.push(plural(s.held, "is", "are") + " held for review: the service keeps them safely, and a person who runs it checks how much was sent (never your pictures) before they are recorded and sent to partners. Nothing to do; check again later.");
      if (s.rejected) lines.push(plural(s.rejected, "was", "were") + " not accepted after review and deleted by the service. If this is a mistake, contact the helpline.");
    }
    if (s.removed) lines.push(plural(s.removed, "fingerprint was", "fingerprints were") + " withdrawn.");
    box.replaceChildren(...lines.map((t) => { const p = document.createElement("p"); p.textContent = t; return p; }));
    box.hidden = false;
    $("withdraw").disabled = s.withdrawn;
    say("Status updated. " + lines.join(" "));
  }
  $("check").addEventListener("click", async () => {
    alertBox("");
    say("Checking with the service…");
    try { renderStatus(await api("status")); } catch (err) { alertBox(err.message); say(""); }
  });
  $("withdraw").addEventListener("click", () => { $("confirm").hidden = false; $("withdraw-no").focus(); });
  $("withdraw-no").addEventListener("click", () => { $("confirm").hidden = true; $("withdraw").focus(); say("Nothing was withdrawn."); });
  $("withdraw-yes").addEventListener("click", async () => {
    alertBox("");
    $("confirm").hidden = true;
    say("Withdrawing…");
    try { renderStatus(await api("withdraw", { all: true })); $("check").focus(); }
    catch (err) { alertBox(err.message); say(""); }
  });
  $("new-case").addEventListener("click", () => { show("step-choose"); say("Choose more files. They will go into a new case."); });

  // Recovery
  $("recover-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    alertBox("");
    try {
      const answer = await api("recover", { code: $("code").value });
      $("code").value = "";
      $("status-case").textContent = answer.case_id;
      $("status").hidden = true;
      show("step-status");
      say("Case " + answer.case_id + " opened.");
    } catch (err) { alertBox(err.message); $("code").focus(); }
  });

  // The service address, for the review text.
  fetch("api/state", { credentials: "same-origin" }).then((r) => r.json()).then((s) => {
    if (s.hub) $("hub-name").textContent = s.hub;
    else alertBox("No service address was given, so fingerprints can be made but not sent. Ask your helpline for the address.");
  }).catch(() => {});
})();
