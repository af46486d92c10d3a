"""Generate the protocol vectors in specs/vectors/{envelope,commitment,feed,case}/.

Deterministic: every key, timestamp, nonce, salt and ephemeral key is fixed (derived from a
label with SHA-256), so running this twice writes identical files; tests/test_*.py check both the
files and that regeneration is byte-identical. Each record is one case with its expected outcome:
either the expected values or ``"error"``, the name of the crypto.errors class it must raise.

Usage: python specs/vectors/generate_protocol.py   (from the repository root)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import nacl.signing  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.x25519 import (  # noqa: E402
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305  # noqa: E402
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand  # noqa: E402

from crypto import case, commitment, envelope, feed  # noqa: E402
from crypto.errors import CryptoError, RecoveryCodeError  # noqa: E402

OUT = Path(__file__).resolve().parent
Record = dict[str, Any]


def fixed(label: str, size: int = 32) -> bytes:
    """Deterministic 'random' bytes for vectors."""
    return hashlib.sha256(b"ncii-exchange test vectors/" + label.encode()).digest()[:size]


def error_of(fn: Callable[[], object]) -> str:
    """The crypto error class name ``fn`` raises; fails loudly if it raises none."""
    try:
        fn()
    except CryptoError as exc:
        return type(exc).__name__
    raise AssertionError("expected an error, got none")


def flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    out = bytearray(data)
    out[index] ^= mask
    return bytes(out)


# -- envelope -------------------------------------------------------------------------------

SIGNER_SEED = fixed("envelope signer 1")
OTHER_SEED = fixed("envelope signer 2")
TS = 1_767_225_600  # 2026-01-01T00:00:00Z
WINDOW = 300


def _resign(key: nacl.signing.SigningKey, head: bytes) -> bytes:
    """Sign arbitrary head bytes as an envelope would (for validly signed odd layouts)."""
    return head + key.sign(envelope.SIGNATURE_DOMAIN + head).signature


def _head(
    purpose: bytes, key: nacl.signing.SigningKey, ts: int, nonce: bytes, body: bytes
) -> bytes:
    return (
        envelope.MAGIC
        + bytes((envelope.VERSION, len(purpose)))
        + purpose
        + bytes(key.verify_key)
        + struct.pack(">Q", ts)
        + nonce
        + struct.pack(">I", len(body))
        + body
    )


_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _noncanonical_tail(last: str) -> str:
    """The last base64url character of a 64-byte value carries 2 bits and 4 zero pad bits;
    setting a pad bit keeps the decoded bytes but makes the text non-canonical."""
    return _B64URL[_B64URL.index(last) | 1]


def build_envelope() -> dict[str, Any]:
    key = nacl.signing.SigningKey(SIGNER_SEED)
    other = nacl.signing.SigningKey(OTHER_SEED)
    seal_cases: list[Record] = []
    bodies = {
        "empty": b"",
        "json": b'{"case":"PRGWJ8DJST8KBXRN","hashes":[]}',
        "binary": bytes(range(256)),
    }
    for purpose in envelope.Purpose:
        for name, body in bodies.items():
            nonce = fixed(f"nonce {purpose} {name}", 16)
            seal_cases.append(
                {
                    "id": f"seal/{purpose.value}/{name}",
                    "signing_seed": SIGNER_SEED.hex(),
                    "purpose": purpose.value,
                    "body": body.hex(),
                    "timestamp": TS,
                    "nonce": nonce.hex(),
                    "envelope": envelope.seal(key, purpose, body, TS, nonce).hex(),
                }
            )

    body = b'{"status":"please"}'
    nonce = fixed("nonce open", 16)
    good = envelope.seal(key, envelope.Purpose.STATUS_QUERY, body, TS, nonce)
    sig_at = len(good) - 64
    ok = {
        "purpose": "status-query",
        "public_key": bytes(key.verify_key).hex(),
        "timestamp": TS,
        "nonce": nonce.hex(),
        "body": body.hex(),
        "replay_key": (bytes(key.verify_key) + nonce).hex(),
    }
    open_inputs: list[tuple[str, bytes, str, int, int, int]] = [
        ("valid", good, "status-query", TS, WINDOW, 1024),
        ("valid/past-edge", good, "status-query", TS + WINDOW, WINDOW, 1024),
        ("valid/future-edge", good, "status-query", TS - WINDOW, WINDOW, 1024),
        ("valid/body-at-limit", good, "status-query", TS, WINDOW, len(body)),
        ("stale/past-by-1", good, "status-query", TS + WINDOW + 1, WINDOW, 1024),
        ("stale/future-by-1", good, "status-query", TS - WINDOW - 1, WINDOW, 1024),
        ("stale/zero-window", good, "status-query", TS + 1, 0, 1024),
        ("wrong-purpose/withdrawal", good, "withdrawal", TS, WINDOW, 1024),
        ("wrong-purpose/submission", good, "submission", TS, WINDOW, 1024),
        ("limit/body-over-by-1", good, "status-query", TS, WINDOW, len(body) - 1),
        ("limit/zero", good, "status-query", TS, WINDOW, 0),
        ("truncated/empty", b"", "status-query", TS, WINDOW, 1024),
        ("truncated/magic-only", good[:4], "status-query", TS, WINDOW, 1024),
        ("truncated/header", good[:40], "status-query", TS, WINDOW, 1024),
        ("truncated/signature", good[:-1], "status-query", TS, WINDOW, 1024),
        ("truncated/body", good[: sig_at - 3], "status-query", TS, WINDOW, 1024),
        ("trailing/one-byte", good + b"\x00", "status-query", TS, WINDOW, 1024),
        ("trailing/second-envelope", good + good, "status-query", TS, WINDOW, 1024),
        ("bad-magic", b"NCEW" + good[4:], "status-query", TS, WINDOW, 1024),
        ("unknown-version", good[:4] + b"\x02" + good[5:], "status-query", TS, WINDOW, 1024),
        ("purpose-length-zero", good[:5] + b"\x00" + good[6:], "status-query", TS, WINDOW, 1024),
        ("purpose-length-65", good[:5] + b"\x41" + good[6:], "status-query", TS, WINDOW, 1024),
        ("altered/purpose", flip(good, 6), "status-query", TS, WINDOW, 1024),
        ("altered/public-key", flip(good, 6 + 12), "status-query", TS, WINDOW, 1024),
        ("altered/timestamp", flip(good, 6 + 12 + 32 + 7), "status-query", TS, WINDOW, 1024),
        ("altered/nonce", flip(good, 6 + 12 + 32 + 8), "status-query", TS, WINDOW, 1024),
        ("altered/body", flip(good, sig_at - 1), "status-query", TS, WINDOW, 1024),
        ("altered/signature-r", flip(good, sig_at), "status-query", TS, WINDOW, 1024),
        ("altered/signature-s", flip(good, len(good) - 1, 0x10), "status-query", TS, WINDOW, 1024),
        (
            "other-signer-key-substituted",
            good[:18] + bytes(other.verify_key) + good[50:],
            "status-query",
            TS,
            WINDOW,
            1024,
        ),
        (
            "signed-without-domain-prefix",
            good[:sig_at] + key.sign(good[:sig_at]).signature,
            "status-query",
            TS,
            WINDOW,
            1024,
        ),
        (
            "signed-but-bad-purpose-chars",
            _resign(key, _head(b"Status Query", key, TS, nonce, body)),
            "status-query",
            TS,
            WINDOW,
            1024,
        ),
        (
            # A receiver whose clock is as far off as the signer's still refuses it.
            "signed-but-timestamp-above-2^63-1",
            _resign(key, _head(b"status-query", key, 2**63, nonce, body)),
            "status-query",
            2**63,
            WINDOW,
            1024,
        ),
    ]
    open_cases: list[Record] = []
    for name, data, purpose_s, now, window, max_body in open_inputs:
        record: Record = {
            "id": f"open/{name}",
            "envelope": data.hex(),
            "expected_purpose": purpose_s,
            "now": now,
            "window_seconds": window,
            "max_body": max_body,
        }

        def run(
            data: bytes = data,
            p: str = purpose_s,
            now: int = now,
            w: int = window,
            m: int = max_body,
        ) -> envelope.OpenedEnvelope:
            return envelope.open(data, p, now, w, m)

        if name.startswith("valid"):
            opened = run()
            assert opened.body == body and opened.replay_key.hex() == ok["replay_key"]
            record["result"] = ok
        else:
            record["error"] = error_of(run)
        open_cases.append(record)

    # Partner HTTP request signatures.
    partner = nacl.signing.SigningKey(fixed("partner signer"))
    req_nonce = fixed("partner nonce", 16)
    req_body = b'{"since":0}'
    sig = envelope.sign_partner_request(
        partner, "POST", "/v1/feed?after=42", req_body, TS, req_nonce
    )
    message = envelope.partner_request_message(
        "POST", "/v1/feed?after=42", hashlib.sha256(req_body).digest(), TS, req_nonce
    )
    partner_cases: list[Record] = []
    base = {
        "signing_seed": fixed("partner signer").hex(),
        "public_key": bytes(partner.verify_key).hex(),
        "method": "POST",
        "path": "/v1/feed?after=42",
        "body": req_body.hex(),
        "timestamp": TS,
        "nonce": req_nonce.hex(),
    }
    partner_cases.append(
        {
            "id": "request/sign",
            **base,
            "message": message.hex(),
            "signature": sig.signature.hex(),
            "header": sig.to_header(),
        }
    )
    header = sig.to_header()
    path = "/v1/feed?after=42"
    pk = bytes(partner.verify_key)
    noncanon = header[:-1] + _noncanonical_tail(header[-1])
    verify_inputs: list[tuple[str, str, str, str, bytes, int, bytes]] = [
        ("valid", header, "POST", path, req_body, TS + WINDOW, pk),
        ("wrong-method", header, "GET", path, req_body, TS, pk),
        ("wrong-path", header, "POST", "/v1/feed?after=43", req_body, TS, pk),
        ("wrong-body", header, "POST", path, b"{}", TS, pk),
        ("wrong-key", header, "POST", path, req_body, TS, bytes(other.verify_key)),
        ("stale", header, "POST", path, req_body, TS + WINDOW + 1, pk),
        ("header-extra-space", header + " ", "POST", path, req_body, TS, pk),
        ("header-v2", "v2" + header[2:], "POST", path, req_body, TS, pk),
        ("header-ts-leading-zero", header.replace(f"ts={TS}", f"ts=0{TS}"), "POST", path,
         req_body, TS, pk),
        ("header-sig-noncanonical", noncanon, "POST", path, req_body, TS, pk),
        ("path-with-space", header, "POST", "/v1/feed after", req_body, TS, pk),
        ("method-lowercase", header, "post", path, req_body, TS, pk),
    ]  # fmt: skip
    for name, hdr, method, rpath, rbody, now, pub in verify_inputs:
        record = {
            "id": f"request/verify/{name}",
            "header": hdr,
            "method": method,
            "path": rpath,
            "body": rbody.hex(),
            "now": now,
            "window_seconds": WINDOW,
            "expected_public_key": pub.hex(),
        }

        def check(
            hdr: str = hdr, method: str = method, path: str = rpath, rbody: bytes = rbody,
            now: int = now, pub: bytes = pub,
        ) -> None:  # fmt: skip
            parsed = envelope.RequestSignature.from_header(hdr)
            envelope.verify_partner_request(pub, parsed, method, path, rbody, now, WINDOW)

        if name == "valid":
            check()
            record["result"] = "ok"
        else:
            record["error"] = error_of(check)
        partner_cases.append(record)

    return {
        "seal.json": seal_cases,
        "open.json": open_cases,
        "partner_request.json": partner_cases,
    }


# -- commitment -----------------------------------------------------------------------------


def build_commitment() -> dict[str, Any]:
    entries = {
        "empty": b"",
        "pdq-entry": b"\x01" + fixed("pdq hash", 32),
        "text": b"addition v1 pdq 0123456789abcdef",
        "long": bytes(range(256)) * 4,
    }
    commit_cases: list[Record] = []
    for name, entry in entries.items():
        salt = fixed(f"salt {name}")
        value = commitment.commit(entry, salt)
        commit_cases.append(
            {
                "id": f"commit/{name}",
                "entry": entry.hex(),
                "salt": salt.hex(),
                "commitment": value.hex(),
            }
        )
    entry = entries["text"]
    salt = fixed("salt text")
    value = commitment.commit(entry, salt)
    bad: list[tuple[str, bytes, bytes, bytes]] = [
        ("entry-changed", entry + b"x", salt, value),
        ("entry-prefix", entry[:-1], salt, value),
        ("salt-changed", entry, flip(salt, 31), value),
        ("commitment-changed", entry, salt, flip(value, 0)),
        ("salt-short", entry, salt[:31], value),
        ("salt-long", entry, salt + b"\x00", value),
        ("commitment-short", entry, salt, value[:31]),
    ]
    for name, e, s, c in bad:
        commit_cases.append(
            {
                "id": f"verify/{name}",
                "entry": e.hex(),
                "salt": s.hex(),
                "commitment": c.hex(),
                "error": error_of(partial(commitment.verify_commitment, e, s, c)),
            }
        )

    leaf_cases: list[Record] = []
    for kind in commitment.LeafKind:
        c = commitment.commit(b"entry " + kind.name.encode(), fixed(f"leaf salt {kind.name}"))
        leaf_cases.append(
            {
                "id": f"leaf/{kind.name.lower()}",
                "kind": kind.name.lower(),
                "commitment": c.hex(),
                "leaf": commitment.encode_leaf(kind, c).hex(),
            }
        )
    good = bytes.fromhex(leaf_cases[0]["leaf"])
    bad_leaves = {
        "empty": b"",
        "short": good[:-1],
        "trailing": good + b"\x00",
        "version-0": b"\x00" + good[1:],
        "version-2": b"\x02" + good[1:],
        "kind-0": good[:1] + b"\x00" + good[2:],
        "kind-3": good[:1] + b"\x03" + good[2:],
        "kind-255": good[:1] + b"\xff" + good[2:],
    }
    for name, data in bad_leaves.items():
        leaf_cases.append(
            {
                "id": f"leaf/bad/{name}",
                "leaf": data.hex(),
                "error": error_of(partial(commitment.decode_leaf, data)),
            }
        )
    return {"commit.json": commit_cases, "leaf.json": leaf_cases}


# -- deterministic HPKE sender (TEST TOOLING ONLY) -------------------------------------------
#
# crypto/feed.py wraps keys with pyca/cryptography's HPKE, which always draws its own ephemeral
# key, so its wraps cannot be reproduced. To publish fixed wrap vectors we need an RFC 9180
# sender that takes the ephemeral key as an argument; this is it. It exists only to generate
# specs/vectors/feed/wrap.json, is never imported by crypto/ or any runtime code, and every wrap
# it makes is checked below to open with the runtime (library) unwrap. Suite: DHKEM(X25519,
# HKDF-SHA256) 0x0020, HKDF-SHA256 0x0001, ChaCha20Poly1305 0x0003; base mode, empty aad.

_HPKE_KEM_SUITE = b"KEM" + struct.pack(">H", 0x0020)
_HPKE_SUITE = b"HPKE" + struct.pack(">HHH", 0x0020, 0x0001, 0x0003)


def _hpke_extract(suite: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    """RFC 9180 section 4 LabeledExtract (HKDF-Extract = HMAC-SHA256 keyed by the salt)."""
    return hmac.new(salt, b"HPKE-v1" + suite + label + ikm, hashlib.sha256).digest()


def _hpke_expand(suite: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    """RFC 9180 section 4 LabeledExpand."""
    labeled = struct.pack(">H", length) + b"HPKE-v1" + suite + label + info
    return HKDFExpand(hashes.SHA256(), length, labeled).derive(prk)


def deterministic_hpke_wrap(
    key: bytes, recipient_public: bytes, binding: feed.BatchBinding, ephemeral: bytes
) -> bytes:
    """The v1 feed wrap of ``key`` that crypto.feed.wrap_key would make if the library had
    drawn ``ephemeral`` (32-byte X25519 private key): "NCFW" 01 || enc || ct."""
    sk_e = X25519PrivateKey.from_private_bytes(ephemeral)
    pk_r = X25519PublicKey.from_public_bytes(recipient_public)
    enc = feed.recipient_public_bytes(sk_e)
    # DHKEM Encap (RFC 9180 section 4.1): kem_context = enc || pkRm.
    dh = sk_e.exchange(pk_r)
    eae_prk = _hpke_extract(_HPKE_KEM_SUITE, b"", b"eae_prk", dh)
    shared = _hpke_expand(
        _HPKE_KEM_SUITE, eae_prk, b"shared_secret", enc + feed.recipient_public_bytes(pk_r), 32
    )
    # KeySchedule (section 5.1), mode_base with the default empty psk and psk_id.
    psk_id_hash = _hpke_extract(_HPKE_SUITE, b"", b"psk_id_hash", b"")
    info_hash = _hpke_extract(_HPKE_SUITE, b"", b"info_hash", binding.wrap_info())
    context = b"\x00" + psk_id_hash + info_hash
    secret = _hpke_extract(_HPKE_SUITE, shared, b"secret", b"")
    aead_key = _hpke_expand(_HPKE_SUITE, secret, b"key", context, 32)
    base_nonce = _hpke_expand(_HPKE_SUITE, secret, b"base_nonce", context, 12)
    # Single-shot Seal (sections 5.2, 6.1): first message, so the nonce is base_nonce.
    ct = ChaCha20Poly1305(aead_key).encrypt(base_nonce, key, b"")
    return feed.WRAP_MAGIC + bytes((feed.FORMAT_VERSION,)) + enc + ct


# -- feed -----------------------------------------------------------------------------------


def build_feed() -> dict[str, Any]:
    origin = "hub.example.org/ncii-log"
    binding = feed.BatchBinding(origin, 256, 512)
    key = fixed("batch key")
    nonce = fixed("batch nonce", 24)
    plaintexts = {
        "empty": b"",
        "small": b"entry 256\nentry 257\n",
        "4k": bytes(i % 251 for i in range(4096)),
    }
    batch_cases: list[Record] = []

    def bind(b: feed.BatchBinding) -> Record:
        return {"origin": b.origin, "start": b.start, "end": b.end}

    for name, pt in plaintexts.items():
        sealed = feed.seal_batch(pt, binding, key, nonce).encode()
        batch_cases.append(
            {
                "id": f"batch/seal/{name}",
                "binding": bind(binding),
                "binding_encoding": binding.encode().hex(),
                "aad": binding.batch_aad().hex(),
                "key": key.hex(),
                "nonce": nonce.hex(),
                "plaintext": pt.hex(),
                "sealed": sealed.hex(),
            }
        )
    sealed = feed.seal_batch(plaintexts["small"], binding, key, nonce).encode()
    bad_batches: list[tuple[str, bytes, feed.BatchBinding, bytes]] = [
        ("other-origin", sealed, feed.BatchBinding("hub.example.org/other-log", 256, 512), key),
        ("other-start", sealed, feed.BatchBinding(origin, 255, 512), key),
        ("other-end", sealed, feed.BatchBinding(origin, 256, 513), key),
        ("wrong-key", sealed, binding, flip(key, 0)),
        ("altered-nonce", flip(sealed, 5), binding, key),
        ("altered-ciphertext", flip(sealed, 30), binding, key),
        ("altered-tag", flip(sealed, len(sealed) - 1), binding, key),
        ("truncated", sealed[:-1], binding, key),
        ("truncated-header", sealed[:20], binding, key),
        ("trailing", sealed + b"\x00", binding, key),
        ("bad-magic", b"NCFX" + sealed[4:], binding, key),
        ("version-2", sealed[:4] + b"\x02" + sealed[5:], binding, key),
    ]
    for name, data, b, k in bad_batches:
        batch_cases.append(
            {
                "id": f"batch/open/{name}",
                "binding": bind(b),
                "key": k.hex(),
                "sealed": data.hex(),
                "error": error_of(partial(feed.open_batch, data, b, k)),
            }
        )
    batch_cases.append(
        {
            "id": "batch/open/over-limit",
            "binding": bind(binding),
            "key": key.hex(),
            "sealed": sealed.hex(),
            "max_size": len(sealed) - 1,
            "error": error_of(lambda: feed.open_batch(sealed, binding, key, len(sealed) - 1)),
        }
    )

    recipients = [feed.load_recipient_private(fixed(f"partner x25519 {i}")) for i in (1, 2)]
    wrap_cases: list[Record] = []
    wraps = []
    for i, sk in enumerate(recipients, 1):
        eph = fixed(f"ephemeral {i}")
        wrap = deterministic_hpke_wrap(key, feed.recipient_public_bytes(sk), binding, eph)
        # Cross-check the test-only sender against the runtime (library) HPKE.
        assert feed.unwrap_key(wrap, sk, binding) == key
        wraps.append(wrap)
        wrap_cases.append(
            {
                "id": f"wrap/partner{i}",
                "binding": bind(binding),
                "info": binding.wrap_info().hex(),
                "key": key.hex(),
                "recipient_private": fixed(f"partner x25519 {i}").hex(),
                "recipient_public": feed.recipient_public_bytes(sk).hex(),
                "ephemeral_private": eph.hex(),
                "wrap": wrap.hex(),
            }
        )
    wrap = wraps[0]
    sk1 = fixed("partner x25519 1")
    bad_wraps: list[tuple[str, bytes, bytes, feed.BatchBinding]] = [
        ("wrong-recipient", wrap, fixed("partner x25519 2"), binding),
        ("other-origin", wrap, sk1, feed.BatchBinding("hub.example.org/other-log", 256, 512)),
        ("other-start", wrap, sk1, feed.BatchBinding(origin, 0, 512)),
        ("other-end", wrap, sk1, feed.BatchBinding(origin, 256, 768)),
        ("altered-enc", flip(wrap, 5), sk1, binding),
        ("altered-ciphertext", flip(wrap, 40), sk1, binding),
        ("altered-tag", flip(wrap, len(wrap) - 1), sk1, binding),
        ("low-order-enc", wrap[:5] + bytes(32) + wrap[37:], sk1, binding),
        ("truncated", wrap[:-1], sk1, binding),
        ("trailing", wrap + b"\x00", sk1, binding),
        ("bad-magic", b"NCFB" + wrap[4:], sk1, binding),
        ("version-0", wrap[:4] + b"\x00" + wrap[5:], sk1, binding),
    ]
    for name, data, sk_raw, b in bad_wraps:
        wrap_cases.append(
            {
                "id": f"unwrap/{name}",
                "binding": bind(b),
                "recipient_private": sk_raw.hex(),
                "wrap": data.hex(),
                "error": error_of(partial(feed.unwrap_key, data, sk_raw, b)),
            }
        )
    bad_bindings = [
        ("empty-origin", "", 0, 1),
        ("origin-with-space", "hub example", 0, 1),
        ("origin-non-ascii", "hüb.example", 0, 1),
        ("origin-256", "a" * 256, 0, 1),
        ("empty-range", origin, 5, 5),
        ("reversed-range", origin, 6, 5),
        ("negative-start", origin, -1, 5),
        ("end-too-large", origin, 0, 2**63),
    ]
    binding_cases: list[Record] = [
        {
            "id": "binding/valid",
            "binding": bind(binding),
            "encoding": binding.encode().hex(),
        }
    ]
    for name, o, s, e in bad_bindings:
        binding_cases.append(
            {
                "id": f"binding/{name}",
                "binding": {"origin": o, "start": s, "end": e},
                "error": error_of(partial(feed.BatchBinding, o, s, e)),
            }
        )
    return {"batch.json": batch_cases, "wrap.json": wrap_cases, "binding.json": binding_cases}


# -- case -----------------------------------------------------------------------------------


def build_case() -> dict[str, Any]:
    secrets = {
        "zero": bytes(16),
        "ones": b"\xff" * 16,
        "counting": bytes(range(16)),
        "fixed-a": fixed("case secret a", 16),
        "fixed-b": fixed("case secret b", 16),
    }
    derive_cases: list[Record] = []
    for name, raw in secrets.items():
        s = case.CaseSecret(raw)
        derive_cases.append(
            {
                "id": f"derive/{name}",
                "secret": raw.hex(),
                "recovery_code": s.recovery_code(),
                "signing_seed": bytes(s.signing_key()).hex(),
                "public_key": s.public_key().hex(),
                "case_id": s.case_id(),
            }
        )
    s = case.CaseSecret(secrets["fixed-a"])
    code = s.recovery_code()
    plain = code.replace("-", "")
    parse_cases: list[Record] = []
    accepted = {
        "canonical": code,
        "lowercase": code.lower(),
        "spaces": " ".join(code.split("-")),
        "no-separators": plain,
        "mixed-separators": plain[:4] + " - " + plain[4:14] + "  " + plain[14:],
    }
    confused = code.replace("0", "O").replace("1", "l")
    if confused != code:
        accepted["o-and-l-for-0-and-1"] = confused
    confused_i = code.replace("1", "I")
    if confused_i != code:
        accepted["i-for-1"] = confused_i
    for name, text in accepted.items():
        assert case.CaseSecret.from_recovery_code(text) == s
        parse_cases.append(
            {"id": f"parse/{name}", "code": text, "secret": secrets["fixed-a"].hex()}
        )

    def bad(name: str, text: str) -> None:
        group: int | None = None
        try:
            case.CaseSecret.from_recovery_code(text)
        except RecoveryCodeError as exc:
            group = exc.group
        else:
            raise AssertionError(f"{name}: accepted")
        parse_cases.append(
            {"id": f"parse/bad/{name}", "code": text, "error": "RecoveryCodeError", "group": group}
        )

    def substitute(pos: int) -> str:
        chars = list(plain)
        chars[pos] = case.ALPHABET[(case.ALPHABET.index(chars[pos]) + 7) % 32]
        return "".join(chars)

    for pos in (0, 5, 13, 22, 26, 27):
        bad(f"substitution-at-{pos}", substitute(pos))
    for pos in (0, 3, 11, 26):
        chars = list(plain)
        if chars[pos] == chars[pos + 1]:
            continue
        chars[pos], chars[pos + 1] = chars[pos + 1], chars[pos]
        bad(f"transposition-at-{pos}", "".join(chars))
    bad("too-short", plain[:-1])
    bad("too-long", plain + "0")
    bad("empty", "")
    bad("letter-u-in-group-3", plain[:9] + "U" + plain[10:])
    bad("punctuation-in-group-7", plain[:25] + "." + plain[26:])
    bad("non-ascii", plain[:2] + "\u00e9" + plain[3:])
    # A valid codeword whose first character is >= 8: well-formed checksum, not a secret.
    data = [8] + [0] * 25
    c26, c27 = case._check_symbols(data)
    bad("first-char-out-of-range", "".join(case.ALPHABET[v] for v in [*data, c26, c27]))

    ids: list[Record] = []
    pub = bytes.fromhex(derive_cases[3]["public_key"])
    cid = derive_cases[3]["case_id"]
    ids.append({"id": "case-id/canonical", "text": cid, "case_id": cid})
    ids.append(
        {
            "id": "case-id/dashed-lower",
            "text": "-".join(cid[i : i + 4] for i in range(0, 16, 4)).lower(),
            "case_id": cid,
        }
    )
    for name, text in {"short": cid[:-1], "long": cid + "0", "bad-char": cid[:-1] + "U"}.items():
        ids.append(
            {"id": f"case-id/bad/{name}", "text": text,
             "error": error_of(partial(case.parse_case_id, text))}
        )  # fmt: skip
    assert case.case_id(pub) == cid
    return {"derive.json": derive_cases, "recovery_code.json": parse_cases, "case_id.json": ids}


BUILDERS: dict[str, Callable[[], dict[str, Any]]] = {
    "envelope": build_envelope,
    "commitment": build_commitment,
    "feed": build_feed,
    "case": build_case,
}


def render(cases: Any) -> str:
    """The exact text written to a vector file."""
    return json.dumps({"version": 1, "cases": cases}, indent=1, ensure_ascii=True) + "\n"


def main() -> None:
    for area, build in BUILDERS.items():
        directory = OUT / area
        directory.mkdir(parents=True, exist_ok=True)
        for filename, cases in build().items():
            (directory / filename).write_text(render(cases), encoding="utf-8")
            print(f"wrote {area}/{filename}: {len(cases)} cases")


if __name__ == "__main__":
    main()
