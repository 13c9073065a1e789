"""Where `make test`'s time goes: sums the per-test lines tests/cpu_log.py wrote (wall seconds and
the machine's busy CPU seconds) per suite and per file, and prints what the run's CPU puts under
any schedule of the same tests on this machine's cores.

    python -m tools.bench.test_suite [.local/test-reports/cpu.jsonl] [--files 15]
    python -m tools.bench.test_suite --write-durations tests/durations.json

The second form records each unit of work's seconds (a file; the container suite as one) for the
parallel run's order (tests/schedule.py): run it after a `make test` on a quiet machine, when
files were added or their tests changed much.

The CPU figure is the machine's, so it is the suite's own only on a machine with nothing else to
do; the load column says how quiet it was.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

DEFAULT_LOG = Path(".local/test-reports/cpu.jsonl")


@dataclass
class Totals:
    tests: int = 0
    wall: float = 0.0
    cpu: float = 0.0

    def add(self, record: dict) -> None:
        self.tests += 1
        self.wall += record["wall"]
        self.cpu += record["cpu"] or 0.0

    def row(self, name: str) -> str:
        busy = self.cpu / self.wall if self.wall else 0.0
        return f"| {name} | {self.tests} | {self.wall / 60:.1f} | {self.cpu / 60:.1f} | {busy:.2f} |"


def read(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def group(records: list[dict], key) -> dict[str, Totals]:
    totals: dict[str, Totals] = defaultdict(Totals)
    for record in records:
        totals[key(record)].add(record)
    return totals


def suite_of(record: dict) -> str:
    parts = record["test"].split("/")
    return parts[1] if len(parts) > 2 else parts[0]


def file_of(record: dict) -> str:
    return record["test"].split("::", 1)[0]


def report(records: list[dict], files: int, cores: int) -> str:
    whole = Totals()
    for record in records:
        whole.add(record)
    header = "| {} | tests | wall, min | machine CPU, min | CPU / wall (cores busy) |\n|---|---|---|---|---|"
    lines = [header.format("suite")]
    lines += [totals.row(name) for name, totals in sorted(group(records, suite_of).items())]
    lines.append(whole.row("**all**"))
    lines += ["", header.format(f"file (the {files} longest)")]
    by_file = sorted(group(records, file_of).items(), key=lambda item: -item[1].wall)
    lines += [totals.row(name) for name, totals in by_file[:files]]
    loads = sorted(record["load"] for record in records)
    run = whole_run(records)
    lines += [
        "",
        f"load average over the run: {loads[0]:.1f} to {loads[-1]:.1f} (median {loads[len(loads) // 2]:.1f})",
        f"first test's start to last test's end: {run.wall / 60:.1f} min on {len(workers(records))} worker(s), "
        f"the machine busy for {run.cpu / 60:.1f} CPU min ({run.cpu / run.wall:.2f} of its {cores} cores)",
        f"that CPU alone, spread over {cores} cores, takes {run.cpu / cores / 60:.1f} min: no schedule of these "
        f"tests on this machine ends sooner",
    ]
    return "\n".join(lines)


def workers(records: list[dict]) -> set[str]:
    return {record.get("worker", "") for record in records}


def whole_run(records: list[dict]) -> Totals:
    """The run from the first test's start to the last one's end, with the machine's CPU over it
    (the per-test sums count a span twice where workers' tests overlap)."""
    spans = [record for record in records if record.get("span") and record.get("cpu_span")]
    if not spans:
        return Totals(len(records), sum(r["wall"] for r in records), sum(r["cpu"] or 0.0 for r in records))
    first = min(spans, key=lambda record: record["span"][0])
    last = max(spans, key=lambda record: record["span"][1])
    return Totals(len(records), last["span"][1] - first["span"][0], last["cpu_span"][1] - first["cpu_span"][0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("log", nargs="?", type=Path, default=DEFAULT_LOG)
    parser.add_argument("--files", type=int, default=15, help="how many of the longest files to list")
    parser.add_argument("--write-durations", type=Path, metavar="JSON", help="record each unit's seconds there")
    args = parser.parse_args(argv)
    if not args.log.exists():
        parser.error(f"{args.log} does not exist: run `make test` first (it writes one line per test)")
    records = read(args.log)
    if args.write_durations:
        write_durations(records, args.write_durations)
        print(f"{args.write_durations}: the seconds of {len(records)} tests, per unit of work")
        return 0
    print(report(records, args.files, os.cpu_count() or 1))
    return 0


def write_durations(records: list[dict], path: Path) -> None:
    from tests.schedule import durations_from_log  # the scheduler's own units

    loads = sorted(record.get("load", 0.0) for record in records) or [0.0]
    load = {"min": loads[0], "median": loads[len(loads) // 2], "max": loads[-1]}
    units = durations_from_log(records)
    # one line per unit, so that a refresh reads as a short diff
    lines = [f"  {json.dumps(scope)}: {json.dumps(unit)}" for scope, unit in units.items()]
    path.write_text(
        "{\n"
        ' "about": "seconds per unit of work of one `make test`, for its order (tests/schedule.py)",\n'
        f' "load_average": {json.dumps(load)},\n'
        ' "units": {\n' + ",\n".join(lines) + "\n }\n}\n"
    )


if __name__ == "__main__":
    raise SystemExit(main())
