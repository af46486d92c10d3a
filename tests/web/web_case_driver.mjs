// Runs web/case.js, web/envelope.js and web/submission.js in Node for
// tests/web/test_web_case_bytes.py: reads one JSON request on stdin, writes one JSON answer.
//   {"op":"parse-codes","codes":[...]}            -> {"results":[{"secret"} | {"error","code","group"}]}
//   {"op":"derive","secrets":[hex...]}             -> {"cases":[{"code","public_key","case_id"}]}
//   {"op":"seal-submission","secret","now","nonces":[hex...],"files":[[records]],"limits"}
//                                                  -> {"envelopes":[hex],"files":[reports],"count"}
//   {"op":"seal-other","secret","now","nonce","kind":"status"|"withdrawal","entries"}
//                                                  -> {"envelope":hex}
import { readFileSync } from "node:fs";
import { RecoveryCodeError, deriveCase, encodeRecoveryCode, fromHex, parseRecoveryCode, toHex } from "../../web/case.js";
import { seal } from "../../web/envelope.js";
import { DEFAULT_LIMITS, planSubmission, sealSubmissions, statusQueryBody, withdrawalBody } from "../../web/submission.js";

const request = JSON.parse(readFileSync(0, "utf8"));

function run(r) {
  if (r.op === "parse-codes") {
    return {
      results: r.codes.map((code) => {
        try {
          return { secret: toHex(parseRecoveryCode(code)) };
        } catch (err) {
          if (!(err instanceof RecoveryCodeError)) throw err;
          return { error: err.name, code: err.code, group: err.group, message: err.message };
        }
      }),
    };
  }
  if (r.op === "derive") {
    return {
      cases: r.secrets.map((s) => {
        const c = deriveCase(fromHex(s));
        return { code: encodeRecoveryCode(fromHex(s)), public_key: toHex(c.publicKey), case_id: c.caseId };
      }),
    };
  }
  if (r.op === "seal-submission") {
    const plan = planSubmission(r.files, r.limits ? { ...DEFAULT_LIMITS, ...r.limits } : DEFAULT_LIMITS);
    const nonces = r.nonces.map(fromHex);
    let i = 0;
    const envelopes = sealSubmissions(deriveCase(fromHex(r.secret)), plan.hashes, r.now, {
      limits: r.limits ? { ...DEFAULT_LIMITS, ...r.limits } : DEFAULT_LIMITS,
      nonce: () => nonces[i++],
    });
    return { envelopes: envelopes.map(toHex), files: plan.files, count: plan.hashCount };
  }
  if (r.op === "seal-other") {
    const body = r.kind === "status" ? statusQueryBody() : withdrawalBody(r.entries);
    const purpose = r.kind === "status" ? "status-query" : "withdrawal";
    return { envelope: toHex(seal(deriveCase(fromHex(r.secret)), purpose, body, r.now, fromHex(r.nonce))) };
  }
  throw new Error(`unknown op ${r.op}`);
}

process.stdout.write(JSON.stringify(run(request)));
