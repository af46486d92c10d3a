"""Generate specs/vectors/note/: keys, signed notes, checkpoints and cosignatures, good and bad.

Deterministic: every key comes from a seed SHA-256("ncii-vectors/note/" + label), every timestamp
is fixed, and Ed25519 signing is deterministic (RFC 8032). Run from anywhere:

    .venv/bin/python specs/vectors/generate_note.py

One JSON file per case, in a folder per area (keys/, notes/, checkpoints/, cosignatures/).
Each case names the operation (``op``) it exercises, its inputs, and ``expect``: ``"ok"`` or
the name of the crypto.errors class the operation must raise. Byte inputs are in ``*_b64``
fields (standard base64) so that invalid UTF-8 survives; a readable copy is added when the
bytes are valid UTF-8. tests/test_note_vectors.py replays every file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from crypto.checkpoint import Checkpoint, sign_checkpoint  # noqa: E402
from crypto.cosignature import add_cosignature  # noqa: E402
from crypto.keys import (  # noqa: E402
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    SignerKey,
    signer_key_from_seed,
)
from crypto.note import NoteSignature, UnverifiedNote, parse_note, sign_note  # noqa: E402

OUT = Path(__file__).resolve().parent / "note"
TS = 1767225600  # 2026-01-01T00:00:00Z


def seed(label: str) -> bytes:
    return hashlib.sha256(b"ncii-vectors/note/" + label.encode()).digest()


def key(label: str, name: str, alg: int = ALG_ED25519) -> SignerKey:
    return signer_key_from_seed(name, seed(label), alg)


LOG = key("log", "log.example.org/ncii")
LOG2 = key("log2", "log.example.org/ncii-next")
HUB = key("hub", "hub.example.org")
OTHER = key("other", "other.example.net")
W1 = key("w1", "witness1.example.com", ALG_COSIGNATURE_V1)
W2 = key("w2", "witness2.example.com", ALG_COSIGNATURE_V1)
W3 = key("w3", "witness3.example.com", ALG_COSIGNATURE_V1)
ORIGIN = LOG.name
ROOT_HASH = hashlib.sha256(b"ncii-vectors/note/root").digest()

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

cases: dict[str, dict[str, Any]] = {}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def add(case_id: str, description: str, op: str, expect: str, **fields: Any) -> None:
    assert case_id not in cases, case_id
    record: dict[str, Any] = {"description": description, "op": op, "expect": expect}
    for name, value in fields.items():
        if isinstance(value, bytes):
            record[name + "_b64"] = b64(value)
            try:
                record[name + "_text"] = value.decode("utf-8")
            except UnicodeDecodeError:
                pass
        else:
            record[name] = value
    cases[case_id] = record


def vk(s: SignerKey) -> str:
    return s.verifier.encode()


def line(name: str, key_id: int, sig: bytes) -> bytes:
    return NoteSignature(name, key_id, sig).encode_line()


def raw_line(name: str, payload: bytes) -> bytes:
    return "\u2014 ".encode() + name.encode() + b" " + b64(payload).encode() + b"\n"


def swap_sig(note: bytes, index: int, signature: bytes) -> bytes:
    parsed = parse_note(note)
    sigs = list(parsed.signatures)
    old = sigs[index]
    sigs[index] = NoteSignature(old.name, old.key_id, signature)
    return UnverifiedNote(parsed.text, tuple(sigs)).encode()


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


# -- keys -------------------------------------------------------------------------------------


def gen_keys() -> None:
    for label, k in [("log", LOG), ("hub", HUB), ("w1", W1), ("w2", W2), ("w3", W3)]:
        add(
            f"keys/{label}",
            f"{'cosignature/v1' if k.alg == ALG_COSIGNATURE_V1 else 'Ed25519'} key {k.name}",
            "keypair",
            "ok",
            seed_hex=seed(label).hex(),
            name=k.name,
            alg=k.alg,
            key_id=f"{k.key_id:08x}",
            signer_key=k.encode(),
            verifier_key=vk(k),
            public_key_hex=k.verifier.public_key.hex(),
        )
    good = vk(LOG)
    name, hid, b = good.split("+", 2)
    raw = base64.b64decode(b)
    pub = raw[1:]
    bad_v = {
        "empty": "",
        "no-plus": "log.example.org",
        "two-parts": f"{name}+{hid}",
        "empty-name": f"+{hid}+{b}",
        "name-with-space": f"log example+{hid}+{b}",
        "name-with-nbsp": f"log\u00a0example+{hid}+{b}",
        "uppercase-key-id": f"{name}+{hid.upper()}+{b}",
        "short-key-id": f"{name}+{hid[:7]}+{b}",
        "non-hex-key-id": f"{name}+{hid[:7]}g+{b}",
        "wrong-key-id": f"{name}+{(int(hid, 16) ^ 1):08x}+{b}",
        "unknown-alg-02": f"{name}+{hid}+{b64(bytes([2]) + pub)}",
        "key-31-bytes": f"{name}+{hid}+{b64(raw[:-1])}",
        "key-33-bytes": f"{name}+{hid}+{b64(raw + bytes(1))}",
        "base64-extra-padding": f"{name}+{hid}+{b}=",
        "base64-bad-char": f"{name}+{hid}+{b[:-1]}!",
        "base64-urlsafe": f"{name}+{hid}+{b.replace('+', '-').replace('/', '_')}",
        "trailing-newline": good + "\n",
        "leading-space": " " + good,
        "private-key-as-verifier": LOG.encode(),
    }
    for case, text in bad_v.items():
        add(
            f"keys/bad-verifier/{case}",
            f"verifier key: {case}",
            "parse_verifier_key",
            "KeyFormatError",
            input=text.encode("utf-8"),
        )
    add(
        "keys/bad-verifier/not-utf8",
        "verifier key bytes that are not UTF-8",
        "parse_verifier_key",
        "KeyFormatError",
        input=b"log\xff+" + hid.encode() + b"+" + b.encode(),
    )
    sgood = LOG.encode()
    _, _, sname, shid, sb = sgood.split("+", 4)
    sraw = base64.b64decode(sb)
    bad_s = {
        "no-prefix": f"{sname}+{shid}+{sb}",
        "lowercase-prefix": f"private+key+{sname}+{shid}+{sb}",
        "wrong-key-id": f"PRIVATE+KEY+{sname}+{(int(shid, 16) ^ 1):08x}+{sb}",
        "unknown-alg-05": f"PRIVATE+KEY+{sname}+{shid}+{b64(bytes([5]) + sraw[1:])}",
        "seed-31-bytes": f"PRIVATE+KEY+{sname}+{shid}+{b64(sraw[:-1])}",
        "verifier-as-signer": good,
        "name-with-plus-missing-id": f"PRIVATE+KEY+{sname}+{sb}",
    }
    for case, text in bad_s.items():
        add(
            f"keys/bad-signer/{case}",
            f"signer key: {case}",
            "parse_signer_key",
            "KeyFormatError",
            input=text.encode("utf-8"),
        )


# -- notes ------------------------------------------------------------------------------------


def gen_notes() -> None:
    text = b"NCII exchange test note.\nSecond line.\n"
    one = sign_note(text, [HUB])
    add(
        "notes/sign/one-signer",
        "deterministic Ed25519 signature",
        "sign_note",
        "ok",
        text=text,
        signer_keys=[HUB.encode()],
        note=one,
    )
    two = sign_note(text, [HUB, LOG])
    add(
        "notes/sign/two-signers",
        "two signers, in order",
        "sign_note",
        "ok",
        text=text,
        signer_keys=[HUB.encode(), LOG.encode()],
        note=two,
    )

    def ok(
        cid: str, desc: str, note: bytes, keys: list[SignerKey], verified: list[str], **kw: Any
    ) -> None:
        add(
            f"notes/{cid}",
            desc,
            "open_note",
            "ok",
            note=note,
            verifier_keys=[vk(k) for k in keys],
            verified_by=verified,
            text=parse_note(note, **kw).text,
            **{k: v for k, v in kw.items()},
        )

    def bad(cid: str, desc: str, note: bytes, keys: list[SignerKey], err: str, **kw: Any) -> None:
        add(
            f"notes/{cid}",
            desc,
            "open_note",
            err,
            note=note,
            verifier_keys=[vk(k) for k in keys],
            **kw,
        )

    ok("ok/one-signature", "one trusted signature", one, [HUB], [HUB.name])
    ok("ok/two-trusted", "two trusted signatures", two, [HUB, LOG], [HUB.name, LOG.name])
    ok(
        "ok/one-of-two-trusted",
        "second signature by a key not trusted is ignored",
        two,
        [LOG],
        [LOG.name],
    )
    unk = one + raw_line("unknown.example", b"\x01\x02\x03\x04" + bytes(64))
    ok(
        "ok/unknown-garbage-signature",
        "unknown key's (garbage) signature is ignored",
        unk,
        [HUB],
        [HUB.name],
    )
    blank = b"first paragraph\n\nsecond paragraph\n\n"
    ok(
        "ok/text-with-blank-lines",
        "text may contain blank lines, even at its end",
        sign_note(blank, [HUB]),
        [HUB],
        [HUB.name],
    )
    uni = (
        "Ognuno sta solo sul cuor della terra\ned \u00e8 subito sera. \u2014 \U0001f512\n".encode()
    )
    ok(
        "ok/unicode-text",
        "non-ASCII text, em dash inside the text",
        sign_note(uni, [HUB]),
        [HUB],
        [HUB.name],
    )
    ok(
        "ok/del-char",
        "U+007F is not an ASCII control character below U+0020",
        sign_note(b"delete \x7f char\n", [HUB]),
        [HUB],
        [HUB.name],
    )
    ok(
        "ok/newline-only-text",
        "the text may be a single empty line",
        sign_note(b"\n", [HUB]),
        [HUB],
        [HUB.name],
    )
    ukeys = [key(f"u{i}", f"u{i}.example") for i in range(99)]
    many = sign_note(text, [HUB, *ukeys])
    ok(
        "ok/100-signatures",
        "exactly the default limit of 100 signature lines",
        many,
        [HUB],
        [HUB.name],
    )
    dup = one + one[one.rfind(b"\n\n") + 2 :]
    ok(
        "ok/duplicate-line",
        "the same valid line twice: both verified, key listed once",
        dup,
        [HUB],
        [HUB.name],
    )
    cos = sign_checkpoint(Checkpoint(ORIGIN, 10, ROOT_HASH), [LOG])
    cos = add_cosignature(cos, W1, timestamp=TS)
    ok(
        "ok/cosignature-key",
        "a cosignature/v1 key verifies its line as a note signature",
        cos,
        [W1],
        [W1.name],
    )

    bad(
        "bad/no-known/unknown-key",
        "only a signature by a key not trusted",
        one,
        [OTHER],
        "NoKnownSignatureError",
    )
    bad("bad/no-known/no-keys", "no trusted keys at all", one, [], "NoKnownSignatureError")
    sig = parse_note(one).signatures[0]
    bad(
        "bad/no-known/name-mismatch",
        "right key ID, other name: not the trusted key",
        text + b"\n" + line("hub.example.com", sig.key_id, sig.signature),
        [HUB],
        "NoKnownSignatureError",
    )
    bad(
        "bad/no-known/key-id-mismatch",
        "right name, other key ID: not the trusted key",
        text + b"\n" + line(sig.name, sig.key_id ^ 1, sig.signature),
        [HUB],
        "NoKnownSignatureError",
    )
    bad(
        "bad/invalid/text-changed",
        "text altered after signing",
        one.replace(b"Second", b"Secund"),
        [HUB],
        "InvalidSignatureError",
    )
    bad(
        "bad/invalid/signature-bit",
        "one bit of the signature flipped",
        swap_sig(one, 0, flip(sig.signature, 10)),
        [HUB],
        "InvalidSignatureError",
    )
    bad(
        "bad/invalid/one-bad-of-two",
        "a bad trusted signature rejects the note even if another trusted one verifies",
        swap_sig(two, 1, flip(parse_note(two).signatures[1].signature, 0)),
        [HUB, LOG],
        "InvalidSignatureError",
    )
    bad(
        "bad/invalid/good-then-bad-same-key",
        "same key twice, second line bad",
        one + line(sig.name, sig.key_id, flip(sig.signature, 63)),
        [HUB],
        "InvalidSignatureError",
    )
    bad(
        "bad/invalid/short-signature",
        "63-byte Ed25519 signature by a trusted key",
        swap_sig(one, 0, sig.signature[:63]),
        [HUB],
        "InvalidSignatureError",
    )
    bad(
        "bad/invalid/long-signature",
        "65-byte Ed25519 signature by a trusted key",
        swap_sig(one, 0, sig.signature + b"\x00"),
        [HUB],
        "InvalidSignatureError",
    )
    bad(
        "bad/invalid/signature-over-other-text",
        "a valid signature for another text",
        b"Another text.\n\n" + one[one.rfind(b"\n\n") + 2 :],
        [HUB],
        "InvalidSignatureError",
    )

    sigblock = one[one.rfind(b"\n\n") + 2 :]
    mal = {
        "not-utf8": (b"caf\xe9\n\n" + sigblock, "text is Latin-1, not UTF-8"),
        "overlong-utf8": (b"\xc0\xaf\n\n" + sigblock, "overlong UTF-8 encoding of '/'"),
        "surrogate-utf8": (b"\xed\xa0\x80\n\n" + sigblock, "UTF-8 encoded surrogate"),
        "control-char": (b"bell \x07\n\n" + sigblock, "ASCII BEL in the text"),
        "tab": (b"a\tb\n\n" + sigblock, "tab in the text"),
        "crlf": (
            text.replace(b"\n", b"\r\n") + b"\r\n" + sigblock.replace(b"\n", b"\r\n"),
            "CRLF line endings",
        ),
        "nul": (b"a\x00\n\n" + sigblock, "NUL in the text"),
        "no-blank-line": (text + sigblock, "no blank line before the signatures"),
        "no-trailing-newline": (one[:-1], "last signature line has no newline"),
        "no-signatures": (text + b"\n", "blank line but no signature lines"),
        "empty": (b"", "empty input"),
        "hyphen-not-em-dash": (
            text + b"\n" + b"- " + sigblock[len("\u2014 ".encode()) :],
            "signature line starts with '-' instead of U+2014",
        ),
        "en-dash": (
            text + b"\n" + "\u2013 ".encode() + sigblock[len("\u2014 ".encode()) :],
            "signature line starts with U+2013",
        ),
        "no-space-after-dash": (
            text + b"\n" + sigblock.replace(b" ", b"", 1),
            "em dash not followed by a space",
        ),
        "no-signature-field": (
            text + b"\n" + "\u2014 hub.example.org\n".encode(),
            "no base64 after the name",
        ),
        "empty-signature-field": (
            text + b"\n" + "\u2014 hub.example.org \n".encode(),
            "empty base64 after the name",
        ),
        "double-space": (
            text + b"\n" + sigblock.replace(b"org ", b"org  "),
            "two spaces between name and signature",
        ),
        "trailing-space": (text + b"\n" + sigblock[:-1] + b" \n", "space after the signature"),
        "base64-no-padding": (
            text + b"\n" + sigblock.replace(b"=\n", b"\n"),
            "signature base64 without its padding",
        ),
        "base64-padding-bits": (
            text + b"\n" + raw_line(HUB.name, b"x" * 68)[:-3] + b"Z=\n",
            "non-zero padding bits (non-canonical base64)",
        ),
        "base64-bad-char": (
            text + b"\n" + sigblock.replace(b"=\n", b"!\n"),
            "character outside the base64 alphabet",
        ),
        "signature-4-bytes": (
            text + b"\n" + raw_line(HUB.name, b"\x01\x02\x03\x04"),
            "only a key ID, no signature bytes",
        ),
        "signature-3-bytes": (
            text + b"\n" + raw_line(HUB.name, b"\x01\x02\x03"),
            "shorter than a key ID",
        ),
        "name-with-plus": (
            text + b"\n" + raw_line("hub+example", b"\x00" * 68),
            "key name contains '+'",
        ),
        "name-with-nbsp": (
            text + b"\n" + raw_line("hub\u00a0example", b"\x00" * 68),
            "key name contains U+00A0 (a Unicode space)",
        ),
        "empty-name": (
            text + b"\n" + "\u2014  ".encode() + b64(b"\x00" * 68).encode() + b"\n",
            "empty key name",
        ),
        "blank-line-in-signatures": (one + b"\n", "trailing blank line after the signatures"),
        "text-only": (text, "a bare text, no signature block"),
    }
    for cid, (note, desc) in mal.items():
        bad(f"bad/malformed/{cid}", desc, note, [HUB], "MalformedError")
    bad(
        "bad/malformed/unknown-then-malformed",
        "a malformed line after a valid one still rejects the note",
        one + "\u2014 x AAAA\n".encode(),
        [HUB],
        "MalformedError",
    )
    big_text = b"x" * 1000 + b"\n"
    bad(
        "bad/limit/size",
        "note larger than max_size (1024 here)",
        sign_note(big_text, [HUB]),
        [HUB],
        "LimitExceededError",
        max_size=1024,
    )
    add(
        "notes/ok/size-at-limit",
        "note of exactly max_size bytes",
        "open_note",
        "ok",
        note=sign_note(b"x" * (1024 - 1 - 1 - len(sigblock)) + b"\n", [HUB]),
        verifier_keys=[vk(HUB)],
        verified_by=[HUB.name],
        max_size=1024,
    )
    bad(
        "bad/limit/signatures",
        "101 signature lines, one more than the default limit",
        sign_note(text, [HUB, *ukeys, OTHER]),
        [HUB],
        "LimitExceededError",
    )
    bad(
        "bad/limit/signatures-param",
        "3 signature lines with max_signatures=2",
        sign_note(text, [HUB, LOG, OTHER]),
        [HUB],
        "LimitExceededError",
        max_signatures=2,
    )


# -- checkpoints ------------------------------------------------------------------------------


def gen_checkpoints() -> None:
    root = b64(ROOT_HASH)
    good = {
        "basic": (f"{ORIGIN}\n1234\n{root}\n", ORIGIN, 1234, []),
        "empty-tree": (f"{ORIGIN}\n0\n{b64(hashlib.sha256(b'').digest())}\n", ORIGIN, 0, []),
        "max-size": (f"{ORIGIN}\n{2**64 - 1}\n{root}\n", ORIGIN, 2**64 - 1, []),
        "extensions": (
            f"{ORIGIN}\n7\n{root}\next one\n\u2014 ext two\n",
            ORIGIN,
            7,
            ["ext one", "\u2014 ext two"],
        ),
        "origin-with-space": (f"go.sum database tree\n5\n{root}\n", "go.sum database tree", 5, []),
    }
    for cid, (text, origin, size, ext) in good.items():
        root_b = hashlib.sha256(b"").digest() if cid == "empty-tree" else ROOT_HASH
        add(
            f"checkpoints/parse/ok/{cid}",
            f"checkpoint text: {cid}",
            "parse_checkpoint",
            "ok",
            input=text.encode(),
            origin=origin,
            size=size,
            root_hash_b64=b64(root_b),
            extensions=ext,
        )
    bad = {
        "size-leading-zero": f"{ORIGIN}\n01\n{root}\n",
        "size-00": f"{ORIGIN}\n00\n{root}\n",
        "size-negative": f"{ORIGIN}\n-1\n{root}\n",
        "size-plus-sign": f"{ORIGIN}\n+1\n{root}\n",
        "size-2-64": f"{ORIGIN}\n{2**64}\n{root}\n",
        "size-huge": f"{ORIGIN}\n{'9' * 400}\n{root}\n",
        "size-space": f"{ORIGIN}\n 1\n{root}\n",
        "size-underscore": f"{ORIGIN}\n1_000\n{root}\n",
        "size-hex": f"{ORIGIN}\n0x10\n{root}\n",
        "size-arabic-digit": f"{ORIGIN}\n\u0661\n{root}\n",
        "size-empty": f"{ORIGIN}\n\n{root}\n",
        "root-31-bytes": f"{ORIGIN}\n1\n{b64(ROOT_HASH[:31])}\n",
        "root-33-bytes": f"{ORIGIN}\n1\n{b64(ROOT_HASH + b'x')}\n",
        "root-no-padding": f"{ORIGIN}\n1\n{root.rstrip('=')}\n",
        "root-padding-bits": f"{ORIGIN}\n1\n{root[:-2]}{_B64[_B64.index(root[-2]) | 1]}=\n",
        "root-hex": f"{ORIGIN}\n1\n{ROOT_HASH.hex()}\n",
        "root-urlsafe": f"{ORIGIN}\n1\n{base64.urlsafe_b64encode(bytes([0xFB] * 32)).decode()}\n",
        "empty-origin": f"\n1\n{root}\n",
        "two-lines": f"{ORIGIN}\n1\n",
        "no-final-newline": f"{ORIGIN}\n1\n{root}",
        "trailing-empty-line": f"{ORIGIN}\n1\n{root}\n\n",
        "empty-extension-line": f"{ORIGIN}\n1\n{root}\next\n\nmore\n",
        "crlf": f"{ORIGIN}\r\n1\r\n{root}\r\n",
        "empty": "",
    }
    for cid, text in bad.items():
        add(
            f"checkpoints/parse/bad/{cid}",
            f"checkpoint text: {cid}",
            "parse_checkpoint",
            "MalformedError",
            input=text.encode(),
        )
    add(
        "checkpoints/parse/bad/not-utf8",
        "origin not UTF-8",
        "parse_checkpoint",
        "MalformedError",
        input=b"log\xff\n1\n" + root.encode() + b"\n",
    )

    cp = Checkpoint(ORIGIN, 1234, ROOT_HASH)
    signed = sign_checkpoint(cp, [LOG])
    add(
        "checkpoints/open/ok/log-signed",
        "checkpoint signed by the log",
        "open_checkpoint",
        "ok",
        note=signed,
        verifier_keys=[vk(LOG)],
        origin=ORIGIN,
        size=1234,
        root_hash_b64=root,
    )
    add(
        "checkpoints/open/bad/wrong-origin",
        "valid signature, checkpoint of another log",
        "open_checkpoint",
        "WrongPurposeError",
        note=signed,
        verifier_keys=[vk(LOG)],
        origin=LOG2.name,
    )
    add(
        "checkpoints/open/bad/not-a-checkpoint",
        "valid signature over a text that is not a checkpoint",
        "open_checkpoint",
        "MalformedError",
        note=sign_note(f"{ORIGIN}\n01\n{root}\n".encode(), [LOG]),
        verifier_keys=[vk(LOG)],
        origin=ORIGIN,
    )
    add(
        "checkpoints/open/bad/unknown-key",
        "signed by another key",
        "open_checkpoint",
        "NoKnownSignatureError",
        note=sign_checkpoint(cp, [LOG2]),
        verifier_keys=[vk(LOG)],
        origin=ORIGIN,
    )
    add(
        "checkpoints/open/bad/size-changed",
        "size altered after signing",
        "open_checkpoint",
        "InvalidSignatureError",
        note=signed.replace(b"\n1234\n", b"\n1235\n"),
        verifier_keys=[vk(LOG)],
        origin=ORIGIN,
    )


# -- cosignatures -----------------------------------------------------------------------------


def gen_cosignatures() -> None:
    cp = Checkpoint(ORIGIN, 4321, ROOT_HASH)
    signed = sign_checkpoint(cp, [LOG])
    c1 = add_cosignature(signed, W1, timestamp=TS)
    c2 = add_cosignature(c1, W2, timestamp=TS + 5)
    add(
        "cosignatures/sign/w1",
        "a witness adds its cosignature (deterministic)",
        "add_cosignature",
        "ok",
        input=signed,
        signer_key=W1.encode(),
        timestamp=TS,
        note=c1,
    )
    add(
        "cosignatures/sign/w2",
        "a second witness adds its cosignature",
        "add_cosignature",
        "ok",
        input=c1,
        signer_key=W2.encode(),
        timestamp=TS + 5,
        note=c2,
    )
    add(
        "cosignatures/sign/replace",
        "a witness re-cosigning replaces its earlier line",
        "add_cosignature",
        "ok",
        input=c2,
        signer_key=W1.encode(),
        timestamp=TS + 60,
        note=add_cosignature(c2, W1, timestamp=TS + 60),
    )
    add(
        "cosignatures/sign/bad/ed25519-key",
        "a plain Ed25519 key cannot cosign",
        "add_cosignature",
        "KeyFormatError",
        input=signed,
        signer_key=HUB.encode(),
        timestamp=TS,
    )
    add(
        "cosignatures/sign/bad/not-a-checkpoint",
        "cosigning a note that is not a checkpoint",
        "add_cosignature",
        "MalformedError",
        input=sign_note(b"hello\n", [HUB]),
        signer_key=W1.encode(),
        timestamp=TS,
    )
    add(
        "cosignatures/sign/bad/timestamp-2-63",
        "timestamp above 2^63-1",
        "add_cosignature",
        "MalformedError",
        input=signed,
        signer_key=W1.encode(),
        timestamp=2**63,
    )

    add(
        "cosignatures/verify/ok/w2",
        "one witness's cosignature and its timestamp",
        "verify_cosignature",
        "ok",
        note=c2,
        witness_key=vk(W2),
        origin=ORIGIN,
        timestamp=TS + 5,
    )
    add(
        "cosignatures/verify/bad/absent",
        "witness 3 did not cosign",
        "verify_cosignature",
        "NoKnownSignatureError",
        note=c2,
        witness_key=vk(W3),
        origin=ORIGIN,
    )
    add(
        "cosignatures/verify/bad/ed25519-key",
        "a type 0x01 key is not a witness key",
        "verify_cosignature",
        "KeyFormatError",
        note=c2,
        witness_key=vk(LOG),
        origin=ORIGIN,
    )
    add(
        "cosignatures/verify/bad/wrong-origin",
        "cosigned checkpoint of another log",
        "verify_cosignature",
        "WrongPurposeError",
        note=c2,
        witness_key=vk(W1),
        origin=LOG2.name,
    )

    def quorum(
        cid: str,
        desc: str,
        note: bytes,
        q: int,
        expect: str,
        witnesses: list[SignerKey] | None = None,
        log: SignerKey = LOG,
        **kw: Any,
    ) -> None:
        ws = [W1, W2, W3] if witnesses is None else witnesses
        add(
            f"cosignatures/quorum/{cid}",
            desc,
            "open_cosigned_checkpoint",
            expect,
            note=note,
            log_key=vk(log),
            witness_keys=[vk(w) for w in ws],
            origin=ORIGIN,
            quorum=q,
            **kw,
        )

    quorum(
        "ok/2-of-3",
        "two of three witnesses cosigned",
        c2,
        2,
        "ok",
        timestamps={W1.name: TS, W2.name: TS + 5},
    )
    quorum("ok/0-of-3", "quorum 0: the log signature alone", signed, 0, "ok", timestamps={})
    quorum("bad/3-of-3", "three required, two present", c2, 3, "NoKnownSignatureError")
    quorum("bad/1-of-3-none", "one required, none present", signed, 1, "NoKnownSignatureError")
    cos_only = c2[: c2.rfind(b"\n\n") + 2] + b"".join(
        s.encode_line() for s in parse_note(c2).signatures[1:]
    )
    quorum(
        "bad/no-log-signature",
        "cosignatures but no log signature",
        cos_only,
        2,
        "NoKnownSignatureError",
    )
    quorum(
        "bad/wrong-log-key", "signed by another log key", c2, 2, "NoKnownSignatureError", log=LOG2
    )
    w2sig = parse_note(c2).signatures[2].signature
    quorum(
        "bad/bad-cosignature",
        "a configured witness's cosignature does not verify",
        swap_sig(c2, 2, flip(w2sig, 20)),
        1,
        "InvalidSignatureError",
    )
    quorum(
        "bad/timestamp-changed",
        "timestamp bytes changed: the signed message changes",
        swap_sig(c2, 2, struct.pack(">Q", TS + 6) + w2sig[8:]),
        1,
        "InvalidSignatureError",
    )
    quorum(
        "bad/timestamp-over-2-63",
        "timestamp above 2^63-1",
        swap_sig(c2, 2, struct.pack(">Q", 2**63) + w2sig[8:]),
        1,
        "InvalidSignatureError",
    )
    quorum(
        "bad/cosignature-64-bytes",
        "cosignature without its timestamp",
        swap_sig(c2, 2, w2sig[8:]),
        1,
        "InvalidSignatureError",
    )
    quorum(
        "bad/log-signature-bad",
        "log signature altered",
        swap_sig(c2, 0, flip(parse_note(c2).signatures[0].signature, 1)),
        0,
        "InvalidSignatureError",
    )
    quorum(
        "bad/wrong-origin",
        "log and witnesses signed a checkpoint of another log",
        add_cosignature(
            sign_checkpoint(Checkpoint(LOG2.name, 1, ROOT_HASH), [LOG]), W1, timestamp=TS
        ),
        1,
        "WrongPurposeError",
    )
    quorum("bad/quorum-too-large", "quorum above the number of witnesses", c2, 4, "MalformedError")
    quorum(
        "bad/duplicate-witness-key",
        "the same public key under two witness names",
        c2,
        2,
        "KeyFormatError",
        witnesses=[W1, W2, key("w1", "witness1b.example.com", ALG_COSIGNATURE_V1)],
    )
    quorum(
        "bad/witness-key-ed25519",
        "a witness configured with a type 0x01 key",
        c2,
        1,
        "KeyFormatError",
        witnesses=[W1, HUB],
    )


def main() -> None:
    gen_keys()
    gen_notes()
    gen_checkpoints()
    gen_cosignatures()
    for old in OUT.rglob("*.json"):
        old.unlink()
    for case_id, record in cases.items():
        path = OUT / f"{case_id}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
