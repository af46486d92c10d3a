// Talking to the hub from the page (specs/hub-api.md): a case's submissions, status and
// withdrawals, each a signed envelope (specs/envelope.md) posted to a URL relative to `base`.
//
//   import { CaseSession, HubError } from "./hubclient.js";
//   const session = new CaseSession({ secret });               // base "/" on the hub itself
//   const sent = await session.submit(files, { onPuzzleProgress, signal });
//   const status = await session.status();
//   await session.withdraw([entryId]);  await session.withdraw("all");
//
// Nothing is lost and no case is made twice (issue 15): submit() seals its envelopes once and
// keeps them until the hub acknowledges each; a retry after any failure (hub down, answer lost,
// page reloaded and the envelopes restored) posts the SAME bytes, which the hub answers from its
// replay record (specs/submission.md section 7). A case's id is fixed by its key, so there is
// no second case to make. The first submission of a new case carries a solved case puzzle
// (specs/case-puzzle.md, solved with web/puzzle.js, progress reported) in its header.
//
// The hub is not trusted to be sane: every answer is read as a stream and reading stops at a
// cap per kind of answer (as client/hub.py's ANSWER_LIMITS), JSON is depth-checked before it is
// parsed and every field used is checked, each request has a timeout, redirects are refused.
// Failures throw HubError with a stable `.code` (the hub's error code, or "network",
// "timeout", "bad_response", "aborted") and `.retryable` (try again later: nothing is lost).
import { deriveCase, fromHex } from "./case.js";
import { EnvelopeError, Purpose, openEnvelope, peekEnvelope, sealNow } from "./envelope.js";
import { HEADER_NAME, PuzzleError, parseChallenge, solve, encodeSolution } from "./puzzle.js";
import {
  DEFAULT_LIMITS,
  canonicalHashKey,
  fileReport,
  groupFiles,
  planSubmission,
  sealSubmissions,
  statusQueryBody,
  withdrawalBody,
} from "./submission.js";

export const ENVELOPE_TYPE = "application/vnd.ncii.envelope";

/** The most bytes read from an answer of each kind (client/hub.py ANSWER_LIMITS). */
export const ANSWER_LIMITS = Object.freeze({
  status: 32 << 20,
  submission: 4 << 20,
  withdrawal: 16 << 20,
  puzzle: 4 << 10,
  error: 64 << 10,
});
const MAX_JSON_DEPTH = 32;
const RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504]);
const PUZZLE_CODES = new Set(["puzzle_required", "puzzle_expired", "puzzle_invalid"]);
const SOLUTION_MARGIN = 30; // seconds: a solution this close to its challenge's expiry is not reused
const SUBMISSION_MAX_AGE = 29 * 86400; // a kept envelope older than this is re-planned (hub keeps 30 days)
const WITHDRAWAL_REUSE = 240; // seconds: resend a withdrawal's bytes while well inside the hub's window
const HEX32 = /^[0-9a-f]{32}$/;
const HEX64 = /^[0-9a-f]{64}$/;

export class HubError extends Error {
  constructor(code, message, { status = null, retryable = false } = {}) {
    super(message);
    this.name = "HubError";
    this.code = code;
    this.status = status;
    this.retryable = retryable;
  }
}

const badResponse = (what) => new HubError("bad_response", `the hub's answer cannot be read (${what})`);

/** Nesting depth of JSON text outside strings, without parsing it (bounded input only). */
function jsonDepth(text) {
  let depth = 0;
  let most = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) most = Math.max(most, ++depth);
    else if (c === 0x7d || c === 0x5d) depth--;
  }
  return most;
}

function parseJson(bytes, what) {
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw badResponse(`${what}: not UTF-8`);
  }
  if (jsonDepth(text) > MAX_JSON_DEPTH) throw badResponse(`${what}: nested too deep`);
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    throw badResponse(`${what}: not JSON`);
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) throw badResponse(`${what}: not an object`);
  return value;
}

const isIndex = (v) => v === null || (Number.isSafeInteger(v) && v >= 0);

function checkEntryRef(e) {
  if (!e || !HEX32.test(e.entry_id) || !HEX64.test(e.leaf_hash)) throw badResponse("an entry id or leaf hash");
  return e;
}

