#!/usr/bin/env python3
"""FHIR ingestion load generator (issue: integrated child record, "FHIR bundle ingestion rate
including linkage"). Standard library only.

  fhir_load.py district DIR
      prints the district (two-digit NISR code) with the most children under six in the
      generator's files in DIR (households.csv, members.csv).

  fhir_load.py run --url URL --token TOKEN --dir DIR --district D [--clients C] [--limit N]
      posts one FHIR R4 transaction Bundle per child under six of district D to URL/fhir/R4,
      from C concurrent clients, as an EMR would send a child's record: a Patient WITHOUT the
      registry's person id (names as registered, one in five with two letters of the given name
      swapped; the birth registration number when the generator gave one), so the server links
      each child to the registry by its linkage engine; the birth doses (BCG, OPV0), the doses
      due by the child's age (OPV/Penta/PCV 1-3, MR1), and one weight Observation. Prints
      bundles/s, resources/s, latency percentiles and the HTTP statuses.
"""
import argparse
import csv
import datetime
import json
import random
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

CVX = "http://hl7.org/fhir/sid/cvx"
LOINC = "http://loinc.org"
BIRTH_REGISTRATION = "urn:inkingi:birth-registration"
# (CVX code, dose, age in days when given): the Rwandan EPI schedule's early doses.
DOSES = [
    ("19", 1, 0),  # BCG
    ("02", 0, 0),  # OPV0
    ("02", 1, 42), ("102", 1, 42), ("133", 1, 42),
    ("02", 2, 70), ("102", 2, 70), ("133", 2, 70),
    ("02", 3, 98), ("102", 3, 98), ("133", 3, 98),
    ("04", 1, 274),  # MR1 at nine months
]


def children(directory, today):
    """(member row, village) of every member under six, by the generator's files."""
    village = {}
    with open(f"{directory}/households.csv", newline="") as f:
        for r in csv.DictReader(f):
            village[r["household_key"]] = r["village_code"]
    with open(f"{directory}/members.csv", newline="") as f:
        for r in csv.DictReader(f):
            try:
                born = datetime.date.fromisoformat(r["birth_date"])
            except ValueError:
                continue  # year- or month-only dates, and the generator's injected bad rows
            if 0 <= (today - born).days < 6 * 365 and r["household_key"] in village:
                yield r, village[r["household_key"]], born


def swap_two(name, rng):
    if len(name) < 4:
        return name
    i = rng.randrange(1, len(name) - 2)
    return name[:i] + name[i + 1] + name[i] + name[i + 2:]


def bundle(member, born, today, rng):
    key = member["member_key"]
    given = member["given_name"]
    if rng.random() < 0.2:
        given = swap_two(given, rng)
    patient = {
        "resourceType": "Patient", "id": f"P-{key}", "meta": {"source": "emr-bench"},
        "name": [{"family": member["family_name"], "given": [given]}],
        "gender": "female" if member["sex"] == "F" else "male",
        "birthDate": born.isoformat(),
    }
    if member["birth_registration"]:
        patient["identifier"] = [
            {"system": BIRTH_REGISTRATION, "value": member["birth_registration"]}]
    ref = f"urn:uuid:p-{key}"
    entries = [{"fullUrl": ref, "resource": patient,
                "request": {"method": "POST", "url": "Patient"}}]
    age = (today - born).days
    for code, dose, at in DOSES:
        if at > age:
            break
        r = {"resourceType": "Immunization", "id": f"I-{key}-{code}-{dose}",
             "meta": {"source": "emr-bench"}, "status": "completed",
             "patient": {"reference": ref},
             "vaccineCode": {"coding": [{"system": CVX, "code": code}]},
             "occurrenceDateTime": (born + datetime.timedelta(days=at)).isoformat(),
             # FHIR's positiveInt starts at 1: a birth dose (OPV 0) is numbered as a string.
             "protocolApplied": [{"doseNumberPositiveInt": dose} if dose
                                 else {"doseNumberString": "0"}]}
        entries.append({"fullUrl": f"urn:uuid:i-{key}-{code}-{dose}", "resource": r,
                        "request": {"method": "POST", "url": "Immunization"}})
    # A plausible weight for the age (kg): about 3.3 at birth, 9 at one year, 18 at six.
    weight = round(3.3 + min(age, 365) * 0.016 + max(age - 365, 0) * 0.0055, 1)
    obs = {"resourceType": "Observation", "id": f"W-{key}", "meta": {"source": "emr-bench"},
           "status": "final", "code": {"coding": [{"system": LOINC, "code": "29463-7"}]},
           "subject": {"reference": ref}, "effectiveDateTime": today.isoformat(),
           "valueQuantity": {"value": weight, "unit": "kg",
                             "system": "http://unitsofmeasure.org", "code": "kg"}}
    entries.append({"fullUrl": f"urn:uuid:w-{key}", "resource": obs,
                    "request": {"method": "POST", "url": "Observation"}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def district(args):
    today = datetime.date.today()
    counts = Counter(v[:2] for _, v, _ in children(args.dir, today))
    code, n = counts.most_common(1)[0]
    print(code)
    print(f"{n} children under six in district {code}", file=sys.stderr)


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(p * len(sorted_values)))]


def run(args):
    today = datetime.date.today()
    rng = random.Random(7)
    work = [bundle(m, born, today, rng) for m, v, born in children(args.dir, today)
            if v.startswith(args.district)]
    if args.limit:
        work = work[: args.limit]
    bodies = [json.dumps(b).encode() for b in work]
    resources = sum(len(b["entry"]) for b in work)
    print(f"{len(bodies)} bundles, {resources} resources, {args.clients} clients", flush=True)
    lock = threading.Lock()
    latencies, statuses, errors = [], Counter(), []
    next_index = iter(range(len(bodies)))

    def client():
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                return
            req = urllib.request.Request(
                f"{args.url}/fhir/R4", data=bodies[i], method="POST",
                headers={"Authorization": f"Bearer {args.token}",
                         "Content-Type": "application/fhir+json"})
            t0 = time.perf_counter()
            try:
                with urllib.request.urlopen(req, timeout=120) as res:
                    res.read()
                    status = res.status
            except urllib.error.HTTPError as e:
                status = e.code
                body = e.read()[:300]
                with lock:
                    errors.append((i, status, body))
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)
                statuses[status] += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    latencies.sort()
    print(f"wall {wall:.1f} s: {len(bodies) / wall:.1f} bundles/s, "
          f"{resources / wall:.1f} resources/s")
    print("latency per bundle: p50 {:.1f} ms, p95 {:.1f} ms, p99 {:.1f} ms, max {:.1f} ms".format(
        *(1000 * percentile(latencies, p) for p in (0.5, 0.95, 0.99)), 1000 * latencies[-1]))
    print(f"statuses: {dict(statuses)}")
    for i, status, body in errors[:5]:
        print(f"  bundle {i}: {status} {body!r}")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("district")
    d.add_argument("dir")
    r = sub.add_parser("run")
    r.add_argument("--url", required=True)
    r.add_argument("--token", required=True)
    r.add_argument("--dir", required=True)
    r.add_argument("--district", required=True)
    r.add_argument("--clients", type=int, default=8)
    r.add_argument("--limit", type=int, default=0)
    args = p.parse_args()
    {"district": district, "run": run}[args.command](args)


if __name__ == "__main__":
    main()
