// Drives web/hubclient.js's CaseSession against a real hub for tests/web/test_web_case_session.py.
// stdin: {"base", "secret", "steps": [...], "pauseDir", "dropAnswers": n, "attempts"}; stdout:
// {"results": [...]} (one per step). Steps:
//   {"do":"submit","files":[[records]],"limits":{...}, "pauseAfterFirst": "name"}
//   {"do":"prepare"}  {"do":"status"}   {"do":"withdraw","entries":[ids] | "all"}
//   {"do":"receipts"} (once every entry is in the log: web/receipts.js over the status answer)
//   {"do":"pause","name"}  (writes pauseDir/name.ready, waits for pauseDir/name.go: the test
//                           stops or restarts the hub meanwhile)
//   {"do":"newSession"}    (a fresh CaseSession of the same secret takes over the pending
//                           envelopes, as after a page reload with "remember on this device")
// A step that throws gives {"error": {name, code, status, retryable}} and the run goes on.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fromHex, toHex } from "../../web/case.js";
import { CaseSession, HubError } from "../../web/hubclient.js";
import { receiptsFor } from "../../web/receipts.js";
import { DEFAULT_LIMITS } from "../../web/submission.js";

const request = JSON.parse(readFileSync(0, "utf8"));
const secret = fromHex(request.secret);

async function pause(name) {
  writeFileSync(join(request.pauseDir, `${name}.ready`), "");
  while (!existsSync(join(request.pauseDir, `${name}.go`))) await new Promise((r) => setTimeout(r, 50));
}

// The network as the page sees it: every request is recorded (method, path, size, puzzle header
// present); answers can be "lost" after the hub handled them, and a pause can follow the first
// acknowledged submission.
const seen = [];
let dropAnswers = request.dropAnswers ?? 0;
let pauseAfterAck = null;
async function fetchThroughNetwork(url, init) {
  const path = new URL(url).pathname;
  const headers = init.headers ?? {};
  seen.push({ method: init.method, path, bytes: init.body ? createHash("sha256").update(init.body).digest("hex") : null, puzzle: "NCII-Case-Puzzle" in headers });
  const response = await fetch(url, init);
  if (init.method === "POST" && path === "/v1/submissions" && response.status === 202) {
    if (dropAnswers > 0) {
      dropAnswers -= 1;
      await response.arrayBuffer();
      throw new TypeError("fetch failed (the answer was lost on the way back)");
    }
    if (pauseAfterAck) {
      const name = pauseAfterAck;
      pauseAfterAck = null;
      const body = new Uint8Array(await response.arrayBuffer());
      await pause(name);
      return new Response(body, { status: response.status, headers: response.headers });
    }
  }
  return response;
}

const options = (limits) => ({
  secret,
  base: request.base,
  fetch: fetchThroughNetwork,
  attempts: request.attempts ?? 2,
  maxWaitMs: 2000,
  limits: limits ? { ...DEFAULT_LIMITS, ...limits } : DEFAULT_LIMITS,
});

let session = new CaseSession(options(request.limits));
const results = [];
for (const step of request.steps) {
  const progress = [];
  try {
    if (step.do === "submit") {
      pauseAfterAck = step.pauseAfterFirst ?? null;
      const answer = await session.submit(step.files, { onPuzzleProgress: (p) => progress.push(p.done) });
      results.push({ answer, progress, pending: session.pendingSubmission()?.length ?? 0 });
    } else if (step.do === "prepare") {
      const answer = await session.prepareNewCase({ onPuzzleProgress: (p) => progress.push(p.done) });
      results.push({ answer, progress });
    } else if (step.do === "receipts") {
      // Wait until the log includes every entry, then check receipts in the page's way
      // (web/receipts.js) from this session's status answer. The log key comes from /v1/log
      // here; the page reads it from its <meta name="ncii-log-key">.
      const { verifier_key: logKey } = await (await fetch(request.base + "v1/log")).json();
      let status;
      for (let i = 0; i < 200; i++) {
        status = await session.status();
        if (status.entries.every((e) => e.state === "integrated")) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const receipts = await receiptsFor({ base: request.base, logKey, entries: status.entries });
      results.push({ answer: receipts.map((r) => ({ state: r.state, problem: r.problem ?? null })) });
    } else if (step.do === "status") {
      results.push({ answer: await session.status() });
    } else if (step.do === "withdraw") {
      results.push({ answer: await session.withdraw(step.entries) });
    } else if (step.do === "pause") {
      await pause(step.name);
      results.push({});
    } else if (step.do === "newSession") {
      const kept = session.pendingSubmission();
      session = new CaseSession(options(request.limits));
      session.restorePending(kept);
      results.push({ restored: kept?.length ?? 0, kept: (kept ?? []).map(toHex) });
    } else {
      throw new Error(`unknown step ${step.do}`);
    }
  } catch (err) {
    if (!(err instanceof HubError)) throw err;
    results.push({
      error: { name: err.name, code: err.code, status: err.status, retryable: err.retryable },
      progress,
      pending: session.pendingSubmission()?.length ?? 0,
    });
  }
}
process.stdout.write(JSON.stringify({ results, caseId: session.caseId, seen }));
