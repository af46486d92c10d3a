"""tlog-cosignature cosignature/v1: signing, verifying, timestamps, quorum."""

from __future__ import annotations

import base64
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.checkpoint import Checkpoint, sign_checkpoint
from crypto.cosignature import (
    add_cosignature,
    cosign_checkpoint,
    cosignature_message,
    open_cosigned_checkpoint,
    parse_cosignature,
    verify_cosignature,
)
from crypto.errors import (
    CryptoError,
    InvalidSignatureError,
    KeyFormatError,
    MalformedError,
    NoKnownSignatureError,
)
from crypto.keys import ALG_COSIGNATURE_V1, parse_verifier_key, signer_key_from_seed
from crypto.note import NoteSignature, open_note, parse_note

LOG = signer_key_from_seed("log.example.org/c", bytes([9]) * 32)
WITNESSES = [
    signer_key_from_seed(f"w{i}.example.com", bytes([0x40 + i]) * 32, ALG_COSIGNATURE_V1)
    for i in range(5)
]
WKEYS = [w.verifier for w in WITNESSES]
CHECKPOINT = Checkpoint(LOG.name, 99, bytes(range(32)))
SIGNED = sign_checkpoint(CHECKPOINT, [LOG])
T = 1_767_225_600


def test_message_layout_matches_spec_example() -> None:
    text = b"example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    assert cosignature_message(text, 1679315147) == b"cosignature/v1\ntime 1679315147\n" + text
    assert cosignature_message(text, 0).startswith(b"cosignature/v1\ntime 0\n")


def test_signature_layout() -> None:
    line = cosign_checkpoint(CHECKPOINT, WITNESSES[0], timestamp=T)
    assert line.startswith("\u2014 w0.example.com ".encode())
    raw = base64.b64decode(line.split(b" ")[-1])
    assert len(raw) == 4 + 8 + 64
    assert int.from_bytes(raw[:4], "big") == WKEYS[0].key_id
    assert struct.unpack(">Q", raw[4:12])[0] == T
    # The Ed25519 part is a plain signature over the cosignature/v1 message.
    from nacl.signing import VerifyKey

    VerifyKey(WKEYS[0].public_key).verify(cosignature_message(CHECKPOINT.encode(), T), raw[12:])


def test_line_and_add_agree() -> None:
    line = cosign_checkpoint(CHECKPOINT, WITNESSES[1], timestamp=T)
    assert add_cosignature(SIGNED, WITNESSES[1], timestamp=T) == SIGNED + line


def test_verify_and_timestamp() -> None:
    data = add_cosignature(SIGNED, WITNESSES[2], timestamp=T + 7)
    cosig = verify_cosignature(data, WKEYS[2], origin=LOG.name)
    assert cosig.timestamp == T + 7
    assert cosig.key_id == WKEYS[2].key_id


def test_witness_key_string_roundtrip() -> None:
    text = WKEYS[0].encode()
    assert base64.b64decode(text.split("+", 2)[2])[0] == 0x04
    assert parse_verifier_key(text) == WKEYS[0]


def test_same_key_as_note_signer_is_not_cosigner() -> None:
    """An Ed25519 signature over the bare text does not pass as a cosignature: the message and
    the key ID both differ."""
    plain = signer_key_from_seed(WITNESSES[0].name, WITNESSES[0].seed)
    data = sign_checkpoint(CHECKPOINT, [LOG, plain])
    with pytest.raises(NoKnownSignatureError):
        verify_cosignature(data, WKEYS[0], origin=LOG.name)


def test_relabelled_cosignature_rejected() -> None:
    """Moving a cosignature under another trusted witness's name and key ID fails."""
    data = add_cosignature(SIGNED, WITNESSES[0], timestamp=T)
    sig = parse_note(data).signatures[-1]
    moved = SIGNED + NoteSignature(WKEYS[1].name, WKEYS[1].key_id, sig.signature).encode_line()
    with pytest.raises(InvalidSignatureError):
        open_cosigned_checkpoint(moved, LOG.verifier, WKEYS, origin=LOG.name, quorum=1)


@settings(max_examples=40, deadline=None)
@given(
    cosigners=st.sets(st.integers(0, 4)),
    quorum=st.integers(0, 5),
    times=st.lists(st.integers(0, 2**63 - 1), min_size=5, max_size=5),
)
def test_quorum_property(cosigners: set[int], quorum: int, times: list[int]) -> None:
    data = SIGNED
    for i in sorted(cosigners):
        data = add_cosignature(data, WITNESSES[i], timestamp=times[i])
    if len(cosigners) >= quorum:
        result = open_cosigned_checkpoint(data, LOG.verifier, WKEYS, origin=LOG.name, quorum=quorum)
        assert {c.name: c.timestamp for c in result.cosignatures} == {
            WITNESSES[i].name: times[i] for i in cosigners
        }
        assert result.checkpoint == CHECKPOINT
    else:
        with pytest.raises(NoKnownSignatureError):
            open_cosigned_checkpoint(data, LOG.verifier, WKEYS, origin=LOG.name, quorum=quorum)


