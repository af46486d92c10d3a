"""Conformance: RFC 6962/9162 proof probes (transparency-dev/merkle testdata) and our own vectors.

Every probe in tests/vectors/merkle is one test case with an id like
``inclusion/3/wrong-leaf``. The expected failure class is stated here independently of the
implementation: impossible input (a hash that is not 32 bytes, an index outside the tree, or
size1 > size2) is MalformedError; anything else that must fail is InvalidProofError.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from crypto.errors import InvalidProofError, MalformedError
from crypto.merkle import (
    EMPTY_ROOT,
    MemoryHashStore,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_leaf_hashes,
    tree_root,
    verify_consistency,
    verify_inclusion,
)
from crypto.tiles import Tile, append_tiles, changed_tiles, parse_path, tiles_for_size
from crypto.tree_state import TreeState

# Parametrised ids are built at collection time, before fixtures exist; these are the same
# folders the conformance_vectors and own_vectors fixtures of tests/conftest.py resolve to.
PROJECT_ROOT = Path(__file__).resolve().parents[1]
MERKLE = PROJECT_ROOT / "tests" / "vectors" / "merkle"
OWN_VECTORS = PROJECT_ROOT / "specs" / "vectors"


def _probes(kind: str) -> list[Any]:
    files = sorted((MERKLE / kind).rglob("*.json"))
    return [
        pytest.param(f, id=str(f.relative_to(MERKLE).with_suffix("")).replace("\\", "/"))
        for f in files
    ]


def _b64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def _expected_error(probe: dict[str, Any]) -> type[Exception]:
    hashes = [probe.get(k) for k in ("root", "leafHash", "root1", "root2")]
    hashes += probe.get("proof") or []
    if any(h is not None and len(_b64(h)) != 32 for h in hashes):
        return MalformedError
    if "leafIdx" in probe and probe["leafIdx"] >= probe["treeSize"]:
        return MalformedError
    if "size1" in probe and probe["size1"] > probe["size2"]:
        return MalformedError
    return InvalidProofError


def test_probe_folders_are_present(conformance_vectors: Path) -> None:
    assert conformance_vectors / "merkle" == MERKLE
    assert len(_probes("inclusion")) > 80
    assert len(_probes("consistency")) > 90


@pytest.mark.parametrize("path", _probes("inclusion"))
def test_inclusion_probe(path: Path) -> None:
    probe = json.loads(path.read_text())
    proof = [_b64(p) for p in probe["proof"] or []]

    def run() -> None:
        verify_inclusion(
            _b64(probe["leafHash"]), probe["leafIdx"], probe["treeSize"], proof, _b64(probe["root"])
        )

    if probe["wantErr"]:
        with pytest.raises(_expected_error(probe)):
            run()
    else:
        run()


@pytest.mark.parametrize("path", _probes("consistency"))
def test_consistency_probe(path: Path) -> None:
    probe = json.loads(path.read_text())
    proof = [_b64(p) for p in probe["proof"] or []]

    def run() -> None:
        verify_consistency(
            probe["size1"], probe["size2"], proof, _b64(probe["root1"]), _b64(probe["root2"])
        )

    if probe["wantErr"]:
        with pytest.raises(_expected_error(probe)):
            run()
    else:
        run()


# The classic eight-leaf tree of tests/vectors/merkle/README.md.
EIGHT_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]


def _readme_roots() -> dict[int, bytes]:
    roots: dict[int, bytes] = {}
    for line in (MERKLE / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].isdigit() and len(cells[1]) == 64:
            roots[int(cells[0])] = bytes.fromhex(cells[1])
    return roots


def test_readme_lists_all_nine_roots() -> None:
    assert sorted(_readme_roots()) == list(range(9))
    assert _readme_roots()[0] == EMPTY_ROOT


@pytest.mark.parametrize("size", range(9), ids=lambda s: f"eight-leaf/size-{s}")
def test_eight_leaf_roots(size: int) -> None:
    expected = _readme_roots()[size]
    hashes = [leaf_hash(d) for d in EIGHT_LEAVES[:size]]
    assert root_from_leaf_hashes(hashes) == expected
    assert tree_root(size, MemoryHashStore.from_leaf_hashes(hashes)) == expected
    state, _ = TreeState.empty().append(hashes)
    assert state.root() == expected


# -- our own generated vectors (specs/vectors/merkle, from specs/vectors/generate_merkle.py) ---

OWN = OWN_VECTORS / "merkle"


def _own(name: str) -> Any:
    return json.loads((OWN / name).read_text())


def test_own_vector_files_exist(own_vectors: Path) -> None:
    assert own_vectors / "merkle" == OWN
    for name in ("tree.json", "tile_paths.json", "tree_state.json", "tiles.json"):
        assert (OWN / name).is_file(), name


def _own_tree() -> tuple[list[bytes], MemoryHashStore]:
    data = _own("tree.json")
    entries = [bytes.fromhex(e) for e in data["entries"]]
    return entries, MemoryHashStore.from_leaf_hashes([leaf_hash(e) for e in entries])


def test_own_tree_roots() -> None:
    data = _own("tree.json")
    entries, store = _own_tree()
    for size_text, root in data["roots"].items():
        assert tree_root(int(size_text), store).hex() == root
    assert [leaf_hash(e).hex() for e in entries] == data["leaf_hashes"]


def _own_cases(kind: str) -> list[Any]:
    data = json.loads((OWN_VECTORS / "merkle" / "tree.json").read_text())
    return [pytest.param(c, id=f"own/{kind}/{c['name']}") for c in data[kind]]


@pytest.mark.parametrize("case", _own_cases("inclusion"))
def test_own_inclusion(case: dict[str, Any]) -> None:
    _, store = _own_tree()
    proof = inclusion_proof(case["index"], case["size"], store)
    assert [p.hex() for p in proof] == case["proof"]
    verify_inclusion(
        bytes.fromhex(case["leaf_hash"]),
        case["index"],
        case["size"],
        proof,
        bytes.fromhex(case["root"]),
    )


@pytest.mark.parametrize("case", _own_cases("consistency"))
def test_own_consistency(case: dict[str, Any]) -> None:
    _, store = _own_tree()
    proof = consistency_proof(case["size1"], case["size2"], store)
    assert [p.hex() for p in proof] == case["proof"]
    verify_consistency(
        case["size1"],
        case["size2"],
        proof,
        bytes.fromhex(case["root1"]),
        bytes.fromhex(case["root2"]),
    )


def _path_cases() -> list[Any]:
    data = json.loads((OWN_VECTORS / "merkle" / "tile_paths.json").read_text())
    return [pytest.param(c, id=f"own/tile-path/{c['path']}") for c in data["valid"]]


@pytest.mark.parametrize("case", _path_cases())
def test_own_tile_paths(case: dict[str, Any]) -> None:
    tile = parse_path(case["path"])
    assert tile.path == case["path"]
    if case["level"] == "entries":
        assert not isinstance(tile, Tile)
    else:
        assert isinstance(tile, Tile)
        assert tile.level == case["level"]
    assert (tile.index, tile.width) == (case["index"], case["width"])


def _invalid_path_cases() -> list[Any]:
    data = json.loads((OWN_VECTORS / "merkle" / "tile_paths.json").read_text())
    return [pytest.param(c, id=f"own/bad-tile-path/{c['why']}") for c in data["invalid"]]


@pytest.mark.parametrize("case", _invalid_path_cases())
def test_own_invalid_tile_paths(case: dict[str, Any]) -> None:
    with pytest.raises(MalformedError):
        parse_path(case["path"])


def test_own_tiles_for_sizes() -> None:
    data = _own("tile_paths.json")
    for size_text, paths in data["tiles_for_size"].items():
        assert [t.path for t in tiles_for_size(int(size_text))] == paths
    for case in data["changed_tiles"]:
        got = [t.path for t in changed_tiles(case["old_size"], case["new_size"])]
        assert got == case["paths"]


def _state_cases() -> list[Any]:
    data = json.loads((OWN_VECTORS / "merkle" / "tree_state.json").read_text())
    return [pytest.param(c, id=f"own/tree-state/{c['size']}") for c in data["states"]]


@pytest.mark.parametrize("case", _state_cases())
def test_own_tree_states(case: dict[str, Any]) -> None:
    entries, _ = _own_tree()
    state, _ = TreeState.empty().append([leaf_hash(e) for e in entries[: case["size"]]])
    assert state.to_bytes().hex() == case["bytes"]
    assert state.root().hex() == case["root"]
    parsed = TreeState.from_bytes(
        bytes.fromhex(case["bytes"]),
        expected_size=case["size"],
        expected_root=bytes.fromhex(case["root"]),
    )
    assert parsed == state


def test_own_tiles_bytes() -> None:
    """The tiles of the generator's tree, written by append_tiles in the generator's batches."""
    data = _own("tiles.json")
    entries = [b"entry %d" % i for i in range(data["size"])]
    written: dict[str, bytes] = {}
    size = 0
    for batch in data["batches"]:
        update = append_tiles(size, lambda t: written[t.path], entries=entries[size : size + batch])
        written.update(update.tiles)
        size += batch
    assert update.root.hex() == data["root"]
    assert sorted(written) == sorted(data["tile_sha256"])
    for path, sha in data["tile_sha256"].items():
        assert hashlib.sha256(written[path]).hexdigest() == sha, path


def test_generated_vectors_up_to_date(own_vectors: Path, tmp_path: Path) -> None:
    """Running generate_merkle.py gives exactly the checked-in files (it is deterministic)."""
    import importlib.util

    path = own_vectors / "generate_merkle.py"
    spec = importlib.util.spec_from_file_location("generate_merkle", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    setattr(module, "OUT", tmp_path)  # noqa: B010
    module.main()
    fresh = {p.name: p.read_bytes() for p in tmp_path.glob("*.json")}
    stored = {p.name: p.read_bytes() for p in (own_vectors / "merkle").glob("*.json")}
    assert fresh == stored
