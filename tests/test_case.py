"""Case keys and recovery codes: specs/case-keys.md and its vectors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nacl.signing
import protocolkit
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from crypto import case
from crypto.case import ALPHABET, CaseSecret
from crypto.errors import KeyFormatError, MalformedError, RecoveryCodeError

VECTOR_DIR = Path(__file__).resolve().parents[1] / "specs" / "vectors"


def _params(name: str) -> list[Any]:
    return protocolkit.params("case", name)


_generator = protocolkit.generator
_error = protocolkit.error_class


def _cases(name: str) -> list[dict[str, Any]]:
    return protocolkit.cases("case", name)


# -- vectors --------------------------------------------------------------------------------


@pytest.mark.parametrize("case_", _params("derive.json"))
def test_derive_vector(case_: dict[str, Any]) -> None:
    secret = CaseSecret(bytes.fromhex(case_["secret"]))
    assert secret.recovery_code() == case_["recovery_code"]
    assert bytes(secret.signing_key()).hex() == case_["signing_seed"]
    assert secret.public_key().hex() == case_["public_key"]
    assert secret.case_id() == case_["case_id"]
    assert case.case_id(bytes.fromhex(case_["public_key"])) == case_["case_id"]
    assert CaseSecret.from_recovery_code(case_["recovery_code"]) == secret


@pytest.mark.parametrize("case_", _params("recovery_code.json"))
def test_recovery_code_vector(case_: dict[str, Any]) -> None:
    if "error" in case_:
        with pytest.raises(RecoveryCodeError) as info:
            CaseSecret.from_recovery_code(case_["code"])
        assert info.value.group == case_["group"]
    else:
        secret = CaseSecret.from_recovery_code(case_["code"])
        assert secret.to_bytes().hex() == case_["secret"]


@pytest.mark.parametrize("case_", _params("case_id.json"))
def test_case_id_vector(case_: dict[str, Any]) -> None:
    if "error" in case_:
        with pytest.raises(_error(case_["error"])):
            case.parse_case_id(case_["text"])
    else:
        assert case.parse_case_id(case_["text"]) == case_["case_id"]


def test_vectors_regenerate_identically() -> None:
    gen = _generator()
    for filename, cases in gen.build_case().items():
        on_disk = (VECTOR_DIR / "case" / filename).read_text(encoding="utf-8")
        assert gen.render(cases) == on_disk, filename


# -- derivation -----------------------------------------------------------------------------


def test_derivation_is_the_specified_hkdf() -> None:
    raw = bytes(range(16))
    seed = HKDF(hashes.SHA256(), 32, b"ncii-exchange/case/v1", b"ncii-exchange/case-key/v1").derive(
        raw
    )
    assert bytes(CaseSecret(raw).signing_key()) == seed
    assert CaseSecret(raw).public_key() == bytes(nacl.signing.SigningKey(seed).verify_key)


@given(st.binary(min_size=16, max_size=16))
def test_round_trip(raw: bytes) -> None:
    secret = CaseSecret(raw)
    code = secret.recovery_code()
    assert len(code) == 34 and code.count("-") == 6
    assert CaseSecret.from_recovery_code(code) == secret
    assert CaseSecret.from_recovery_code(code.lower().replace("-", " ")) == secret
    cid = secret.case_id()
    assert len(cid) == 16 and set(cid) <= set(ALPHABET)


def test_secret_validation_and_redaction() -> None:
    for size in (0, 15, 17, 32):
        with pytest.raises(KeyFormatError):
            CaseSecret(bytes(size))
    secret = CaseSecret(b"\xab" * 16)
    assert "ab" not in repr(secret).lower()
    assert secret == CaseSecret(b"\xab" * 16)
    assert secret != CaseSecret(b"\xac" * 16)
    with pytest.raises(TypeError):
        hash(secret)
    assert CaseSecret.generate() != CaseSecret.generate()


def test_case_id_rejects_bad_keys() -> None:
    with pytest.raises(KeyFormatError):
        case.case_id(bytes(31))
    key = CaseSecret(bytes(16)).signing_key().verify_key
    assert case.case_id(key) == case.case_id(bytes(key))


# -- the checksum ---------------------------------------------------------------------------


def test_checksum_detects_every_single_and_swap_pattern_for_every_code() -> None:
    """The check is linear: a typo turns code c into c + e and is detected iff the syndrome of
    e alone is non-zero (and a substitution is located from that syndrome alone). So checking
    every error pattern once proves it for EVERY code.
    Substitution: e = d at one position (28 x 31 patterns). Adjacent swap of a != b at i, i+1:
    e = (d, d) at (i, i+1) with d = a xor b (27 x 31 patterns)."""
    n = case.CODE_LENGTH
    for pos in range(n):
        for d in range(1, 32):
            e = [0] * n
            e[pos] = d
            s0, s1 = case._syndromes(e)
            assert (s0, s1) != (0, 0)
            assert case._group(s0, s1, e) == pos // 4 + 1  # and it is always located
    for pos in range(n - 1):
        for d in range(1, 32):
            e = [0] * n
            e[pos] = e[pos + 1] = d
            assert case._syndromes(e) != (0, 0)


CODES = [CaseSecret(bytes([i * 17 % 256]) * 16).recovery_code() for i in range(4)] + [
    CaseSecret(bytes(range(i, i + 16))).recovery_code() for i in (0, 100, 240)
]


@pytest.mark.parametrize("code", CODES)
def test_every_substitution_is_caught_and_located(code: str) -> None:
    plain = code.replace("-", "")
    for pos in range(len(plain)):
        for ch in ALPHABET:
            if ch == plain[pos]:
                continue
            typo = plain[:pos] + ch + plain[pos + 1 :]
            with pytest.raises(RecoveryCodeError) as info:
                CaseSecret.from_recovery_code(typo)
            assert info.value.group == pos // 4 + 1, (typo, pos)


@pytest.mark.parametrize("code", CODES)
def test_every_adjacent_transposition_is_caught(code: str) -> None:
    plain = code.replace("-", "")
    for pos in range(len(plain) - 1):
        if plain[pos] == plain[pos + 1]:
            continue
        chars = list(plain)
        chars[pos], chars[pos + 1] = chars[pos + 1], chars[pos]
        with pytest.raises(RecoveryCodeError) as info:
            CaseSecret.from_recovery_code("".join(chars))
        assert info.value.group in (None, pos // 4 + 1, (pos + 1) // 4 + 1)


@pytest.mark.parametrize("code", CODES[:3])
def test_skipped_or_doubled_character_never_accepted(code: str) -> None:
    plain = code.replace("-", "")
    for pos in range(len(plain)):
        with pytest.raises(RecoveryCodeError) as info:
            CaseSecret.from_recovery_code(plain[:pos] + plain[pos + 1 :])
        assert info.value.group in (None, pos // 4 + 1)
        with pytest.raises(RecoveryCodeError):
            CaseSecret.from_recovery_code(plain[:pos] + plain[pos] + plain[pos:])


def test_confusable_letters_are_accepted() -> None:
    secret = CaseSecret(bytes(16))
    code = secret.recovery_code()
    assert code.startswith("0000")
    assert CaseSecret.from_recovery_code(code.replace("0", "o")) == secret
    all_ones = sum(1 << (5 * k) for k in range(26))  # every data character is "1"
    one = CaseSecret(all_ones.to_bytes(16, "big"))
    code1 = one.recovery_code()
    assert "1" in code1
    for ch in "iIlL":
        assert CaseSecret.from_recovery_code(code1.replace("1", ch)) == one


def test_invalid_character_names_its_group() -> None:
    plain = CODES[0].replace("-", "")
    for pos in range(len(plain)):
        with pytest.raises(RecoveryCodeError) as info:
            CaseSecret.from_recovery_code(plain[:pos] + "U" + plain[pos + 1 :])
        assert info.value.group == pos // 4 + 1


def test_error_messages_do_not_echo_the_code() -> None:
    plain = CODES[5].replace("-", "")
    for typo in (plain[:3] + "*" + plain[4:], plain[:-1], "Z" + plain[1:]):
        with pytest.raises(RecoveryCodeError) as info:
            CaseSecret.from_recovery_code(typo)
        assert plain[4:12] not in str(info.value)


@given(st.text(max_size=60))
def test_fuzz_recovery_code(text: str) -> None:
    try:
        CaseSecret.from_recovery_code(text)
    except RecoveryCodeError as exc:
        assert exc.group is None or 1 <= exc.group <= 7


@given(st.text(alphabet=ALPHABET + "-oil ", min_size=20, max_size=40))
def test_fuzz_recovery_code_in_alphabet(text: str) -> None:
    try:
        secret = CaseSecret.from_recovery_code(text)
    except RecoveryCodeError:
        return
    assert CaseSecret.from_recovery_code(secret.recovery_code()) == secret


@given(st.text(max_size=40))
def test_fuzz_case_id(text: str) -> None:
    try:
        cid = case.parse_case_id(text)
    except MalformedError:
        return
    assert len(cid) == 16
