"""The wheel holds every Python package and every file of the page the hub serves
(pyproject.toml lists packages by hand because web/ installs as ``ncii_web``)."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

from hub.page import read_web_dir

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
TOP = ("auditor", "client", "crypto", "hashing", "hub", "partner_sdk")


def test_every_python_folder_is_a_listed_package() -> None:
    found = {
        str(p.parent.relative_to(ROOT)).replace("/", ".")
        for top in TOP
        for p in (ROOT / top).rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert found <= set(CONFIG["packages"]), sorted(found - set(CONFIG["packages"]))


def test_every_served_page_file_is_package_data() -> None:
    assert CONFIG["package-dir"]["ncii_web"] == "web"
    globs = CONFIG["package-data"]["ncii_web"]

    def shipped(path: str) -> bool:
        for g in globs:
            if "**" in g:
                prefix = g.split("**", 1)[0]
                if path.startswith(prefix):
                    return True
            elif "/" not in path and fnmatch.fnmatch(path, g):
                return True
        return False

    missing = [p for p in read_web_dir(ROOT / "web") if not shipped(p)]
    assert missing == []