function checkStatus(answer, caseId) {
  if (answer.case_id !== caseId || typeof answer.withdrawn !== "boolean" || !isIndex(answer.checkpoint_size) || !Array.isArray(answer.entries)) {
    throw badResponse("status");
  }
  for (const e of answer.entries) {
    if (!e || !HEX32.test(e.entry_id) || !["addition", "tombstone"].includes(e.kind) || typeof e.state !== "string") {
      throw badResponse("status entry");
    }
    if (!isIndex(e.log_index) || !(e.leaf_hash === null || HEX64.test(e.leaf_hash))) throw badResponse("status entry position");
    if (e.kind === "tombstone" && !(e.withdraws == null || HEX32.test(e.withdraws))) throw badResponse("tombstone");
  }
  return answer;
}

function checkWithdrawal(answer, caseId) {
  const ids = (list) => Array.isArray(list) && list.every((x) => HEX32.test(x));
  if (
    answer.case_id !== caseId ||
    typeof answer.case_withdrawn !== "boolean" ||
    !Array.isArray(answer.withdrawn) ||
    !answer.withdrawn.every((w) => w && HEX32.test(w.entry_id) && HEX32.test(w.tombstone_id)) ||
    !ids(answer.already_withdrawn) ||
    !(answer.held_withdrawn === undefined || ids(answer.held_withdrawn))
  ) {
    throw badResponse("withdrawal");
  }
  return answer;
}

/** An AbortSignal that fires when `outer` does or after `ms`; `timedOut()` tells which. */
function deadline(outer, ms) {
  const controller = new AbortController();
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    controller.abort();
  }, ms);
  const onAbort = () => controller.abort();
  if (outer) {
    if (outer.aborted) controller.abort();
    else outer.addEventListener("abort", onAbort, { once: true });
  }
  return {
    signal: controller.signal,
    timedOut: () => expired,
    done: () => {
      clearTimeout(timer);
      if (outer) outer.removeEventListener("abort", onAbort);
    },
  };
}

function aborted() {
  return new HubError("aborted", "stopped by the person (nothing was lost)", { retryable: true });
}