def test_unconfigured_witnesses_do_not_count() -> None:
    data = SIGNED
    for w in WITNESSES[2:]:
        data = add_cosignature(data, w, timestamp=T)
    with pytest.raises(NoKnownSignatureError):
        open_cosigned_checkpoint(data, LOG.verifier, WKEYS[:2], origin=LOG.name, quorum=1)


def test_repeated_cosignature_counts_once() -> None:
    data = add_cosignature(SIGNED, WITNESSES[0], timestamp=T)
    data += parse_note(data).signatures[-1].encode_line()
    with pytest.raises(NoKnownSignatureError):
        open_cosigned_checkpoint(data, LOG.verifier, WKEYS, origin=LOG.name, quorum=2)
    ok = open_cosigned_checkpoint(data, LOG.verifier, WKEYS, origin=LOG.name, quorum=1)
    assert len(ok.cosignatures) == 1


def test_bad_configurations() -> None:
    with pytest.raises(KeyFormatError):
        open_cosigned_checkpoint(SIGNED, WKEYS[0], WKEYS[1:], origin=LOG.name, quorum=0)
    with pytest.raises(KeyFormatError):
        open_cosigned_checkpoint(SIGNED, LOG.verifier, [LOG.verifier], origin=LOG.name, quorum=0)
    with pytest.raises(MalformedError):
        open_cosigned_checkpoint(SIGNED, LOG.verifier, WKEYS, origin=LOG.name, quorum=-1)
    with pytest.raises(MalformedError):
        open_cosigned_checkpoint(SIGNED, LOG.verifier, WKEYS, origin=LOG.name, quorum=6)
    with pytest.raises(KeyFormatError):
        add_cosignature(SIGNED, LOG, timestamp=T)
    with pytest.raises(MalformedError):
        add_cosignature(SIGNED, WITNESSES[0], timestamp=-1)
    with pytest.raises(MalformedError):
        add_cosignature(SIGNED, WITNESSES[0], timestamp=2**63)


@pytest.mark.parametrize("size", [0, 8, 64, 71, 73])
def test_parse_cosignature_lengths(size: int) -> None:
    with pytest.raises(MalformedError):
        parse_cosignature(NoteSignature("w.example", 1, b"\x00" * size or b"\x00"))


def test_parse_cosignature_timestamp_bound() -> None:
    top = NoteSignature("w.example", 1, struct.pack(">Q", 2**63 - 1) + bytes(64))
    assert parse_cosignature(top).timestamp == 2**63 - 1
    with pytest.raises(MalformedError):
        parse_cosignature(NoteSignature("w.example", 1, struct.pack(">Q", 2**63) + bytes(64)))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz(data: bytes) -> None:
    for call in (
        lambda: verify_cosignature(data, WKEYS[0], origin=LOG.name),
        lambda: open_cosigned_checkpoint(data, LOG.verifier, WKEYS, origin=LOG.name, quorum=1),
        lambda: add_cosignature(data, WITNESSES[0], timestamp=T),
    ):
        try:
            call()
        except CryptoError:
            pass


@settings(max_examples=200, deadline=None)
@given(position=st.integers(min_value=0), byte=st.integers(0, 255))
def test_any_byte_change_breaks_the_cosignature(position: int, byte: int) -> None:
    """With the log's line removed, a cosigned checkpoint carries one trusted line: any change
    to it is rejected."""
    full = add_cosignature(SIGNED, WITNESSES[0], timestamp=T)
    parsed = parse_note(full)
    data = parsed.text + b"\n" + parsed.signatures[-1].encode_line()
    index = position % len(data)
    if data[index] == byte:
        byte ^= 0x01
    changed = data[:index] + bytes([byte]) + data[index + 1 :]
    with pytest.raises(CryptoError):
        open_note(changed, [WKEYS[0]])


def test_log_key_reused_as_witness_does_not_count() -> None:
    """The log's own Ed25519 key under a witness name would make valid cosignatures: the log
    vouching for itself. Such a configuration is refused before anything is verified."""
    self_witness = signer_key_from_seed("self.example.com", LOG.seed, ALG_COSIGNATURE_V1)
    data = add_cosignature(SIGNED, self_witness, timestamp=T)
    with pytest.raises(KeyFormatError):
        open_cosigned_checkpoint(
            data, LOG.verifier, [self_witness.verifier], origin=LOG.name, quorum=1
        )
