"""Signed notes and key strings: behaviour, tampering, fuzzing (crypto/note.py, crypto/keys.py)."""

from __future__ import annotations

import base64
import importlib.util
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto.errors import (
    CryptoError,
    InvalidSignatureError,
    KeyFormatError,
    LimitExceededError,
    MalformedError,
    NoKnownSignatureError,
)
from crypto.keys import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    VerifierKey,
    check_key_name,
    generate_signer_key,
    parse_signer_key,
    parse_verifier_key,
    signer_key_from_seed,
)
from crypto.note import (
    DEFAULT_MAX_NOTE_SIZE,
    add_signatures,
    open_note,
    parse_note,
    sign_note,
)

C2SP_KEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SUMDB_KEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
MIRROR_KEY = "mirror.example.org+3fb148ef+BAAjjch9GyYz0sJsJx7ALhbdAtz2ov0unbzSl1vMp94O"
SHARED = Path(__file__).resolve().parent / "vectors" / "note"

ALICE = signer_key_from_seed("alice.example", bytes(range(32)))
BOB = signer_key_from_seed("bob.example", bytes(range(1, 33)))
WITNESS = signer_key_from_seed("w.example", bytes(range(2, 34)), ALG_COSIGNATURE_V1)
TEXT = b"example.org/log\n42\n" + base64.b64encode(bytes(32)) + b"\n"


def _samples() -> list[tuple[str, bytes, list[VerifierKey]]]:
    own = sign_note(TEXT, [ALICE, BOB])
    own = add_signatures(own, [WITNESS], timestamp=1_700_000_000)
    return [
        (
            "c2sp-example",
            (SHARED / "c2sp-example.note").read_bytes(),
            [parse_verifier_key(C2SP_KEY)],
        ),
        ("sumdb", (SHARED / "sumdb-checkpoint.note").read_bytes(), [parse_verifier_key(SUMDB_KEY)]),
        (
            "sunlight-mirror",
            (SHARED / "sunlight-mirror" / "checkpoint").read_bytes(),
            [parse_verifier_key(MIRROR_KEY)],
        ),
        ("own-3-keys", own, [ALICE.verifier, BOB.verifier, WITNESS.verifier]),
    ]


SAMPLES = _samples()


# -- tampering: any single-byte change is rejected with the right class -----------------------


def _expected_class(
    original: bytes, data: bytes, keys: list[VerifierKey]
) -> type[CryptoError] | None:
    """What a changed note must do, judged from the syntax alone (not by verifying).

    None means "accepted": the change only turned one trusted line into a line by an unknown
    key while other, untouched trusted lines remain; the spec says unknown lines are ignored.
    """
    try:
        parsed = parse_note(data)
    except LimitExceededError:
        return LimitExceededError
    except MalformedError:
        return MalformedError
    before = parse_note(original)
    trusted = [sig for sig in parsed.signatures if any(sig.matches(k) for k in keys)]
    if not trusted:
        return NoKnownSignatureError
    if parsed.text == before.text and all(sig in before.signatures for sig in trusted):
        return None
    return InvalidSignatureError


@pytest.mark.parametrize("name,data,keys", SAMPLES, ids=[s[0] for s in SAMPLES])
def test_samples_verify(name: str, data: bytes, keys: list[VerifierKey]) -> None:
    note = open_note(data, keys)
    assert set(note.verified_by) == set(keys)
    assert note.encode() == data


@pytest.mark.parametrize("name,data,keys", SAMPLES, ids=[s[0] for s in SAMPLES])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(position=st.integers(min_value=0), byte=st.integers(min_value=0, max_value=255))
def test_single_byte_change_rejected(
    name: str, data: bytes, keys: list[VerifierKey], position: int, byte: int
) -> None:
    """Every change is rejected with the right class; in a note with several trusted
    signatures, a change that makes one line unknown leaves a note verified by fewer keys."""
    index = position % len(data)
    if data[index] == byte:
        byte ^= 0x01
    changed = data[:index] + bytes([byte]) + data[index + 1 :]
    expected = _expected_class(data, changed, keys)
    if expected is None:
        note = open_note(changed, keys)
        assert len(note.verified_by) < len(keys)
        assert note.text == parse_note(data).text
        return
    with pytest.raises(CryptoError) as info:
        open_note(changed, keys)
    assert type(info.value) is expected
    # A change inside the text can never make the note look unsigned: it breaks the syntax or
    # the signature.
    if index < data.rfind(b"\n\n"):
        assert not isinstance(info.value, NoKnownSignatureError)


