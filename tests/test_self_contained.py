"""A fresh clone passes its tests with nothing beside it (issue 18, finding 1).

Why: the suite once read conformance data from ``../shared/vectors``, which a clone from a public
host does not have, and 76 tests failed there. These checks keep every path inside the checkout.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Ways a file could reach outside the checkout for data: a relative path to a sibling folder, or
# the project root's parent joined with more path parts.
OUTSIDE = [
    re.compile(r"\.\./shared\b"),
    re.compile(r"""/\s*["']shared["']"""),
    re.compile(r"ROOT\.parent\b"),
    re.compile(r"parents\[\d\]\.parent\b"),
    re.compile(r"parents\[2\]\s*/\s*[\"']shared"),
]


def tracked_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    return [ROOT / name for name in out.decode().split("\0") if name]


def test_no_tracked_file_reads_outside_the_checkout() -> None:
    offenders = []
    for path in tracked_files():
        if path.suffix not in {".py", ".md", ".toml", ".cfg", ".sh", ""} or not path.is_file():
            continue
        if path == Path(__file__).resolve():
            continue
        text = path.read_text("utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if any(pattern.search(line) for pattern in OUTSIDE):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


@pytest.mark.parametrize("folder", ["merkle", "note", "pdq", "vpdq", "vpdq-oracle"])
def test_conformance_vectors_are_in_the_repository(conformance_vectors: Path, folder: str) -> None:
    # Each folder ships with its provenance, and the licences it names are present.
    assert conformance_vectors == ROOT / "tests" / "vectors"
    assert (conformance_vectors / folder / "README.md").is_file()
    tracked = {p.relative_to(ROOT).as_posix() for p in tracked_files()}
    files = [p for p in (conformance_vectors / folder).rglob("*") if p.is_file()]
    assert files and all(p.relative_to(ROOT).as_posix() in tracked for p in files)


def test_vector_licences_are_present(conformance_vectors: Path) -> None:
    licences = conformance_vectors / "LICENSES"
    readme = (conformance_vectors / "README.md").read_text("utf-8")
    for name in ("Apache-2.0.txt", "BSD-ThreatExchange.txt", "ISC-sunlight.txt"):
        assert (licences / name).is_file()
        assert name in readme
