"""Fill catalog entries from a JSON file of translations: {"de": {msgid: msgstr}, "es": {...}}.

Used when translations are prepared outside the .po files (e.g. by a translator's spreadsheet).
Existing translations are kept unless the JSON gives a new one. Plural entries take a list.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]


def main(path: str) -> None:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    for lang, table in data.items():
        po = ROOT / lang / "LC_MESSAGES" / "messages.po"
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=lang)
        for message in catalog:
            key = message.id[0] if isinstance(message.id, tuple) else message.id
            if key in table:
                value = table[key]
                message.string = tuple(value) if isinstance(value, list) else value
                message.flags.discard("fuzzy")
        with po.open("wb") as fh:
            write_po(fh, catalog, width=100, omit_header=False)


if __name__ == "__main__":
    main(sys.argv[1])