@pytest.mark.parametrize("name,data,keys", SAMPLES[:3], ids=[s[0] for s in SAMPLES[:3]])
def test_single_signature_notes_reject_every_change(
    name: str, data: bytes, keys: list[VerifierKey]
) -> None:
    """Exhaustive on the conformance notes (one trusted signature each): flip each byte."""
    for index in range(len(data)):
        for mask in (0x01, 0x80):
            changed = data[:index] + bytes([data[index] ^ mask]) + data[index + 1 :]
            with pytest.raises(CryptoError):
                open_note(changed, keys)


@pytest.mark.parametrize("name,data,keys", SAMPLES, ids=[s[0] for s in SAMPLES])
def test_truncation_and_deletion(name: str, data: bytes, keys: list[VerifierKey]) -> None:
    """Cutting or deleting a byte never yields a note verified by every key."""
    for cut in range(len(data)):
        for changed in (data[:cut], data[:cut] + data[cut + 1 :]):
            try:
                note = open_note(changed, keys)
            except CryptoError:
                continue
            # Only possible by dropping or corrupting a whole trusted line of a multi-key note.
            assert len(keys) > 1
            assert len(note.verified_by) < len(keys)
            assert note.text == parse_note(data).text


# -- fuzz: only CryptoError escapes ------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_note_parsers(data: bytes) -> None:
    keys = [ALICE.verifier, WITNESS.verifier]
    for call in (lambda: parse_note(data), lambda: open_note(data, keys)):
        try:
            call()
        except CryptoError:
            pass


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzz_mutated_notes(data: st.DataObject) -> None:
    """Structure-aware: splice random bytes into real notes."""
    _, base, keys = data.draw(st.sampled_from(SAMPLES))
    start = data.draw(st.integers(0, len(base)))
    end = data.draw(st.integers(start, min(len(base), start + 8)))
    insert = data.draw(
        st.one_of(
            st.binary(max_size=8),
            st.sampled_from([b"\n", b"\n\n", "\u2014 ".encode(), b"+", b"=", b" ", b"\xe2\x80"]),
        )
    )
    mutated = base[:start] + insert + base[end:]
    try:
        open_note(mutated, keys)
    except CryptoError:
        pass
    else:
        # Accepted only if the signed text and verifying signatures are unchanged.
        assert open_note(mutated, keys).text == parse_note(base).text


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.binary(max_size=120), st.text(max_size=120)))
def test_fuzz_key_parsers(data: bytes | str) -> None:
    for parse in (parse_verifier_key, parse_signer_key):
        try:
            parse(data)
        except CryptoError:
            pass


@settings(max_examples=300, deadline=None)
@given(
    name=st.text(min_size=0, max_size=12),
    hex_id=st.text(alphabet="0123456789abcdefABCDEFg", max_size=9),
    body=st.binary(max_size=40),
)
def test_fuzz_key_strings_structured(name: str, hex_id: str, body: bytes) -> None:
    b64 = base64.b64encode(body).decode()
    for text in (f"{name}+{hex_id}+{b64}", f"PRIVATE+KEY+{name}+{hex_id}+{b64}"):
        for parse in (parse_verifier_key, parse_signer_key):
            try:
                parse(text)
            except KeyFormatError:
                pass


# -- limits -----------------------------------------------------------------------------------


