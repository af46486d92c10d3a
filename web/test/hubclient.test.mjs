// web/hubclient.js against a misbehaving hub: a local HTTP server (node:http) that answers too
// much, too deep, too slowly, with redirects, Retry-After and errors. The session against a real
// hub (SQLite and PostgreSQL, puzzle, kills and restarts) is tests/web/test_web_case_session.py.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, test } from "node:test";
import { CaseSession, HubError } from "../hubclient.js";

let server;
let base;
const log = [];
let handler = () => {};

before(async () => {
  server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      log.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks) });
      handler(req, res, log.length);
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${server.address().port}/prefix/`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

const secret = new Uint8Array(16).fill(3);
const session = (extra = {}) => new CaseSession({ secret, base, attempts: 3, maxWaitMs: 2000, timeoutMs: 2000, ...extra });
const json = (res, status, value, headers = {}) => {
  res.writeHead(status, { "Content-Type": "application/json", ...headers });
  res.end(typeof value === "string" ? value : JSON.stringify(value));
};
const refuse = (res, status, code, headers = {}) => json(res, status, { error: { code, message: "HUB-SAYS-THIS" } }, headers);

async function rejects(promise, check) {
  await assert.rejects(promise, (err) => err instanceof HubError && check(err));
}

test("requests go to relative paths under base, signed, with no credentials", async () => {
  log.length = 0;
  const s = session();
  handler = (req, res) => json(res, 200, { v: 1, case_id: s.caseId, withdrawn: false, checkpoint_size: 0, entries: [] });
  const status = await s.status();
  assert.equal(status.case_id, s.caseId);
  assert.equal(log[0].url, "/prefix/v1/status");
  assert.equal(log[0].headers["content-type"], "application/vnd.ncii.envelope");
  assert.equal(log[0].headers.cookie, undefined);
  assert.equal(log[0].body.subarray(0, 4).toString(), "NCEV");
});

test("an answer larger than its cap is not read", async () => {
  const s = session();
  handler = (req, res) => {
    res.writeHead(200, { "Content-Type": "application/json" });
    const chunk = Buffer.alloc(1 << 20, 0x20);
    let sent = 0;
    const more = () => {
      while (sent < 40 && res.write(chunk)) sent++;
      if (sent < 40) res.once("drain", more);
      else res.end();
    };
    more();
  };
  await rejects(s.status(), (e) => e.code === "bad_response" && !e.retryable);
  handler = (req, res) => {
    res.writeHead(200, { "Content-Type": "application/json", "Content-Length": String(64 << 20) });
    res.end();
  };
  await rejects(s.status(), (e) => e.code === "bad_response");
});

test("deep, non-JSON, or wrong-case answers are refused", async () => {
  const s = session();
  for (const body of ["[".repeat(100) + "]".repeat(100), "not json", '{"v":1}', JSON.stringify({ v: 1, case_id: "0000000000000000", withdrawn: false, checkpoint_size: 0, entries: [] })]) {
    handler = (req, res) => json(res, 200, body);
    await rejects(s.status(), (e) => e.code === "bad_response");
  }
});

test("the hub's error code comes through, typed, never its message", async () => {
  const s = session();
  handler = (req, res) => refuse(res, 404, "unknown_case");
  await rejects(s.status(), (e) => e.code === "unknown_case" && e.status === 404 && !e.retryable && !e.message.includes("HUB-SAYS"));
  handler = (req, res) => refuse(res, 400, "Bad Code!");
  await rejects(s.status(), (e) => e.code === "http_error" && e.status === 400);
});

test("503 and 429 are retried after Retry-After; past the attempts the error is retryable", async () => {
  log.length = 0;
  const s = session();
  handler = (req, res, n) =>
    n < 3 ? refuse(res, 503, "erasure_pending", { "Retry-After": "0" }) : json(res, 202, { v: 1, case_id: s.caseId, status: "pending", case_withdrawn: false, withdrawn: [], already_withdrawn: [] });
  const answer = await s.withdraw(["ab".repeat(16)]);
  assert.equal(answer.case_withdrawn, false);
  assert.equal(log.length, 3);
  assert.ok(log[0].body.equals(log[1].body) && log[1].body.equals(log[2].body), "the same envelope each time");
  log.length = 0;
  handler = (req, res) => refuse(res, 503, "erasure_pending", { "Retry-After": "0" });
  await rejects(s.withdraw(["cd".repeat(16)]), (e) => e.code === "erasure_pending" && e.retryable);
  handler = (req, res) => json(res, 202, { v: 1, case_id: s.caseId, status: "pending", case_withdrawn: false, withdrawn: [], already_withdrawn: [] });
  await s.withdraw(["cd".repeat(16)]);
  assert.equal(new Set(log.map((l) => l.body.toString("hex"))).size, 1, "the retry sent the same bytes");
  handler = (req, res) => refuse(res, 429, "rate_limited", { "Retry-After": "3600" });
  await rejects(s.status(), (e) => e.code === "rate_limited" && e.retryable);
});

test("an unreachable hub is asked again after 0.5 s, then 1 s (as client/hub.py); then the error is retryable", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] }); // the pauses on a mocked clock: no real waiting
  let calls = 0;
  const unreachable = async () => {
    calls += 1;
    throw new TypeError("fetch failed");
  };
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  const failed = session({ fetch: unreachable, maxWaitMs: 30_000 }).status();
  failed.catch(() => {});
  const paused = [];
  for (const wanted of [500, 1000]) {
    await settle();
    const before = calls;
    t.mock.timers.tick(wanted - 1);
    await settle();
    assert.equal(calls, before, `asked again before ${wanted} ms`);
    t.mock.timers.tick(1);
    await settle();
    if (calls === before + 1) paused.push(wanted);
  }
  assert.deepEqual(paused, [500, 1000]);
  await rejects(failed, (e) => e.code === "network" && e.retryable);
  assert.equal(calls, 3);
});

test("a slow hub times out; an abort stops at once; redirects are not followed", async () => {
  const s = session({ attempts: 1, timeoutMs: 300 });
  handler = () => {}; // never answers
  await rejects(s.status(), (e) => e.code === "timeout" && e.retryable);
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 50);
  await rejects(s.status({ signal: controller.signal }), (e) => e.code === "aborted");
  handler = (req, res) => {
    res.writeHead(302, { Location: "http://example.invalid/" });
    res.end();
  };
  await rejects(session({ attempts: 1 }).status(), (e) => e.code === "network");
});

test("a stale refusal with the hub's Date teaches the session the hub's clock", async () => {
  log.length = 0;
  const s = session({ clock: () => Date.now() / 1000 + 3600 }); // this device runs an hour fast
  handler = (req, res, n) =>
    n === 1
      ? refuse(res, 401, "stale_timestamp", { Date: new Date().toUTCString() })
      : json(res, 200, { v: 1, case_id: s.caseId, withdrawn: false, checkpoint_size: 0, entries: [] });
  await s.status();
  const stamp = (body) => Number(body.readBigUInt64BE(6 + 12 + 32));
  assert.ok(Math.abs(stamp(log[1].body) - Date.now() / 1000) < 5);
});

test("a puzzle the hub contradicts or bounds it exceeds is refused before any work", async () => {
  const s = session();
  const challenge = "01" + "00".repeat(8) + "06" + "1e" + "08" + "01" + "00".repeat(16); // N = 2^30
  handler = (req, res) =>
    req.url.endsWith("/v1/status") ? refuse(res, 404, "unknown_case") : json(res, 200, { v: 1, required: true, challenge, difficulty: 6, scrypt: {}, expires_at: 1 });
  const records = [
    { kind: "image", algorithm: "md5", hash: "a".repeat(32) },
    { kind: "image", algorithm: "sha256", hash: "b".repeat(64) },
    { kind: "image", algorithm: "pdq", hash: "c".repeat(64), quality: 90, fit: true },
  ];
  await rejects(s.submit([records]), (e) => e.code === "bad_response");
  assert.equal(s.pendingSubmission(), null);
});

test("restorePending takes only this case's submissions", () => {
  const s = session();
  assert.throws(() => s.restorePending([new Uint8Array(10)]), (e) => e instanceof HubError && e.code === "bad_pending");
});

test("a submission refused for good is dropped; one that failed for now is kept and resent as is", async () => {
  const s = session({ attempts: 2 });
  const records = [
    { kind: "image", algorithm: "md5", hash: "a".repeat(32) },
    { kind: "image", algorithm: "sha256", hash: "b".repeat(64) },
  ];
  let submission = (req, res) => refuse(res, 422, "denied_hash");
  let status = (req, res) => refuse(res, 404, "unknown_case");
  handler = (req, res) => {
    if (req.url.endsWith("/v1/status")) return status(req, res);
    if (req.url.endsWith("/v1/case-puzzle")) return refuse(res, 404, "not_found");
    return submission(req, res);
  };
  await rejects(s.submit([records]), (e) => e.code === "denied_hash" && !e.retryable);
  assert.equal(s.pendingSubmission(), null);
  log.length = 0;
  submission = (req, res) => refuse(res, 503, "database_unavailable", { "Retry-After": "0" });
  await rejects(s.submit([records]), (e) => e.code === "database_unavailable" && e.retryable);
  const kept = s.pendingSubmission();
  assert.equal(kept.length, 1);
  submission = (req, res) =>
    json(res, 202, { v: 1, case_id: s.caseId, status: "held", entries: [0, 1].map((i) => ({ entry_id: String(i).repeat(32), leaf_hash: String(i).repeat(64) })) });
  const entry = (i, hash) => ({ entry_id: String(i).repeat(32), kind: "addition", state: "held", log_index: null, leaf_hash: null, withdrawn: false, hash });
  status = (req, res) =>
    json(res, 200, { v: 1, case_id: s.caseId, withdrawn: false, checkpoint_size: 0, entries: [entry(0, { algorithm: "md5", hash: "a".repeat(32) }), entry(1, { algorithm: "sha256", hash: "b".repeat(64) })] });
  const sent = await s.submit([records]);
  assert.equal(sent.status, "held");
  assert.equal(sent.already_sent, 0); // the kept envelope sent them now, not before
  assert.deepEqual(sent.files, [{ state: "ready", entry_ids: ["0".repeat(32), "1".repeat(32)] }]);
  const posts = log.filter((l) => l.url.endsWith("/v1/submissions"));
  assert.equal(posts.length, 3);
  assert.ok(posts.every((p) => p.body.equals(Buffer.from(kept[0]))), "the same bytes every time");
  assert.equal(s.pendingSubmission(), null);
});

test("kept envelopes restored after a reload: a hub that never saw the case asks the puzzle, the same bytes follow", async () => {
  log.length = 0;
  const first = session({ attempts: 1 });
  const records = [
    { kind: "image", algorithm: "md5", hash: "e".repeat(32) },
    { kind: "image", algorithm: "sha256", hash: "f".repeat(64) },
  ];
  // Difficulty 0 and the smallest scrypt: any nonce solves it (the hub's MAC is not checked here).
  const challenge = "01" + "00".repeat(8) + "00" + "01" + "01" + "01" + "00".repeat(16);
  let hubUp = false;
  handler = (req, res) => {
    if (req.url.endsWith("/v1/status")) return refuse(res, 404, "unknown_case");
    if (req.url.endsWith("/v1/case-puzzle")) return json(res, 200, { v: 1, required: true, challenge, difficulty: 0, scrypt: { n: 2, r: 1, p: 1 }, expires_at: Math.floor(Date.now() / 1000) + 600 });
    if (!hubUp) return refuse(res, 503, "database_unavailable");
    if (!req.headers["ncii-case-puzzle"]) return refuse(res, 428, "puzzle_required");
    return json(res, 202, { v: 1, case_id: first.caseId, status: "pending", entries: [0, 1].map((i) => ({ entry_id: String(i + 4).repeat(32), leaf_hash: String(i).repeat(64) })) });
  };
  await rejects(first.submit([records]), (e) => e.code === "database_unavailable" && e.retryable);
  const kept = first.pendingSubmission();
  const second = session({ attempts: 1 }); // the page reloaded; "remember on this device" kept these
  second.restorePending(kept);
  hubUp = true;
  const sent = await second.submit();
  assert.deepEqual(sent.entries.map((e) => e.entry_id), ["4".repeat(32), "5".repeat(32)]);
  const posts = log.filter((l) => l.url.endsWith("/v1/submissions"));
  assert.deepEqual(posts.map((p) => Boolean(p.headers["ncii-case-puzzle"])), [true, false, true]);
  assert.ok(posts.every((p) => p.body.equals(Buffer.from(kept[0]))));
  assert.equal(second.pendingSubmission(), null);
});

test("a kept envelope too old for the hub is not resent: its hashes are checked against status first", async () => {
  const month = 30 * 86400;
  const old = session({ attempts: 1, clock: () => Date.now() / 1000 - month });
  const records = [
    { kind: "image", algorithm: "md5", hash: "1".repeat(32) },
    { kind: "image", algorithm: "sha256", hash: "2".repeat(64) },
  ];
  handler = (req, res) => {
    if (req.url.endsWith("/v1/status")) return json(res, 200, { v: 1, case_id: old.caseId, withdrawn: false, checkpoint_size: 0, entries: [] });
    return refuse(res, 503, "database_unavailable");
  };
  await rejects(old.submit([records]), (e) => e.retryable);
  const kept = old.pendingSubmission();
  // A month later: the hub already holds one of the two hashes (the lost answer's submission).
  const now = session({ attempts: 1 });
  now.restorePending(kept);
  log.length = 0;
  const stored = { entry_id: "7".repeat(32), kind: "addition", state: "integrated", log_index: 0, leaf_hash: "7".repeat(64), withdrawn: false, hash: { algorithm: "md5", hash: "1".repeat(32) } };
  handler = (req, res) => {
    if (req.url.endsWith("/v1/status")) return json(res, 200, { v: 1, case_id: now.caseId, withdrawn: false, checkpoint_size: 1, entries: [stored] });
    return json(res, 202, { v: 1, case_id: now.caseId, status: "pending", entries: [{ entry_id: "8".repeat(32), leaf_hash: "8".repeat(64) }] });
  };
  const sent = await now.submit();
  assert.deepEqual(sent.entries.map((e) => e.entry_id), ["8".repeat(32)]);
  const posts = log.filter((l) => l.url.endsWith("/v1/submissions"));
  assert.equal(posts.length, 1);
  assert.ok(!posts[0].body.equals(Buffer.from(kept[0])), "sealed anew, now");
  assert.ok(!posts[0].body.includes(Buffer.from("1".repeat(32))), "without the hash the hub holds");
  assert.ok(posts[0].body.includes(Buffer.from("2".repeat(64))));
});
