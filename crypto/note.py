"""C2SP signed notes: parse from untrusted bytes, sign, open and verify (specs/signed-note.md).

A note is UTF-8 text ending in a newline, a blank line, then one or more signature lines
``— <key name> <base64(key ID (4, big-endian) || signature)>``. The text is meaningless until
:func:`open_note` has verified it against keys the caller trusts; :func:`parse_note` exists for
tools that must look at signatures first (a witness adding its own, a debugger) and its result
says so in its type name.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from crypto.errors import (
    KeyFormatError,
    LimitExceededError,
    MalformedError,
    NoKnownSignatureError,
)
from crypto.keys import ALG_ED25519, SignerKey, VerifierKey, b64decode_canonical, check_key_name

__all__ = [
    "DEFAULT_MAX_NOTE_SIZE",
    "DEFAULT_MAX_SIGNATURES",
    "Note",
    "NoteSignature",
    "UnverifiedNote",
    "add_signatures",
    "check_note_text",
    "open_note",
    "parse_note",
    "sign_note",
]

#: Largest note accepted by default (bytes, text and signatures together).
DEFAULT_MAX_NOTE_SIZE: Final = 1 << 20
#: Most signature lines accepted by default; Go's golang.org/x/mod/sumdb/note also stops at 100.
DEFAULT_MAX_SIGNATURES: Final = 100

_SIG_PREFIX: Final = "\u2014 ".encode()  # em dash, space
# ASCII control characters other than newline; UTF-8 multi-byte sequences never contain them.
_FORBIDDEN: Final = re.compile(rb"[\x00-\x09\x0b-\x1f]")


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: who claims to have signed (name, key ID) and the signature bytes."""

    name: str
    key_id: int
    signature: bytes

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if not 0 <= self.key_id <= 0xFFFFFFFF:
            raise MalformedError("key ID must fit in 32 bits")
        if not self.signature:
            raise MalformedError("signature bytes are empty")

    def encode_line(self) -> bytes:
        """The signature line, newline included, exactly as it appears in a note."""
        payload = self.key_id.to_bytes(4, "big") + self.signature
        return _SIG_PREFIX + self.name.encode() + b" " + base64.b64encode(payload) + b"\n"

    def matches(self, key: VerifierKey) -> bool:
        """Whether this line claims to be by ``key`` (same name AND key ID)."""
        return self.name == key.name and self.key_id == key.key_id


@dataclass(frozen=True)
class UnverifiedNote:
    """A syntactically valid note whose signatures have NOT been checked: do not trust ``text``."""

    text: bytes
    signatures: tuple[NoteSignature, ...]

    def encode(self) -> bytes:
        """The note bytes: text, blank line, signature lines (byte-identical to the input)."""
        return _encode(self.text, self.signatures)


@dataclass(frozen=True)
class Note:
    """A note verified by at least one trusted key.

    ``signatures`` lists every line in order (unknown keys included, unverified);
    ``verified_by`` the distinct trusted keys whose signatures verified, in order of appearance.
    """

    text: bytes
    signatures: tuple[NoteSignature, ...]
    verified_by: tuple[VerifierKey, ...]

    def signatures_by(self, key: VerifierKey) -> tuple[NoteSignature, ...]:
        """The signature lines made by ``key`` (all verified if ``key`` is in verified_by)."""
        return tuple(s for s in self.signatures if s.matches(key))

    def encode(self) -> bytes:
        """The note bytes: text, blank line, signature lines."""
        return _encode(self.text, self.signatures)


def _encode(text: bytes, signatures: Iterable[NoteSignature]) -> bytes:
    return text + b"\n" + b"".join(s.encode_line() for s in signatures)


def check_note_text(text: bytes) -> str:
    """Check the character rules every note text obeys and return it decoded.

    Valid UTF-8, no ASCII control character except newline, non-empty and ending in newline.
    """
    if not isinstance(text, bytes | bytearray | memoryview):
        raise MalformedError("note text must be bytes")
    text = bytes(text)
    if not text.endswith(b"\n"):
        raise MalformedError("note text must be non-empty and end with a newline")
    return _decode(text)


def _decode(data: bytes) -> str:
    if _FORBIDDEN.search(data):
        raise MalformedError("note contains an ASCII control character other than newline")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedError("note is not valid UTF-8") from exc


def _parse_line(line: bytes) -> NoteSignature:
    if not line.startswith(_SIG_PREFIX):
        raise MalformedError("signature line must start with an em dash (U+2014) and a space")
    name_b, sep, b64 = line[len(_SIG_PREFIX) :].partition(b" ")
    if not sep:
        raise MalformedError("signature line must be '— <name> <base64>'")
    try:
        name = name_b.decode("utf-8")
        check_key_name(name)
    except (UnicodeDecodeError, KeyFormatError) as exc:
        raise MalformedError("signature line has an invalid key name") from exc
    raw = b64decode_canonical(b64, "signature")
    if len(raw) < 5:
        raise MalformedError("signature must be a 4-byte key ID and at least one signature byte")
    return NoteSignature(name, int.from_bytes(raw[:4], "big"), raw[4:])