def test_default_size_limit() -> None:
    big = sign_note(b"x" * DEFAULT_MAX_NOTE_SIZE + b"\n", [ALICE])
    with pytest.raises(LimitExceededError):
        open_note(big, [ALICE.verifier])
    assert open_note(big, [ALICE.verifier], max_size=len(big)).verified_by == (ALICE.verifier,)


def test_size_limit_checked_before_decoding() -> None:
    with pytest.raises(LimitExceededError):
        parse_note(b"\xff" * 2000, max_size=1000)


def test_signature_count_limit() -> None:
    signers = [signer_key_from_seed(f"k{i}.example", bytes([i]) * 32) for i in range(101)]
    note = sign_note(TEXT, signers)
    with pytest.raises(LimitExceededError):
        open_note(note, [signers[0].verifier])
    assert open_note(note, [signers[0].verifier], max_signatures=101).verified_by
    assert open_note(sign_note(TEXT, signers[:100]), [signers[0].verifier]).verified_by


# -- semantics --------------------------------------------------------------------------------


def test_unknown_signatures_kept_but_ignored() -> None:
    note = open_note(sign_note(TEXT, [ALICE, BOB]), [BOB.verifier])
    assert [s.name for s in note.signatures] == ["alice.example", "bob.example"]
    assert note.verified_by == (BOB.verifier,)
    assert len(note.signatures_by(BOB.verifier)) == 1


def test_bad_trusted_signature_rejects_even_with_good_one() -> None:
    good = sign_note(TEXT, [ALICE])
    other = sign_note(b"other\n", [BOB])
    forged = good + other[other.rfind(b"\n\n") + 2 :]  # BOB's line over another text
    with pytest.raises(InvalidSignatureError):
        open_note(forged, [ALICE.verifier, BOB.verifier])
    assert open_note(forged, [ALICE.verifier]).verified_by == (ALICE.verifier,)


def test_same_name_other_key_is_unknown() -> None:
    impostor = signer_key_from_seed(ALICE.name, bytes(32))
    with pytest.raises(NoKnownSignatureError):
        open_note(sign_note(TEXT, [impostor]), [ALICE.verifier])


def test_conflicting_trusted_keys_refused() -> None:
    a = ALICE.verifier
    clash = VerifierKey.__new__(VerifierKey)
    object.__setattr__(clash, "name", a.name)
    object.__setattr__(clash, "alg", a.alg)
    object.__setattr__(clash, "public_key", bytes(32))
    clash.__dict__["key_id"] = a.key_id  # a forged key-ID collision
    with pytest.raises(KeyFormatError):
        open_note(sign_note(TEXT, [ALICE]), [a, clash])
    assert open_note(sign_note(TEXT, [ALICE]), [a, a]).verified_by == (a,)


def test_add_signatures_replaces_same_key() -> None:
    note = sign_note(TEXT, [ALICE, BOB])
    again = add_signatures(note, [ALICE])
    assert [s.name for s in parse_note(again).signatures] == ["bob.example", "alice.example"]
    assert open_note(again, [ALICE.verifier, BOB.verifier]).text == TEXT


def test_cosigner_needs_timestamp() -> None:
    with pytest.raises(MalformedError):
        sign_note(TEXT, [WITNESS])
    with pytest.raises(MalformedError):
        ALICE.sign_note_signature(TEXT, timestamp=5)


@pytest.mark.parametrize(
    "text", [b"", b"no newline", b"bad \x01\n", b"\xff\n", b"tab\t\n", b"cr\r\n"]
)
def test_sign_refuses_bad_text(text: bytes) -> None:
    with pytest.raises(MalformedError):
        sign_note(text, [ALICE])


def test_sign_needs_a_signer() -> None:
    with pytest.raises(MalformedError):
        sign_note(TEXT, [])
    with pytest.raises(KeyFormatError):
        sign_note(TEXT, [ALICE, ALICE])


