"""Run Splink (DuckDB backend) on FEBRL3 (dedupe) or FEBRL4 (link) and write clusters.csv in
the format `inkingi match evaluate` reads, so both tools are scored by the same evaluator.

The settings mirror Splink's published FEBRL examples (docs/demos/examples/duckdb/febrl3 and
febrl4 in the Splink repository): same blocking rules, comparisons, deterministic rules with
their recall, u from 1e6 random pairs, EM sessions blocked on date_of_birth then postcode.

    python bench/splink_febrl.py dedupe DIR/dataset3.csv OUT
    python bench/splink_febrl.py link DIR/dataset4a.csv DIR/dataset4b.csv OUT

`generated` deduplicates the people of `inkingi generate` (people.csv from
bench/generated_people.py) with the FEBRL3 example's settings carried over field by field:
names -> NameComparison, date_of_birth -> DateOfBirthComparison, soc_sec_id -> national_id
(DamerauLevenshteinAtThresholds [2]), postcode -> village (term-frequency-adjusted exact match),
plus exact matches on sex and phone; λ from deterministic rules, u from 1e6 random pairs, EM
blocked on the birth date then on the village (the postcode's counterpart). The example's
prediction rules block on single fields (each name alone), which at a million people would make
tens of billions of pairs; instead Splink gets the same five rules as config/linkage/registry.toml,
with exact names where Inkingi uses its spelling-variant key (Splink has none).

    python bench/splink_febrl.py generated DIR/people.csv OUT
"""

import csv
import os
import sys
import time

import duckdb
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

THRESHOLD = 0.95  # the same auto-link threshold as config/linkage/febrl.toml


def load(con, path, name):
    con.execute(
        f"""
        create table {name} as
        select trim(rec_id) as rec_id, trim(given_name) as given_name, trim(surname) as surname,
               trim(street_number) as street_number, trim(address_1) as address_1,
               trim(address_2) as address_2, trim(suburb) as suburb, trim(postcode) as postcode,
               trim(state) as state, trim(date_of_birth) as date_of_birth,
               trim(soc_sec_id) as soc_sec_id
        from read_csv('{path}', all_varchar = true, header = true, normalize_names = true)
        """
    )
    return con.table(name)


def dedupe(con, db_api, path):
    rel = load(con, path, "febrl3")
    rules = [block_on(c) for c in ["soc_sec_id", "given_name", "surname", "date_of_birth", "postcode"]]
    settings = SettingsCreator(
        unique_id_column_name="rec_id",
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=rules,
        comparisons=[
            cl.NameComparison("given_name"),
            cl.NameComparison("surname"),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
        ],
    )
    linker = Linker(db_api.register(rel), settings)
    linker.training.estimate_probability_two_random_records_match(
        [
            block_on("soc_sec_id"),
            block_on("given_name", "surname", "date_of_birth"),
            "l.given_name = r.surname and l.surname = r.given_name and l.date_of_birth = r.date_of_birth",
        ],
        recall=0.9,
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=2)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("postcode"))
    return linker


def link(con, db_api, left, right):
    a = load(con, left, "febrl4a")
    b = load(con, right, "febrl4b")
    rules = [
        block_on("given_name", "surname"),
        "l.given_name = r.surname and l.surname = r.given_name",
        block_on("date_of_birth"),
        block_on("soc_sec_id"),
        block_on("state", "address_1"),
        block_on("street_number", "address_1"),
        block_on("postcode"),
    ]
    settings = SettingsCreator(
        unique_id_column_name="rec_id",
        link_type="link_only",
        blocking_rules_to_generate_predictions=rules,
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison(
                "date_of_birth", input_is_string=True, datetime_format="%Y%m%d", invalid_dates_as_null=True
            ),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]).configure(term_frequency_adjustments=True),
        ],
    )
    linker = Linker([db_api.register(a), db_api.register(b)], settings)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("soc_sec_id"), block_on("given_name", "surname", "date_of_birth")], recall=0.8
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("date_of_birth"), estimate_without_term_frequencies=True
    )
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("postcode"), estimate_without_term_frequencies=True
    )
    return linker


def generated(con, db_api, path):
    con.execute(
        f"""
        create table people as
        select * from read_csv('{path}', all_varchar = true, header = true)
        """
    )
    rel = con.table("people")
    rules = [
        block_on("family_name", "substr(birth_date, 1, 4)", "substr(village, 1, 4)"),
        block_on("given_name", "substr(birth_date, 1, 4)", "substr(village, 1, 4)"),
        block_on("birth_date", "substr(village, 1, 4)"),
        block_on("national_id"),
        block_on("phone"),
    ]
    settings = SettingsCreator(
        unique_id_column_name="member_key",
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=rules,
        comparisons=[
            cl.NameComparison("given_name"),
            cl.NameComparison("family_name"),
            cl.DateOfBirthComparison("birth_date", input_is_string=True, datetime_format="%Y-%m-%d"),
            cl.DamerauLevenshteinAtThresholds("national_id", [2]),
            cl.ExactMatch("sex"),
            cl.ExactMatch("phone"),
            cl.ExactMatch("village").configure(term_frequency_adjustments=True),
        ],
    )
    linker = Linker(db_api.register(rel), settings)
    # The same deterministic rules and recall as config/linkage/registry.toml.
    linker.training.estimate_probability_two_random_records_match(
        [block_on("national_id"), block_on("given_name", "family_name", "birth_date")],
        recall=0.6,
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=2)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("birth_date"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("village"))
    return linker


def main():
    mode = sys.argv[1]
    out = sys.argv[-1]
    os.makedirs(out, exist_ok=True)
    started = time.time()
    con = duckdb.connect()
    con.execute("set threads to 2")
    db_api = DuckDBAPI(connection=con)
    if mode == "dedupe":
        linker = dedupe(con, db_api, sys.argv[2])
    elif mode == "generated":
        linker = generated(con, db_api, sys.argv[2])
    else:
        linker = link(con, db_api, sys.argv[2], sys.argv[3])
    predictions = linker.inference.predict(threshold_match_probability=0.2)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=THRESHOLD
    )
    rows = clusters.as_duckdbpyrelation().fetchall()
    columns = [c for c in clusters.as_duckdbpyrelation().columns]
    at = {c: i for i, c in enumerate(columns)}
    with open(os.path.join(out, "clusters.csv"), "w", newline="") as f:
        w = csv.writer(f)
        if mode != "link":
            w.writerow(["record_id", "cluster_id"])
            key = "rec_id" if mode == "dedupe" else "member_key"
            for r in rows:
                w.writerow([r[at[key]], r[at["cluster_id"]]])
        else:
            w.writerow(["source", "record_id", "cluster_id"])
            for r in rows:
                # Splink names the inputs by their registration order: table 0 is the left file.
                source = "left" if str(r[at["source_dataset"]]).endswith("input_table_0") else "right"
                w.writerow([source, r[at["rec_id"]], r[at["cluster_id"]]])
    print(f"splink {mode}: {len(rows)} records, {time.time() - started:.1f} s end to end")


if __name__ == "__main__":
    main()
