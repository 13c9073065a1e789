"""`python -m tools.bench.stack`: the deploy image and its local stack, measured in one run.

- build: the deploy image (root Dockerfile on the Astro Runtime stand-in) from scratch
  (`docker build --no-cache`, wheelhouse already downloaded), again with nothing changed, and after
  a change to one project file (what a commit that edits a DAG or a model costs);
- size: the image, and inside it Airflow's environment and the dbt venv;
- stack: `docker/compose.yaml` started on free ports with its own secrets, from `up` to the API
  server answering, to `jaffle_shop_local` parsed, to its first triggered run finishing; dbt builds
  into the stack's own PostgreSQL, as with `astro dev start`.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from include.blueprint.settings import load_settings
from tools.airflow_api import AirflowApi
from tools.airflow_settings import with_connection
from tools.bench import common
from tools.bench.common import BENCH_DIR, BenchError
from tools.local_env import REPO_ROOT
from tools.postgres import ConnectionSettings
from tools.stack import throwaway_stack_env

IMAGE = "airflow-dbt-blueprint/astro:local"
RESULT_FILE = BENCH_DIR / "stack.json"
DAG_ID = "jaffle_shop_local"
BUILT = re.compile(r"(stand-in built|built) in (\d+) s")


def build(env: dict[str, str] | None = None) -> dict[str, float]:
    """Run ci/build-astro-image.sh; wall time and the script's own per-build figures."""
    start = time.monotonic()
    result = subprocess.run(["bash", "ci/build-astro-image.sh"], cwd=REPO_ROOT, env={**os.environ, **(env or {})},
                            capture_output=True, text=True)  # fmt: skip
    if result.returncode != 0:
        raise BenchError(f"ci/build-astro-image.sh failed: {common.one_line(result.stderr[-500:])}")
    figures = {"wall_seconds": time.monotonic() - start}
    for step, seconds in BUILT.findall(result.stderr):
        figures["stand_in_seconds" if step.startswith("stand-in") else "project_seconds"] = float(seconds)
    return figures


def sizes() -> dict[str, float]:
    du = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", IMAGE, "du", "-sm", "/usr/local/airflow-python",
         "/usr/local/airflow/dbt_venv"], capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    image = subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", IMAGE], capture_output=True,
                           text=True, check=True).stdout  # fmt: skip
    return {"image_mb": int(image) / 1e6, "airflow_env_mb": float(du[0]), "dbt_venv_mb": float(du[2])}


def stack_env(folder: Path) -> dict[str, str]:
    """A throwaway stack whose dbt builds into the stack's own PostgreSQL, as under the Astro CLI."""
    env = {"STACK_PROJECT": f"blueprint-bench-{os.getpid()}",
           **throwaway_stack_env(folder, {"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"})}  # fmt: skip
    warehouse = ConnectionSettings(host="127.0.0.1", port=int(env["STACK_POSTGRES_PORT"]), user="postgres",
                                   password=env["STACK_POSTGRES_PASSWORD"], database="postgres")  # fmt: skip
    with_connection(REPO_ROOT / "airflow_settings.yaml", load_settings({}).warehouse.conn_id, warehouse,
                    Path(env["STACK_SETTINGS_FILE"]))  # fmt: skip
    return env


def stack_timings() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="blueprint-bench-stack-") as folder:
        env = {**os.environ, **stack_env(Path(folder))}
        api = AirflowApi(f"http://127.0.0.1:{env['STACK_AIRFLOW_PORT']}")
        start = time.monotonic()
        try:
            subprocess.run(["bash", "ci/stack.sh", "up"], cwd=REPO_ROOT, env=env, check=True, capture_output=True)
            healthy = time.monotonic() - start
            api.wait_for_dag(DAG_ID)
            parsed = time.monotonic() - start
            run = api.wait(DAG_ID, api.trigger(DAG_ID))
            finished = time.monotonic() - start
            if run.state != "success":
                raise BenchError(f"{DAG_ID} ended {run.state} in the stack: {run.tasks}")
        finally:
            subprocess.run(["bash", "ci/stack.sh", "down"], cwd=REPO_ROOT, env={**env, "WIPE": "1"},
                           capture_output=True)  # fmt: skip
    return {"api_answers_seconds": healthy, "dag_parsed_seconds": parsed, "first_run_success_seconds": finished,
            "run_seconds": finished - parsed}  # fmt: skip


def changed_file_build() -> dict[str, float]:
    marker = REPO_ROOT / "dags" / ".bench-stack-change"
    marker.write_text(str(time.time()))
    try:
        return build()
    finally:
        marker.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-cold", action="store_true", help="no build from scratch (minutes)")
    args = parser.parse_args()
    started = time.monotonic()
    report: dict[str, Any] = {}
    if not args.skip_cold:
        report["cold_build"] = build({"NO_CACHE": "1"})
    report["cached_build"] = build()
    report["one_file_changed_build"] = changed_file_build()
    build()  # back to the committed tree's image
    report["sizes"] = sizes()
    report["stack"] = stack_timings()
    rows = [[name.replace("_", " "), f"{figures['wall_seconds']:.0f} s",
             ", ".join(f"{key.replace('_seconds', '')} {value:.0f} s" for key, value in figures.items()
                       if key != "wall_seconds")]
            for name, figures in report.items() if name.endswith("build")]  # fmt: skip
    print(common.format_table(["build", "wall", "steps"], rows))
    print("sizes: " + ", ".join(f"{key} {value:.0f}" for key, value in report["sizes"].items()))
    print("stack: " + ", ".join(f"{key} {value:.1f}" for key, value in report["stack"].items()))
    common.finish_report(report, started, RESULT_FILE, "stack")


if __name__ == "__main__":
    try:
        main()
    except BenchError as error:
        raise SystemExit(f"error: {error}") from None
