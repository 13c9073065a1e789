"""dbt writes manifest.json twice in every build, run, test, seed, snapshot and compile: once after
parsing and again when the command ends, with the compiled SQL of what ran. The second write
replaces the first, and nothing reads the file in between, so in a fork of the warm dbt server
the first write is skipped. Measured on jaffle_shop under load: 0.1 s of each task's dbt run;
the manifest of a project of 1,000 models takes about a second to write.

What a task leaves in target/ is unchanged (the end-of-command manifest.json, its
semantic_manifest.json, run_results.json), unless dbt stops before the end (a hook that raises,
a cancelled task): target/manifest.json is then the DAG's render-time manifest that Cosmos copied
there. Left alone: other commands, a dbt plugin that writes artifacts alongside the manifest
(those are written with the first write only), and WARM_DBT_WRITE_ONCE=0 in the task's
environment. Checked against dbt-core 1.11; another minor version runs dbt as it ships.
"""

from __future__ import annotations

import os
from typing import Any

DBT_VERSION_CHECKED = "1.11."
# Commands whose task (dbt.task.runnable.GraphRunnableTask.run) writes the manifest again at the end.
WRITTEN_AGAIN_AT_THE_END = frozenset({"build", "run", "test", "seed", "snapshot", "compile"})


def applies() -> bool:
    from dbt.version import __version__

    return __version__.startswith(DBT_VERSION_CHECKED) and os.environ.get("WARM_DBT_WRITE_ONCE") != "0"


def has_plugin_artifacts(ctx: Any) -> bool:
    from dbt.plugins import get_plugin_manager

    project = ctx.obj["runtime_config"].project_name
    return bool(get_plugin_manager(project).hooks.get("get_manifest_artifacts"))


def write_manifest_once() -> None:
    """For this process's dbt command: skip the manifest write after parsing when the command
    writes it again at its end."""
    if not applies():
        return
    from dbt.cli import requires

    setup_manifest = requires.setup_manifest

    def setup_manifest_written_at_the_end(ctx: Any, write: bool = True, write_perf_info: bool = False) -> None:
        if write and ctx.command.name in WRITTEN_AGAIN_AT_THE_END and not has_plugin_artifacts(ctx):
            write = False
        return setup_manifest(ctx, write=write, write_perf_info=write_perf_info)

    requires.setup_manifest = setup_manifest_written_at_the_end