function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(aborted());
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(aborted());
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** The body, read chunk by chunk, never past `limit` bytes. */
async function readCapped(response, limit, kind) {
  const declared = Number(response.headers.get("content-length"));
  const tooLarge = () => new HubError("bad_response", `the hub's answer (${kind}) is larger than any working hub sends`);
  if (Number.isFinite(declared) && declared > limit) {
    await response.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  if (!response.body) return new Uint8Array(0);
  const reader = response.body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let pos = 0;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

function retryAfterSeconds(response) {
  const value = response.headers.get("retry-after");
  if (value === null || !/^\d+(\.\d+)?$/.test(value.trim())) return null;
  return Number(value);
}

/** The hub's {"error":{"code","message"}} as a HubError (the message is never shown raw). */
function refusal(status, bytes, retryAfter) {
  let code = "http_error";
  try {
    const error = parseJson(bytes, "error").error;
    if (error && typeof error.code === "string" && /^[a-z0-9_]{1,64}$/.test(error.code)) code = error.code;
  } catch {
    // keep "http_error": the status says enough
  }
  const err = new HubError(code, `the hub refused the request (HTTP ${status}, ${code})`, {
    status,
    retryable: RETRY_STATUSES.has(status),
  });
  err.retryAfter = retryAfter;
  return err;
}

/** Hub time from an answer's Date header (seconds), or null. */
function hubTime(response) {
  const value = Date.parse(response.headers.get("date") ?? "");
  return Number.isFinite(value) ? Math.floor(value / 1000) : null;
}

export class CaseSession {
  /**
   * secret: the 16-byte case secret. base: the hub's URL prefix ("/" on the hub, "./" under
   * `ncii-client ui`, an absolute URL in Node). attempts: tries per request for transient
   * failures (network, 408, 429, 5xx), waiting 0.5 s, 1 s, 2 s... or the hub's Retry-After.
   */
  constructor({ secret, base = "/", fetch = globalThis.fetch, timeoutMs = 30_000, attempts = 4, maxWaitMs = 30_000, limits = DEFAULT_LIMITS, clock = () => Date.now() / 1000 } = {}) {
    const signer = deriveCase(secret);
    if (typeof fetch !== "function") throw new TypeError("CaseSession needs a fetch function");
    this.caseId = signer.caseId;
    this.publicKey = signer.publicKey;
    this._signer = signer;
    this._base = base.endsWith("/") ? base : `${base}/`;
    this._fetch = (url, init) => fetch(url, init); // unbound: window.fetch refuses another `this`
    this._timeoutMs = timeoutMs;
    this._attempts = Math.max(1, attempts);
    this._maxWaitMs = maxWaitMs;
    this._limits = limits;
    this._clock = clock;
    this._skew = 0; // hub clock minus this device's, learnt from a stale_timestamp refusal
    this._pending = []; // [{bytes, keys}] sealed submissions not yet acknowledged, in order
    this._withdrawal = null; // {key, bytes, sealedAt} the last withdrawal not yet acknowledged
    this._solution = null; // {header, expiresAt} case puzzle solution for this key
    this._newCase = false; // the hub said it does not know this case: send the solution
  }

  _now() {
    return Math.floor(this._clock()) + this._skew;
  }

  _url(path) {
    return this._base + path;
  }

  /**
   * One request with retries of transient failures. `bytes()` gives the body for each attempt
   * (the same bytes for submissions and withdrawals; a freshly signed query for status).
   * Resolves to {status, body, response} for any answer that is not retried; throws HubError.
   */
  async _request(method, path, { kind, bytes = null, headers = {}, signal }) {
    let delay = 500;
    let last = null;
    for (let attempt = 0; attempt < this._attempts; attempt++) {
      // 0.5 s before the second attempt, then twice as long each time (client/hub.py's schedule)
      if (attempt) {
        await pause(delay, signal);
        delay = Math.min(delay * 2, this._maxWaitMs);
      }
      if (signal?.aborted) throw aborted();
      const body = bytes ? bytes() : undefined;
      const limit = deadline(signal, this._timeoutMs);
      try {
        const response = await this._fetch(this._url(path), {
          method,
          body,
          headers: body ? { "Content-Type": ENVELOPE_TYPE, ...headers } : headers,
          signal: limit.signal,
          redirect: "error",
          credentials: "omit",
          cache: "no-store",
          referrerPolicy: "no-referrer",
        });
        const cap = response.ok ? ANSWER_LIMITS[kind] : ANSWER_LIMITS.error;
        const content = await readCapped(response, cap, kind);
        if (response.ok || !RETRY_STATUSES.has(response.status)) {
          return { status: response.status, body: content, response };
        }
        last = refusal(response.status, content, retryAfterSeconds(response));
        if (last.retryAfter !== null) {
          if (last.retryAfter * 1000 > this._maxWaitMs) break;
          delay = Math.max(last.retryAfter * 1000, 0);
        }
      } catch (err) {
        if (err instanceof HubError) throw err;
        if (signal?.aborted) throw aborted();
        // fetch() and body reads fail with TypeError (network) or AbortError (our timeout);
        // anything else is a bug here, not the network: let it surface.
        if (!(err instanceof TypeError) && err?.name !== "AbortError") throw err;
        last = limit.timedOut()
          ? new HubError("timeout", "the hub did not answer in time (nothing was lost)", { retryable: true })
          : new HubError("network", "the hub could not be reached (nothing was lost)", { retryable: true });
      } finally {
        limit.done();
      }
    }
    throw last;
  }

  _json(answer, okStatus, kind) {
    if (answer.status !== okStatus) throw refusal(answer.status, answer.body, retryAfterSeconds(answer.response));
    return parseJson(answer.body, kind);
  }

  /** True if `answer` refused an envelope as stale and carries the hub's time: the device's
   * clock is off, so learn the hub's (an envelope refused as stale stored nothing, so sealing
   * it again with the hub's time loses nothing and makes nothing twice). */
  _learnClock(answer) {
    if (answer.status !== 401) return false;
    const hub = hubTime(answer.response);
    if (hub === null || refusal(401, answer.body, null).code !== "stale_timestamp") return false;
    this._skew = hub - Math.floor(this._clock());
    return true;
  }

  // -- status ---------------------------------------------------------------------------------

  /** The case as the hub reports it (specs/submission.md section 6), its fields as the hub
   * names them: {case_id, withdrawn, checkpoint_size, entries: [{entry_id, kind, state,
   * log_index, leaf_hash, withdrawn, withdraws, hash}]}. An unknown case: HubError unknown_case. */
  async status({ signal } = {}) {
    // Each query is single-use at the hub: every attempt is a freshly signed one, and one more
    // is sent after 409 replayed_query (an answer lost on the way back) or a stale refusal.
    const sealQuery = () => sealNow(this._signer, Purpose.STATUS_QUERY, statusQueryBody(), this._now());
    let answer = await this._request("POST", "v1/status", { kind: "status", bytes: sealQuery, signal });
    if (answer.status === 409 || this._learnClock(answer)) {
      answer = await this._request("POST", "v1/status", { kind: "status", bytes: sealQuery, signal });
    }
    return checkStatus(this._json(answer, 200, "status"), this.caseId);
  }

  // -- submissions ----------------------------------------------------------------------------

  /** The sealed submission envelopes not yet acknowledged by the hub (to keep with "remember on
   * this device" and hand back to restorePending after a reload), or null. */
  pendingSubmission() {
    return this._pending.length ? this._pending.map((p) => p.bytes.slice()) : null;
  }

  /** Take back envelopes pendingSubmission() gave: each must be a submission signed by this
   * case's key; the next submit() posts them first, byte for byte. */
  restorePending(envelopes) {
    const restored = [];
    for (const bytes of envelopes ?? []) {
      try {
        const opened = openEnvelope(bytes, { expectedPurpose: Purpose.SUBMISSION, now: peekEnvelope(bytes).timestamp });
        if (opened.publicKey.some((b, i) => b !== this.publicKey[i])) throw new EnvelopeError("malformed", "another case");
        const keys = JSON.parse(new TextDecoder().decode(opened.body)).hashes.map(canonicalHashKey);
        restored.push({ bytes: bytes.slice(), keys });
      } catch {
        throw new HubError("bad_pending", "a kept submission is not one of this case's");
      }
    }
    this._pending = restored;
  }

  /** Forget the envelopes not yet acknowledged (e.g. the person changed the files to send). */
  discardPending() {
    this._pending = [];
  }

  /**
   * Send the fingerprints of `files` (per file, fingerprint()'s records or results; see
   * submission.js) that the hub does not hold yet for this case, after any submission still
   * pending. Resolves to {v, case_id, status: "pending"|"held", entries: [{entry_id,
   * leaf_hash}], held, already_sent, files: [{state, entry_ids}]} (files in input order).
   * Throws HubError; when `.retryable`, call submit() again: the same bytes are sent.
   */
  async submit(files = [], { onPuzzleProgress, signal } = {}) {
    const plan = planSubmission(files, this._limits); // bad records fail here, before any request
    const entries = [];
    const replan = []; // hashes of kept envelopes too old to send as they are
    const byKey = new Map();
    let held = 0;
    const post = async () => {
      while (this._pending.length) {
        const kept = this._pending[0];
        if (this._now() - peekEnvelope(kept.bytes).timestamp > SUBMISSION_MAX_AGE) {
          replan.push(...JSON.parse(new TextDecoder().decode(peekEnvelope(kept.bytes).body)).hashes);
          this._pending.shift();
          continue;
        }
        let answer;
        try {
          answer = await this._postSubmission(this._pending[0], { onPuzzleProgress, signal });
        } catch (err) {
          // A refusal for good (e.g. case_withdrawn, denied_hash) stored nothing and would be
          // refused again: drop that envelope. Transient failures, a broken answer or an
          // unsolved puzzle keep it for the next try.
          if (err instanceof HubError && err.status >= 400 && err.status < 500 && !err.retryable && !PUZZLE_CODES.has(err.code)) {
            this._pending.shift();
          }
          throw err;
        }
        if (answer === null) {
          replan.push(...JSON.parse(new TextDecoder().decode(peekEnvelope(kept.bytes).body)).hashes);
          this._pending.shift();
          continue;
        }
        const got = Array.isArray(answer.entries) ? answer.entries.map(checkEntryRef) : null;
        if (answer.case_id !== this.caseId || !got || got.length !== this._pending[0].keys.length) {
          throw badResponse("submission");
        }
        if (answer.status === "held") held += got.length;
        got.forEach((e, i) => byKey.set(this._pending[0].keys[i], e.entry_id));
        entries.push(...got.map((e) => ({ entry_id: e.entry_id, leaf_hash: e.leaf_hash })));
        this._pending.shift();
      }
    };
    await post();
    let already = 0;
    const hashes = [...plan.hashes];
    const planned = new Set(hashes.map(canonicalHashKey));
    for (const h of replan) if (!planned.has(canonicalHashKey(h))) hashes.push(h);
    if (hashes.length) {
      let known = null;
      try {
        const status = await this.status({ signal });
        if (status.withdrawn) {
          throw new HubError("case_withdrawn", "this case was withdrawn: start a new case to protect more pictures", { status: 410 });
        }
        known = new Map();
        for (const e of status.entries) {
          const key = e.kind === "addition" && !e.withdrawn ? canonicalHashKey(e.hash) : null;
          if (key) known.set(key, e.entry_id);
        }
      } catch (err) {
        if (!(err instanceof HubError) || err.code !== "unknown_case") throw err;
      }
      if (known === null) {
        this._newCase = true; // its first submission needs the case puzzle: solve it now
        await this._prepareSolution({ onPuzzleProgress, signal });
      }
      const todo = hashes.filter((h) => !known?.has(canonicalHashKey(h)));
      // "already sent": held by the hub before this call (not the kept envelopes it just took)
      already = plan.hashes.filter((h) => known?.has(canonicalHashKey(h)) && !byKey.has(canonicalHashKey(h))).length;
      for (const [key, id] of known ?? []) if (!byKey.has(key)) byKey.set(key, id);
      if (todo.length) {
        const sealed = sealSubmissions(this._signer, todo, this._now(), { limits: this._limits });
        // Keys per envelope, in body order, to map the hub's entries back to files.
        let at = 0;
        this._pending = sealed.map((bytes) => {
          const count = JSON.parse(new TextDecoder().decode(peekEnvelope(bytes).body)).hashes.length;
          const keys = todo.slice(at, at + count).map(canonicalHashKey);
          at += count;
          return { bytes, keys };
        });
        await post();
      }
    }
    const perFile = groupFiles(files);
    const filesOut = plan.files.map((f, i) => {
      const keys = f.state === "ready" ? fileReport(perFile[i], this._limits).hashes.map(canonicalHashKey) : [];
      return { state: f.state, entry_ids: keys.map((k) => byKey.get(k)).filter(Boolean) };
    });
    return {
      v: 1,
      case_id: this.caseId,
      status: held ? "held" : "pending",
      entries,
      held,
      already_sent: already,
      files: filesOut,
    };
  }

  /**
   * For a case just made on this device: solve the hub's case puzzle now (with progress), so
   * the first submit() sends it at once. Resolves to {required, expires_at} (required false: this
   * hub asks none). The solution is kept in this session until shortly before it expires;
   * submit() solves again by itself if it has to.
   */
  async prepareNewCase({ onPuzzleProgress, signal } = {}) {
    this._newCase = true;
    const required = await this._prepareSolution({ onPuzzleProgress, signal });
    return { required, expires_at: required ? this._solution.expiresAt : null };
  }

  /** Get a puzzle solution for this case key before its first submission, unless one is kept
   * and not near expiry; nothing when the hub asks none (404 or required: false). */
  async _prepareSolution({ onPuzzleProgress, signal }, fresh = false) {
    if (!fresh && this._solution && this._solution.expiresAt > this._now() + SOLUTION_MARGIN) return true;
    const answer = await this._request("GET", "v1/case-puzzle", { kind: "puzzle", signal });
    if (answer.status === 404) return false;
    const puzzle = this._json(answer, 200, "puzzle");
    if (puzzle.required !== true) return false;
    let challenge;
    const raw = typeof puzzle.challenge === "string" ? fromHex(puzzle.challenge) : null;
    try {
      challenge = parseChallenge(raw ?? new Uint8Array(0));
    } catch {
      throw badResponse("case puzzle");
    }
    if (puzzle.difficulty !== challenge.difficulty || !Number.isSafeInteger(puzzle.expires_at)) {
      throw badResponse("case puzzle");
    }
    let nonce;
    try {
      nonce = await solve(challenge, this.publicKey, { onProgress: onPuzzleProgress, signal });
    } catch (err) {
      if (err instanceof PuzzleError && err.code === "cancelled") throw aborted();
      throw err;
    }
    this._solution = { header: encodeSolution(challenge, nonce), expiresAt: puzzle.expires_at };
    return true;
  }

  /** POST one kept envelope with the puzzle solution if any; when the hub asks for one (new
   * case) or refuses it (expired), solve a fresh challenge and send the same bytes again.
   * null: the envelope is too old for the hub (it keeps submissions 30 days); its hashes must
   * be checked against the case's status before they are sealed again. */
  async _postSubmission(pending, options) {
    let resealed = false;
    let solved = false;
    for (;;) {
      const headers = this._newCase && this._solution ? { [HEADER_NAME]: this._solution.header } : {};
      const answer = await this._request("POST", "v1/submissions", {
        kind: "submission",
        bytes: () => pending.bytes,
        headers,
        signal: options.signal,
      });
      const sealedAt = peekEnvelope(pending.bytes).timestamp;
      if (answer.status === 401 && hubTime(answer.response) !== null && sealedAt < hubTime(answer.response)) {
        // Too old for the hub: it may have stored it and since forgotten its replay record, so
        // new bytes could store the hashes twice. Hand them back to be checked against status.
        if (refusal(401, answer.body, null).code === "stale_timestamp") return null;
      }
      if (!resealed && this._learnClock(answer)) {
        // Sealed in the hub's future (this device's clock runs fast): never stored, seal anew.
        resealed = true;
        pending.bytes = sealNow(this._signer, Purpose.SUBMISSION, peekEnvelope(pending.bytes).body, this._now());
        continue;
      }
      if (!solved && (answer.status === 428 || answer.status === 403)) {
        const err = refusal(answer.status, answer.body, null);
        solved = true;
        if (PUZZLE_CODES.has(err.code) && (await this._prepareSolution(options, true))) {
          this._newCase = true;
          continue;
        }
      }
      const parsed = this._json(answer, 202, "submission");
      this._newCase = false; // the case exists now
      return parsed;
    }
  }

  // -- withdrawal -----------------------------------------------------------------------------

  /**
   * Withdraw entries (a list of entry ids) or the whole case ("all"). Resolves to the hub's
   * answer {case_id, case_withdrawn, withdrawn: [{entry_id, tombstone_id}], already_withdrawn,
   * held_withdrawn}. A retry after a failure (including 503 erasure_pending) sends the same
   * envelope while the hub's window allows, so nothing is withdrawn twice.
   */
  async withdraw(entryIds, { signal } = {}) {
    const body = withdrawalBody(entryIds);
    const key = new TextDecoder().decode(body);
    const kept = this._withdrawal;
    let bytes = kept && kept.key === key && this._now() - kept.sealedAt < WITHDRAWAL_REUSE ? kept.bytes : null;
    const seal = () => {
      if (!bytes) {
        bytes = sealNow(this._signer, Purpose.WITHDRAWAL, body, this._now());
        this._withdrawal = { key, bytes, sealedAt: this._now() };
      }
      return bytes;
    };
    let answer = await this._request("POST", "v1/withdrawals", { kind: "withdrawal", bytes: seal, signal });
    if (this._learnClock(answer)) {
      bytes = null; // refused as stale, so nothing was recorded: seal again with the hub's time
      answer = await this._request("POST", "v1/withdrawals", { kind: "withdrawal", bytes: seal, signal });
    }
    const result = checkWithdrawal(this._json(answer, 202, "withdrawal"), this.caseId);
    this._withdrawal = null;
    return result;
  }
}
