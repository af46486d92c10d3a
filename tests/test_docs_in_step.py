"""The docs say what the code does (issue 18, finding 11)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _block_after(text: str, marker: str) -> str:
    return text.split(marker, 1)[1].split("EOF\n", 1)[0]


def test_walkthrough_pictures_need_only_what_the_set_up_installs() -> None:
    readme = (ROOT / "README.md").read_text()
    script = _block_after(readme, "python - <<'EOF'\n")
    imports = set(re.findall(r"^(?:from|import) (\w+)", script, re.M))
    # `pip install -e .` installs the project's dependencies: Pillow and NumPy, not scikit-image.
    assert imports <= {"pathlib", "numpy", "PIL"}, imports
    demo = (ROOT / ".ci" / "demo").read_text()
    assert demo.split('MAKE_PICTURES = """\n', 1)[1].split('"""', 1)[0] == script


def test_readme_says_the_hub_rebuilds_lost_tiles() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "does not rebuild" not in readme
    assert "rebuilt from the database" in readme


def test_client_readme_shows_what_the_cli_prints_and_describes_the_page() -> None:
    text = (ROOT / "client" / "README.md").read_text()
    source = "\n".join(p.read_text() for p in (ROOT / "client").glob("*.py"))
    for line in (
        "Your case was created.",
        "Fingerprinting on this computer (nothing is sent yet)...",
        "Waiting for the public log to include them...",
        "receipt(s) verified",
    ):
        assert line in text and line in source, line
    for gone in ("Your case id:", "Sent. The hub accepted 36 fingerprints."):
        assert gone not in text
    assert "ncii-client ui" in text and "127.0.0.1" in text
