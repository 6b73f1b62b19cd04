"""Turn the generator's files (`inkingi generate`) into one CSV of people for record linkage.

members.csv names each person's household but not the village; deduplication compares
villages, so this joins the household's village code onto each member and keeps the columns
config/linkage/registry.toml reads (the same columns `inkingi match run` reads from the
database), plus member_key as the record id. A person with several phone numbers keeps the
first. Rows are ordered by village, then member_key: the order in which `inkingi match run`
reads the registry (households page by page, ordered by village code), and the same file on
every run.

    python bench/generated_people.py DIR [OUT]    # writes OUT (default DIR/people.csv)

Both `inkingi match dedupe` and Splink (bench/splink_febrl.py generated …) read this file, and
both are scored against DIR/truth.csv by `inkingi match evaluate`.
"""

import os
import sys
import time

import duckdb


def main():
    folder = sys.argv[1]
    started = time.time()
    con = duckdb.connect()
    con.execute("set threads to 2")
    members = os.path.join(folder, "members.csv")
    households = os.path.join(folder, "households.csv")
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(folder, "people.csv")
    con.execute(
        f"""
        copy (
            select m.member_key, m.given_name, m.family_name, m.sex, m.birth_date,
                   m.national_id, split_part(m.phones, ';', 1) as phone,
                   h.village_code as village
            from read_csv('{members}', all_varchar = true, header = true) m
            join read_csv('{households}', all_varchar = true, header = true) h
              using (household_key)
            order by h.village_code, m.member_key
        ) to '{out}' (header, delimiter ',')
        """
    )
    rows = con.execute(f"select count(*) from read_csv('{out}', all_varchar = true)").fetchone()[0]
    print(f"{out}: {rows} people, {time.time() - started:.1f} s")


if __name__ == "__main__":
    main()
