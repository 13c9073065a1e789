"""dbt writes manifest.json twice in every build, run, test, seed, snapshot and compile: once after
parsing and again when the command ends, with the compiled SQL of what ran. The second write
replaces the first, and nothing reads the file in between, so in a fork of the warm dbt server
the first write is skipped. Measured on jaffle_shop under load: 0.1 s of each task's dbt run;
the manifest of a project of 1,000 models takes about a second to write.

What a task leaves in target/ is unchanged (the end-of-command manifest.json, its
semantic_manifest.json, run_results.json; see WARM_DBT_END_MANIFEST below), unless dbt stops
before the end (a hook that raises, a cancelled task): target/manifest.json is then the DAG's
render-time manifest that Cosmos copied there. Left alone: other commands, a dbt plugin that
writes artifacts alongside the manifest (those are written with the first write only), and
WARM_DBT_WRITE_ONCE=0 in the task's environment. Checked against dbt-core 1.11; another minor
version runs dbt as it ships.

The write that remains is also cheaper: dbt writes its JSON artifacts (manifest.json,
run_results.json, sources.json, catalog.json) with `json.dump`, which Python encodes in pure
Python, piece by piece. The same data through `json.dumps` takes Python's C encoder and gives the
same text: for the 7.3 MB manifest of 1,000 models, 0.13 s of encoding instead of 0.39 s. The text
is encoded before the file is opened, so an error leaves the previous file whole.
WARM_DBT_ONE_PASS_JSON=0 turns it off.

A task whose end-of-command manifest nobody reads sets WARM_DBT_END_MANIFEST=on-failure (the
Airflow side decides, include/blueprint/cosmos_levers.py): then, when every node succeeded, the
write at the end (manifest.json and semantic_manifest.json) is skipped too, and target/ keeps
the manifest it held when dbt finished: the copy Cosmos put there, or dbt's own after-parse
write where that one was not skipped. When a node failed, or target/ holds no manifest.json at
the end, dbt writes it as usual. run_results.json is always written. Any other value than
on-failure (or none) leaves dbt as it ships.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

DBT_VERSION_CHECKED = "1.11."
# Commands whose task (dbt.task.runnable.GraphRunnableTask.run) writes the manifest again at the end.
WRITTEN_AGAIN_AT_THE_END = frozenset({"build", "run", "test", "seed", "snapshot", "compile"})


def dbt_version_checked() -> bool:
    from dbt.version import __version__

    return __version__.startswith(DBT_VERSION_CHECKED)


def applies(switch: str = "WARM_DBT_WRITE_ONCE") -> bool:
    """dbt is the version these levers were checked against, and `switch` is not "0"."""
    return dbt_version_checked() and os.environ.get(switch) != "0"


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


def write_json_in_one_pass(path: str, data: dict[str, Any]) -> bool:
    """dbt_common's write_json, encoding with the C encoder (json.dumps) instead of json.dump."""
    from dbt_common.clients import system
    from dbt_common.utils.encoding import JSONEncoder

    text = json.dumps(data, cls=JSONEncoder)
    path = system.convert_path(path)
    system.make_directory(os.path.dirname(path))
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)
    return True


def encode_json_in_one_pass() -> None:
    """For this process's dbt command: every module that took dbt_common's write_json by name
    (dbt's artifact writers import it that way) gets the one-pass version."""
    if not applies("WARM_DBT_ONE_PASS_JSON"):
        return
    from dbt_common.clients import system

    original = system.write_json
    for module in list(sys.modules.values()):
        # the module's own names only: getattr could run a lazy module's __getattr__
        if getattr(module, "__dict__", {}).get("write_json") is original:
            module.write_json = write_json_in_one_pass


END_MANIFEST_SWITCH = "WARM_DBT_END_MANIFEST"
ON_FAILURE = "on-failure"


def end_manifest_on_failure_only() -> None:
    """For this process's dbt command, when the task asked for it: no manifest write at the end
    of a command whose nodes all succeeded."""
    if os.environ.get(END_MANIFEST_SWITCH) != ON_FAILURE or not dbt_version_checked():
        return
    from dbt.task import runnable

    succeeded: list[bool] = []
    execute_with_hooks, write_manifest = runnable.GraphRunnableTask.execute_with_hooks, runnable.write_manifest

    def recording_success(self: Any, selected_uids: Any) -> Any:
        result = execute_with_hooks(self, selected_uids)
        succeeded.append(runnable.GraphRunnableTask.interpret_results(result.results))
        return result

    def write_unless_all_succeeded(manifest: Any, target_path: str, *args: Any, **kwargs: Any) -> None:
        if succeeded == [True] and os.path.exists(os.path.join(target_path, "manifest.json")):
            return
        write_manifest(manifest, target_path, *args, **kwargs)

    runnable.GraphRunnableTask.execute_with_hooks = recording_success
    runnable.write_manifest = write_unless_all_succeeded