@settings(max_examples=100, deadline=None)
@given(
    lines=st.lists(
        st.text(st.characters(codec="utf-8", min_codepoint=0x20), max_size=30),
        min_size=1,
        max_size=5,
    ),
    seed=st.binary(min_size=32, max_size=32),
)
def test_sign_open_roundtrip(lines: list[str], seed: bytes) -> None:
    text = "".join(line + "\n" for line in lines).encode()
    signer = signer_key_from_seed("prop.example", seed)
    note = open_note(sign_note(text, [signer]), [signer.verifier])
    assert note.text == text


# -- keys -------------------------------------------------------------------------------------


def test_key_string_roundtrip() -> None:
    for key in (ALICE, WITNESS):
        assert parse_signer_key(key.encode()).verifier == key.verifier
        assert parse_verifier_key(key.verifier.encode()) == key.verifier


def test_seed_not_in_repr() -> None:
    text = repr(ALICE)
    assert bytes(range(32)).hex() not in text
    assert "seed" not in text
    assert base64.b64encode(bytes([1]) + ALICE.seed).decode() not in text


def test_generate_signer_key() -> None:
    one, two = generate_signer_key("gen.example"), generate_signer_key("gen.example")
    assert one.verifier != two.verifier
    assert one.alg == ALG_ED25519


@pytest.mark.parametrize(
    "name", ["", "a b", "a+b", "a\tb", "a\u00a0b", "a\u2003b", "a\u3000b", "a\x01b", "\ud800"]
)
def test_bad_key_names(name: str) -> None:
    with pytest.raises(KeyFormatError):
        check_key_name(name)
    with pytest.raises(KeyFormatError):
        signer_key_from_seed(name, bytes(32))


@pytest.mark.parametrize("alg", [0, 2, 3, 5, 6, 0xFF])
def test_unsupported_algs(alg: int) -> None:
    with pytest.raises(KeyFormatError):
        signer_key_from_seed("a.example", bytes(32), alg)


def test_bad_seed_lengths() -> None:
    for size in (0, 31, 33, 64):
        with pytest.raises(KeyFormatError):
            signer_key_from_seed("a.example", bytes(size))


# -- the generator is deterministic and its output is checked in ------------------------------


def test_generated_vectors_up_to_date(own_vectors: Path, tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("generate_note", own_vectors / "generate_note.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    setattr(module, "OUT", tmp_path)  # noqa: B010
    module.main()
    fresh = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*.json")}
    stored = {
        p.relative_to(own_vectors / "note"): p.read_bytes()
        for p in (own_vectors / "note").rglob("*.json")
    }
    assert fresh.keys() == stored.keys()
    for path, content in fresh.items():
        assert content == stored[path], path
        json.loads(content)


def test_signature_count_limit_comes_before_decoding() -> None:
    """specs/signed-note.md §1: both limits are checked before any decoding, so a note with
    too many lines is a LimitExceededError even when it is also not valid UTF-8."""
    note = sign_note(TEXT, [ALICE])
    line = note[len(TEXT) + 1 :]
    bad = b"\xff" + TEXT + b"\n" + line * 3
    with pytest.raises(LimitExceededError):
        parse_note(bad, max_signatures=2)
    with pytest.raises(MalformedError) as info:
        parse_note(bad, max_signatures=3)
    assert not isinstance(info.value, LimitExceededError)


@pytest.mark.parametrize(
    "text",
    [
        ALICE.encode().encode()[:-3] + b"\xff\xfe==",
        ALICE.encode()[:-3] + "\u00e9==",
    ],
    ids=["non-utf8", "non-ascii-base64"],
)
def test_signer_key_errors_quote_no_key_material(text: bytes | str) -> None:
    """The codec's own message names the offending character; it must not ride along in the
    exception chain of a secret key string."""
    with pytest.raises(KeyFormatError) as info:
        parse_signer_key(text)
    chain: list[BaseException] = []
    exc: BaseException | None = info.value
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__ if not exc.__suppress_context__ else exc.__cause__
    rendered = " ".join(str(e) for e in chain)
    assert "0xff" not in rendered and "\\xe9" not in rendered and "é" not in rendered
