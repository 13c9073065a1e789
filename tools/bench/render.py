"""`python -m tools.bench.render`: DAG-file parse time, manifest-first rendering vs Cosmos `dbt ls`,
and against plain Airflow building the same task graph from the same manifest.

Every measurement runs in a fresh process (`--child`) that imports Airflow and Cosmos, then times
only the DAG construction. The manifest variant runs with an empty PATH, a nonexistent dbt
executable and an audit hook that records every process start, to show it never starts dbt. The
plain variants (tools/bench/plain_dag.py) read the same manifest and build the same task ids and
dependencies with EmptyOperators (Airflow's floor) or BashOperators carrying each task's dbt command.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from include.blueprint.manifest import ManifestNotReady
from include.blueprint.render_shortcuts import SWITCH
from tools import synthetic_project
from tools.bench import common
from tools.bench.common import BENCH_DIR, LOG_DIR, BenchError
from tools.local_env import DBT_BIN, QUIET_DBT, REPO_ROOT
from tools.manifest import PARSE_PLACEHOLDERS

VARIANTS = ("manifest", "manifest_off", "plain_empty", "plain_bash", "dbt_ls")
PLAIN_VARIANTS = ("plain_empty", "plain_bash")
# ours with BLUEPRINT_RENDER_SHORTCUTS=0 (include/blueprint/render_shortcuts.py), and the plain floors
COMPARED = ("manifest_off", *PLAIN_VARIANTS)
PROCESS_EVENTS = frozenset(
    {"subprocess.Popen", "os.posix_spawn", "os.fork", "os.forkpty", "os.exec", "os.spawn", "os.system"}
)
TARGET_SPEEDUP = 20.0
TARGET_LARGE_SECONDS = 1.0
TARGET_PLAIN_RATIO = 2.0  # ours at most 2x plain Airflow building the same graph, on the large project
RESULT_FILE = BENCH_DIR / "render.json"
ISOLATED_PREFIXES = ("AIRFLOW__", "AIRFLOW_CONN_", "POSTGRES_", "BLUEPRINT")
TABLE_HEADERS = "project|nodes/tasks|manifest min/median s|dbt ls min/median s|speed-up|warm median s|warm speed-up"
PLAIN_HEADERS = (
    "project|tasks|ours min/median (CPU) s|shortcuts off min/median (CPU) s|EmptyOperator min/median (CPU) s"
    "|ours/Empty (CPU)|BashOperator min/median (CPU) s|ours/Bash (CPU)"
)


@dataclass(frozen=True)
class Project:
    name: str
    project_dir: Path
    profile: str


# -- child: one DAG construction in a fresh process ---------------------------------------------
def _environ(project_dir: str, profile: str) -> dict[str, str]:
    return {
        **os.environ,
        "BLUEPRINT__PROJECTS__JAFFLE_SHOP__PROJECT_DIR": project_dir,
        "BLUEPRINT__PROJECTS__JAFFLE_SHOP__PROFILE": profile,
    }


def _manifest_builder(project_dir: str, profile: str) -> Callable[[str], Any]:
    from include.blueprint.modes import build_dbt_dag
    from include.blueprint.settings import load_settings

    environ = _environ(project_dir, profile)
    return lambda dag_id: build_dbt_dag(dag_id, "local", load_settings(environ))


def _plain_builder(operator: str) -> Callable[[str, str], Callable[[str], Any]]:
    """The same DAG arguments (schedule, default_args, trigger params) as ours, prepared before the
    clock starts; timed: reading the manifest, planning the graph and building the operators."""

    def prepare(project_dir: str, profile: str) -> Callable[[str], Any]:
        from include.blueprint import cosmos_configs
        from include.blueprint.dag_specs import default_spec
        from include.blueprint.settings import load_settings
        from tools.bench import plain_dag

        spec = default_spec(load_settings(_environ(project_dir, profile)), "plain", "local")
        executable, environment = cosmos_configs.dbt_command(spec.settings)
        manifest = spec.project.manifest_path

        def build(dag_id: str) -> Any:
            arguments = {**cosmos_configs.dag_arguments(spec, "plain"), "dag_id": dag_id}
            return plain_dag.build(arguments, spec.project_dir, manifest, operator, dbt=executable, env=environment)

        return build

    return prepare


def _dbt_ls_builder(project_dir: str, profile: str) -> Callable[[str], Any]:
    import datetime as dt

    from cosmos import DbtDag, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import InvocationMode, LoadMode, TestBehavior

    dbt = str(DBT_BIN / "dbt")
    return lambda dag_id: DbtDag(
        dag_id=dag_id,
        schedule=None,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        project_config=ProjectConfig(dbt_project_path=project_dir),
        profile_config=ProfileConfig(
            profile_name=profile, target_name="dev", profiles_yml_filepath=Path(project_dir) / "profiles.yml"
        ),
        render_config=RenderConfig(  # the shipped granularity: a model with its tests, shared tests apart
            load_method=LoadMode.DBT_LS,
            dbt_executable_path=dbt,
            invocation_mode=InvocationMode.SUBPROCESS,
            test_behavior=TestBehavior.BUILD,
            should_detach_multiple_parents_tests=True,
        ),
        execution_config=ExecutionConfig(dbt_executable_path=dbt, invocation_mode=InvocationMode.SUBPROCESS),
    )


def child(variant: str, project_dir: str, profile: str) -> dict[str, Any]:
    started = time.perf_counter()
    import airflow  # noqa: F401  # before cosmos: the reverse order raises a circular ImportError
    import cosmos  # noqa: F401

    builders = {"manifest": _manifest_builder, "manifest_off": _manifest_builder, "dbt_ls": _dbt_ls_builder}
    builders |= {variant: _plain_builder(variant.removeprefix("plain_")) for variant in PLAIN_VARIANTS}
    build = builders[variant](project_dir, profile)
    import_seconds = time.perf_counter() - started
    process_starts: list[str] = []
    sys.addaudithook(
        lambda event, args: process_starts.append(f"{event} {args[:2]}"[:200]) if event in PROCESS_EVENTS else None
    )
    modules_before = set(sys.modules)
    cpu_started = time.process_time()  # CPU time: what other processes on a shared machine disturb least
    dag, cold = common.timed(build, f"bench_{variant}")
    result = {
        "variant": variant,
        "import_seconds": import_seconds,
        "seconds": cold,
        "cpu_seconds": time.process_time() - cpu_started,
        "task_ids": sorted(dag.task_ids),
        "upstreams": {task.task_id: sorted(task.upstream_task_ids) for task in dag.tasks},
        "process_starts": process_starts,
        "modules_imported": sorted(common.top_level(set(sys.modules)) - common.top_level(modules_before)),
    }
    if variant == "manifest":  # a second build in the same process: no lazy imports left to pay
        result["warm_seconds"] = common.timed(build, f"bench_{variant}_warm")[1]
    return result


# -- parent: prepare the projects, start the children, report --------------------------------------
def prepare_projects(models: int) -> list[Project]:
    synthetic = BENCH_DIR / f"synthetic-{models}"
    synthetic_project.write_project(synthetic, models)  # keeps unchanged files, so the manifest stays fresh
    common.ensure_fresh_manifest(synthetic)
    jaffle = common.prepare_jaffle_shop()
    return [Project("jaffle_shop", jaffle, "jaffle_shop"), Project(f"synthetic_{models}", synthetic, "synthetic")]


def child_env(variant: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(ISOLATED_PREFIXES)}
    env |= QUIET_DBT | {
        "AIRFLOW_HOME": str(common.BENCH_AIRFLOW_HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__COSMOS__ENABLE_CACHE": "False",
        "AIRFLOW__COSMOS__CACHE_DIR": str(BENCH_DIR / "cosmos-cache"),
        "PYTHONPATH": str(REPO_ROOT),
    }
    if variant != "dbt_ls":  # any attempt to start dbt would fail, on top of being recorded
        switch = {SWITCH: "0"} if variant == "manifest_off" else {}
        return env | switch | {"PATH": "", "BLUEPRINT__DBT__EXECUTABLE": "/nonexistent"}
    return env | PARSE_PLACEHOLDERS  # dbt ls renders the profile but never connects


def run_child(variant: str, project: Project, repetition: int) -> dict[str, Any]:
    log_path = LOG_DIR / f"render-{project.name}-{variant}-{repetition}.log"
    command = [sys.executable, "-m", "tools.bench.render", "--child", variant]
    command += ["--project-dir", str(project.project_dir), "--profile", project.profile]
    summary, returncode, _ = common.run_json_child(command, child_env(variant), log_path)
    if returncode != 0 or summary is None:
        raise BenchError(f"{variant} rendering of {project.name} failed; see {common.display_path(log_path)}")
    summary["cosmos_phases"] = common.cosmos_phases(log_path.read_text())
    print(f"render: {project.name:<16} {variant:<8} #{repetition + 1} {summary['seconds']:.3f} s", flush=True)
    return summary


def measure_project(project: Project, args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """Fresh-process runs of every variant, interleaved so drifting machine load hits both alike."""
    runs: dict[str, list[dict[str, Any]]] = {variant: [] for variant in VARIANTS}
    dbt_ls_runs = args.dbt_ls_repeat
    for repetition in range(max(args.repeat, args.dbt_ls_repeat)):
        for variant in VARIANTS:
            wanted = dbt_ls_runs if variant == "dbt_ls" else args.repeat
            if repetition < wanted:
                runs[variant].append(run_child(variant, project, repetition))
        if repetition == 0 and runs["dbt_ls"][0]["seconds"] > args.slow_seconds:
            dbt_ls_runs = min(dbt_ls_runs, 2)  # a slow dbt ls adds little information per extra run
    return runs


def project_result(project: Project, runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    manifest, dbt_ls = runs["manifest"], runs["dbt_ls"]
    cold = common.summarize([run["seconds"] for run in manifest])
    warm = common.summarize([run["warm_seconds"] for run in manifest])
    listed = common.summarize([run["seconds"] for run in dbt_ls])
    return {
        "project": project.name,
        "nodes": common.count_nodes(project.project_dir / "target" / "manifest.json"),
        "tasks": len(manifest[0]["task_ids"]),
        "manifest_cold": cold.as_dict(),
        "manifest_warm": warm.as_dict(),
        "dbt_ls": listed.as_dict(),
        "speedup_cold": common.speedup(listed.median, cold.median),
        "speedup_warm": common.speedup(listed.median, warm.median),
        "same_task_ids": len({tuple(run["task_ids"]) for run in manifest + dbt_ls}) == 1,
        "compared": {variant: compared_result(manifest, runs[variant], cold) for variant in COMPARED},
        "manifest_process_starts": sorted({start for run in manifest for start in run["process_starts"]}),
        "dbt_ls_process_starts_per_run": [len(run["process_starts"]) for run in dbt_ls],
        "packages_imported_by_first_build": sorted({name for run in manifest for name in run["modules_imported"]}),
        "cosmos_phases_median": {
            variant: common.medians_by_key([run["cosmos_phases"] for run in runs[variant]])
            for variant in ("manifest", "dbt_ls")
        },
        "import_seconds": [run["import_seconds"] for run in manifest + dbt_ls],
    }


def compared_result(
    manifest: list[dict[str, Any]], plain: list[dict[str, Any]], ours: common.Summary
) -> dict[str, Any]:
    """A compared variant's times, our median over its median (wall and CPU), and whether both built
    the same graph."""
    summary = common.summarize([run["seconds"] for run in plain])
    cpu = statistics.median(run["cpu_seconds"] for run in plain)
    ours_cpu = statistics.median(run["cpu_seconds"] for run in manifest)
    graphs = {json.dumps(run["upstreams"], sort_keys=True) for run in manifest + plain}
    return {
        "times": summary.as_dict(),
        "cpu_median": cpu,
        "ours_cpu_median": ours_cpu,
        "ratio": common.speedup(ours.median, summary.median),
        "cpu_ratio": common.speedup(ours_cpu, cpu),
        "same_graph": len(graphs) == 1,
    }


def plain_row(item: dict[str, Any]) -> list[str]:
    compared = item["compared"]
    ours = common.Summary(**item["manifest_cold"])
    ours_cpu = compared[COMPARED[0]]["ours_cpu_median"]
    row = [item["project"], str(item["tasks"]), f"{common.format_min_median(ours)} ({common.format_seconds(ours_cpu)})"]
    for variant in COMPARED:
        times = common.format_min_median(common.Summary(**compared[variant]["times"]))
        row.append(f"{times} ({common.format_seconds(compared[variant]['cpu_median'])})")
        if variant in PLAIN_VARIANTS:
            wall, cpu = (common.format_ratio(compared[variant][key]) for key in ("ratio", "cpu_ratio"))
            row.append(f"{wall} ({cpu})")
    return row


def table_row(item: dict[str, Any]) -> list[str]:
    cold, warm, listed = (common.Summary(**item[key]) for key in ("manifest_cold", "manifest_warm", "dbt_ls"))
    return [
        item["project"],
        f"{item['nodes']} / {item['tasks']}",
        common.format_min_median(cold),
        common.format_min_median(listed),
        common.format_ratio(item["speedup_cold"]),
        common.format_seconds(warm.median),
        common.format_ratio(item["speedup_warm"]),
    ]


def print_report(results: list[dict[str, Any]]) -> None:
    print("\nDAG construction time, one fresh process per run (Cosmos cache off; dbt ls as a subprocess)")
    print(common.format_table(TABLE_HEADERS.split("|"), [table_row(item) for item in results]))
    print("\nOurs against plain Airflow building the same task graph from the same manifest (ratio = ours / plain)")
    print(common.format_table(PLAIN_HEADERS.split("|"), [plain_row(item) for item in results]))
    print("warm = a 2nd construction in the same process; Cosmos's own split of the 1st one (medians):")
    for item in results:
        lazy = [name for name in item["packages_imported_by_first_build"] if name.isidentifier() and name[0] != "_"]
        split = ", ".join(f"{variant} load {phases.get('load', 0):.3f} s + DAG {phases.get('build', 0):.3f} s"
                          for variant, phases in item["cosmos_phases_median"].items())  # fmt: skip
        runs = f"{item['manifest_cold']['runs']} manifest, {item['dbt_ls']['runs']} dbt ls runs"
        print(f"  {item['project']} ({runs}): {split}")
        named = f"{', '.join(lazy[:8])}{', ...' if len(lazy) > 8 else ''}" if lazy else "none"
        print(f"    the 1st manifest construction imported {len(lazy)} more packages: {named}")
    imports = common.summarize([seconds for item in results for seconds in item["import_seconds"]])
    print(f"imports before construction (airflow, cosmos, the builder's modules; not in the times above): "
          f"min {imports.min:.3f} s, median {imports.median:.3f} s over {imports.runs} processes")  # fmt: skip


def print_checks(results: list[dict[str, Any]]) -> bool:
    """Print the verifications (OK/FAIL) and the targets (MET/NOT MET); True when every verification passed."""
    verified = True
    for item in results:
        started, per_run = item["manifest_process_starts"], item["dbt_ls_process_starts_per_run"]
        dbt_started = [start for start in started if "dbt" in start]
        for text, ok in (
            (f"no dbt process while rendering from the manifest (PATH empty, dbt=/nonexistent; all process starts: "
             f"{started or 'none'}; the same audit hook counted {per_run} per dbt ls run)", not dbt_started),
            (f"identical {item['tasks']} task ids from the manifest and from dbt ls", item["same_task_ids"]),
            *((f"{variant}: the same task ids and upstreams as ours", item["compared"][variant]["same_graph"])
              for variant in COMPARED),
        ):  # fmt: skip
            verified = verified and ok
            print(f"check {item['project']}: {text} -> {common.verdict(ok)}")
    for item in results:
        met = common.verdict((item["speedup_cold"] or 0) >= TARGET_SPEEDUP, "MET")
        print(f"target >= {TARGET_SPEEDUP:.0f}x faster than dbt ls, {item['project']}: "
              f"{common.format_ratio(item['speedup_cold'])} -> {met}")  # fmt: skip
    large = results[-1]
    median = large["manifest_cold"]["median"]
    met = common.verdict(median <= TARGET_LARGE_SECONDS, "MET")
    print(f"target <= {TARGET_LARGE_SECONDS:.0f} s for {large['project']}: median {median:.3f} s -> {met}")
    for variant in PLAIN_VARIANTS:
        ratio = large["compared"][variant]["ratio"]
        met = common.verdict(ratio is not None and ratio <= TARGET_PLAIN_RATIO, "MET")
        cpu = common.format_ratio(large["compared"][variant]["cpu_ratio"])
        print(f"target <= {TARGET_PLAIN_RATIO:.0f}x {variant} for {large['project']}: {common.format_ratio(ratio)} "
              f"of its median wall time ({cpu} of its CPU time) -> {met}")  # fmt: skip
    return verified


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="fresh-process runs of the manifest variant")
    parser.add_argument("--dbt-ls-repeat", type=int, default=3, help="runs of the dbt ls variant")
    parser.add_argument("--slow-seconds", type=float, default=10.0, help="dbt ls slower than this: 2 runs only")
    parser.add_argument("--models", type=int, default=1000, help="models in the synthetic project")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--project-dir", help=argparse.SUPPRESS)
    parser.add_argument("--profile", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.repeat, args.dbt_ls_repeat) < 1 or args.repeat < 3:
        parser.error("--repeat must be >= 3 and --dbt-ls-repeat >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.project_dir, args.profile)))
        return 0
    started = time.monotonic()
    try:
        results = [project_result(p, measure_project(p, args)) for p in prepare_projects(args.models)]
    except (BenchError, RuntimeError, ManifestNotReady) as error:
        print(f"error: {common.one_line(error)}", file=sys.stderr)
        return 1
    state = common.bytecode_state()
    print_report(results)
    verified = print_checks(results)
    print(common.describe_bytecode(state))
    total = time.monotonic() - started
    common.write_json(
        RESULT_FILE,
        {"projects": results, "bytecode": state, "total_seconds": total, "load_average_at_end": os.getloadavg()},
    )
    print(f"wrote {common.display_path(RESULT_FILE)}; render benchmark took {total:.0f} s")
    return 0 if verified else 1


if __name__ == "__main__":
    sys.exit(main())
