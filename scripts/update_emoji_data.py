#!/usr/bin/env python3
"""Regenerate the web client's emoji table from the emojibase-data npm package.

    python scripts/update_emoji_data.py [--version 17.0.0]

Fetches the package with the ordinary npm client (``npm pack``), reads its English data
(labels, keywords, groups) and its Slack-compatible (``iamcal``) and GitHub shortcodes, and
writes ``src/parley/web/static/emoji/data.json`` and the package's licence beside it. The
web client loads nothing from other hosts: this vendored file is what the composer's picker,
``:shortcode:`` completion and the reaction picker read.

Output: ``{"source", "groups": [names], "emoji": [[emoji, label, group, [shortcodes],
[keywords]], ...]}`` in emojibase order. ``emoji`` is the fully-qualified form (U+FE0F only
where the character's default presentation is text, as Unicode's emoji-test.txt has it),
so the same reaction picked here or typed elsewhere is the same string. Skin-tone variants
and the "component" group (bare skin tones, hair styles) are left out, and so are emoji
newer than ``--max-version`` (default 14.0: the server checks reactions with Python's
``unicodedata``, which knows Unicode 14 on Python 3.11; a newer emoji would be refused).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "src" / "parley" / "web" / "static" / "emoji"
PACKAGE = "emojibase-data"
DEFAULT_VERSION = "17.0.0"
DEFAULT_MAX_EMOJI_VERSION = 14.0
COMPONENT_GROUP = 2  # skin tones and hair components: not emoji anyone picks alone
EMOJI_PRESENTATION = 1  # emojibase "type": 1 emoji by default, 0 text by default
GROUP_NAMES = {
    0: "Smileys & emotion",
    1: "People & body",
    3: "Animals & nature",
    4: "Food & drink",
    5: "Travel & places",
    6: "Activities",
    7: "Objects",
    8: "Symbols",
    9: "Flags",
}


def fetch(version: str, into: Path) -> Path:
    """The unpacked package directory, fetched with ``npm pack``."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is needed to fetch the emoji data (apt-get install npm)")
    subprocess.run(
        [npm, "pack", f"{PACKAGE}@{version}", "--silent"], cwd=into, check=True, capture_output=True
    )
    [archive] = into.glob(f"{PACKAGE}-*.tgz")
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "package"


def shortcode_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def qualified(entry: dict[str, Any]) -> str:
    """Emoji-presentation characters without a redundant U+FE0F; the rest as given."""
    if entry.get("type") == EMOJI_PRESENTATION:
        return "".join(chr(int(part, 16)) for part in entry["hexcode"].split("-"))
    return str(entry["emoji"])


def build(package: Path, version: str, max_emoji_version: float) -> dict[str, Any]:
    data = json.loads((package / "en" / "data.json").read_text())
    codes = [
        json.loads((package / "en" / "shortcodes" / f"{name}.json").read_text())
        for name in ("iamcal", "github")
    ]
    rows = []
    for entry in sorted(data, key=lambda e: e.get("order", 1 << 30)):
        group = entry.get("group")
        if group is None or group == COMPONENT_GROUP or group not in GROUP_NAMES:
            continue
        if float(entry.get("version", 0)) > max_emoji_version:
            continue
        names: list[str] = []
        for table in codes:
            for code in shortcode_list(table.get(entry["hexcode"])):
                if code not in names:
                    names.append(code)
        keywords = [t for t in entry.get("tags", []) if t not in names]
        rows.append([qualified(entry), entry["label"], group, names, keywords])
    groups = sorted({row[2] for row in rows})
    index = {group: i for i, group in enumerate(groups)}
    for row in rows:
        row[2] = index[row[2]]
    return {
        "source": (
            f"{PACKAGE} {version} (MIT; see LICENSE.txt): labels, keywords, iamcal and GitHub"
            f" shortcodes; emoji up to version {max_emoji_version}"
        ),
        "groups": [GROUP_NAMES[g] for g in groups],
        "emoji": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", default=DEFAULT_VERSION)
    parser.add_argument("--max-version", type=float, default=DEFAULT_MAX_EMOJI_VERSION)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        package = fetch(args.version, Path(tmp))
        table = build(package, args.version, args.max_version)
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        text = json.dumps(table, ensure_ascii=False, separators=(",", ":"))
        (OUT_DIR / "data.json").write_text(text + "\n", encoding="utf-8")
        licence = (package / "LICENSE").read_text()
        (OUT_DIR / "LICENSE.txt").write_text(
            f"The emoji table in data.json is derived from {PACKAGE} {args.version}.\n\n{licence}",
            encoding="utf-8",
        )
    print(f"{len(table['emoji'])} emoji written to {OUT_DIR / 'data.json'}")


if __name__ == "__main__":
    main()