def parse_note(
    data: bytes,
    *,
    max_size: int = DEFAULT_MAX_NOTE_SIZE,
    max_signatures: int = DEFAULT_MAX_SIGNATURES,
) -> UnverifiedNote:
    """Split untrusted note bytes into text and signature lines, checking every syntax rule.

    Nothing is verified. Raises LimitExceededError past ``max_size`` bytes or
    ``max_signatures`` lines (checked before any decoding) and MalformedError otherwise.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedError("note must be bytes")
    data = bytes(data)
    if len(data) > max_size:
        raise LimitExceededError(f"note is larger than {max_size} bytes")
    split = data.rfind(b"\n\n")
    block = data[split + 2 :] if split >= 0 else b""
    # Both limits come before any decoding: the signature count bounds the work that follows.
    if block.count(b"\n") > max_signatures:
        raise LimitExceededError(f"note has more than {max_signatures} signatures")
    _decode(data)
    if split < 0:
        raise MalformedError("note has no blank line between text and signatures")
    text = data[: split + 1]
    if not block:
        raise MalformedError("note has no signature lines")
    if not block.endswith(b"\n"):
        raise MalformedError("note must end with a newline")
    lines = block[:-1].split(b"\n")
    return UnverifiedNote(text, tuple(_parse_line(line) for line in lines))


def _index(known: Iterable[VerifierKey]) -> dict[tuple[str, int], VerifierKey]:
    index: dict[tuple[str, int], VerifierKey] = {}
    for key in known:
        if not isinstance(key, VerifierKey):
            raise KeyFormatError("trusted keys must be VerifierKey values")
        slot = (key.name, key.key_id)
        if slot in index and index[slot] != key:
            raise KeyFormatError("two trusted keys share a name and key ID; cannot tell apart")
        index[slot] = key
    return index


def open_note(
    data: bytes,
    known: Iterable[VerifierKey],
    *,
    max_size: int = DEFAULT_MAX_NOTE_SIZE,
    max_signatures: int = DEFAULT_MAX_SIGNATURES,
) -> Note:
    """Parse and verify a note against trusted keys (signed-note §Signatures).

    Lines by unknown keys (name or key ID differ) are kept but ignored. Every line by a
    trusted key is verified, and one that fails rejects the note (InvalidSignatureError),
    even if another trusted signature verifies. No trusted signature: NoKnownSignatureError.
    """
    index = _index(known)
    parsed = parse_note(data, max_size=max_size, max_signatures=max_signatures)
    verified: dict[tuple[str, int], VerifierKey] = {}
    for sig in parsed.signatures:
        key = index.get((sig.name, sig.key_id))
        if key is None:
            continue
        key.verify_note_signature(parsed.text, sig.signature)
        verified.setdefault((sig.name, sig.key_id), key)
    if not verified:
        raise NoKnownSignatureError("note carries no signature by a trusted key")
    return Note(parsed.text, parsed.signatures, tuple(verified.values()))


def _new_lines(
    text: bytes, signers: Sequence[SignerKey], timestamp: int | None
) -> list[NoteSignature]:
    if not signers:
        raise MalformedError("at least one signer is needed")
    slots = [(s.name, s.key_id) for s in signers]
    if len(set(slots)) != len(slots):
        raise KeyFormatError("two signers share a name and key ID")
    out = []
    for signer in signers:
        # Plain keys refuse a timestamp; only cosigners get one.
        ts = timestamp if signer.alg != ALG_ED25519 else None
        out.append(
            NoteSignature(
                signer.name, signer.key_id, signer.sign_note_signature(text, timestamp=ts)
            )
        )
    return out


def sign_note(text: bytes, signers: Sequence[SignerKey], *, timestamp: int | None = None) -> bytes:
    """Sign the exact ``text`` bytes with each signer and return the note bytes.

    ``timestamp`` (POSIX seconds) is required when a signer is a cosignature/v1 key and is
    ignored by plain Ed25519 keys.
    """
    text = bytes(text)
    check_note_text(text)
    lines = _new_lines(text, signers, timestamp)
    return UnverifiedNote(text, tuple(lines)).encode()


def add_signatures(
    data: bytes,
    signers: Sequence[SignerKey],
    *,
    timestamp: int | None = None,
    max_size: int = DEFAULT_MAX_NOTE_SIZE,
    max_signatures: int = DEFAULT_MAX_SIGNATURES,
) -> bytes:
    """Append signatures to an existing note, replacing earlier lines by the same keys.

    The existing signatures are NOT verified: a witness must open the note with the log's key
    before it cosigns.
    """
    parsed = parse_note(data, max_size=max_size, max_signatures=max_signatures)
    lines = _new_lines(parsed.text, signers, timestamp)
    replaced = {(s.name, s.key_id) for s in lines}
    kept = tuple(s for s in parsed.signatures if (s.name, s.key_id) not in replaced)
    return UnverifiedNote(parsed.text, kept + tuple(lines)).encode()
