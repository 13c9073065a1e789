"""A new Airflow home's metadata database: `airflow db migrate` against a copy of a template,
side by side (tools/airflow_db.py).

    python -m tools.bench.metadata_db [--repeat 3]

For SQLite (what `dag.test()` runs use) and a throwaway PostgreSQL (the real-scheduler stacks),
each round times one plain migration of a fresh database and one new home made from the template,
taking turns so both see the same load; the template's own migration is made before the rounds
and not counted. Prints medians, the ratio, and the wall and CPU seconds of each (CPU: this
process's children, the `airflow` CLI; the PostgreSQL server's own work is not in it).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tools import airflow_db
from tools.bench.common import format_table, throwaway_postgres


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(step: Callable[[], None]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), _children_cpu()
    step()
    return time.perf_counter() - wall, _children_cpu() - cpu


def measure(repeat: int, root: Path, server_url: Callable[[str], str] | None) -> dict[str, list]:
    """{"migrate": [(wall, cpu), ...], "template": [...]} for one kind of database; SQLite
    templates in `root`, never the developer's .local/ ones."""
    samples: dict[str, list] = {"migrate": [], "template": []}
    url = server_url or (lambda _name: "")
    templates = root / "templates"

    def from_template(env: dict[str, str]) -> None:
        airflow_db.migrate_metadata_db(env, sqlite_templates=templates)

    from_template(airflow_db.home_env(root / "warm-up", url("bench_warm_up")))  # the template, uncounted
    for index in range(repeat):
        plain = airflow_db.home_env(root / f"plain{index}", url(f"bench_plain_{index}"))
        copied = airflow_db.home_env(root / f"copied{index}", url(f"bench_copied_{index}"))
        samples["migrate"].append(_timed(lambda env=plain: airflow_db.run_airflow_db_migrate(env)))
        samples["template"].append(_timed(lambda env=copied: from_template(env)))
    return samples


def report(results: dict[str, dict[str, list]]) -> str:
    rows = []
    for kind, samples in results.items():
        plain_wall = statistics.median(wall for wall, _ in samples["migrate"])
        copy_wall = statistics.median(wall for wall, _ in samples["template"])
        plain_cpu = statistics.median(cpu for _, cpu in samples["migrate"])
        copy_cpu = statistics.median(cpu for _, cpu in samples["template"])
        rows.append([
            kind, f"{plain_wall:.2f} s", f"{copy_wall:.2f} s", f"{copy_wall / plain_wall:.3f}x",
            f"{plain_cpu:.2f} s", f"{copy_cpu:.2f} s", str(len(samples["migrate"])),
        ])  # fmt: skip
    headers = ["database", "airflow db migrate", "from the template", "ratio", "CPU migrate", "CPU template", "runs"]
    return format_table(headers, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds per kind of database (default 3)")
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory(prefix="blueprint-bench-metadata-") as scratch:
        root = Path(scratch)
        results["sqlite"] = measure(args.repeat, root / "sqlite", None)
        with throwaway_postgres() as server:
            results["postgres"] = measure(
                args.repeat, root / "postgres", lambda name: server.database(name).sqlalchemy_url()
            )
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
