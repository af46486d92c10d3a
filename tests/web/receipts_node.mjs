// Runs web/receipts.js in Node against a real hub for tests/web/test_web_receipts.py.
// stdin: {"base", "logKey", "entries", "previous"?} (entries: a status answer's, as the hub
// sent them; previous: an earlier checkpoint note the log must extend).
// stdout: {"results": [{"entry_id", "state", "problem", "receipt"}], "requests": [paths]}.
// Node's own fetch (globalThis.fetch) does the HTTP; every URL it asks for is recorded.
import { readFileSync } from "node:fs";

const { receiptsFor } = await import(new URL("../../web/receipts.js", import.meta.url));
const input = JSON.parse(readFileSync(0, "utf8"));
const requests = [];
const recording = async (url, init) => {
  requests.push(new URL(url).pathname);
  return globalThis.fetch(url, init);
};
const got = await receiptsFor({
  base: input.base,
  logKey: input.logKey,
  entries: input.entries,
  previous: input.previous,
  fetch: recording,
});
const results = got.map((r) => ({ entry_id: r.entry.entry_id, state: r.state, problem: r.problem, receipt: r.receipt }));
process.stdout.write(JSON.stringify({ results, requests }));
