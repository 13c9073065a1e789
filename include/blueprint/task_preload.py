"""What a dbt task imports, imported once in the process its tasks are forked from.

Airflow 3 forks each task from a long-lived process (the scheduler's LocalExecutor workers, a
Celery worker's pool), and the task then parses its DAG file. For a blueprint DAG file that means
importing the blueprint, Cosmos, the operators of its mode and their dependencies, in every task;
a plain Airflow task pays none of it. Imported once in the forking process, every task inherits
them.

Nothing goes stale:
- Only modules are imported, never a setting read or a DAG built, so the caches of the blueprint
  (settings, selections) are empty in the parent and filled by each task from its own files.
- Each forked child checks the blueprint's source files it inherited (a stat each); if any
  changed since the preload, it forgets every blueprint module and the task imports them from
  disk, as without the preload. Third-party code changes only with a reinstall, which restarts
  the processes.
- Processes that do not fork tasks (the API server, the triggerer, the DAG processor, the CLI)
  import nothing.

`config/airflow_local_settings.py` (Airflow imports it in every process) calls
`preload_before_first_fork()`. The import waits for the process's first fork: Airflow imports
that file while `airflow` itself is still being imported, too early for Cosmos, and the first
fork is the executor starting its workers (or Celery its pool), before any task.
BLUEPRINT_TASK_PRELOAD=0 turns it off. A failure never stops the process: it logs one warning
and the tasks import what they need themselves.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Sequence

OFF_SWITCH = "BLUEPRINT_TASK_PRELOAD"
OWN_PACKAGE = "include"
log = logging.getLogger(__name__)
Sources = dict[str, tuple[int, int]]  # source file -> (mtime in ns, size)


def forks_tasks(argv: Sequence[str], executor: str) -> bool:
    """Whether this Airflow command is a process that tasks are forked from."""
    command = list(argv[1:3])
    if command[:1] == ["scheduler"]:
        return "LocalExecutor" in executor  # other executors run tasks elsewhere
    return command == ["celery", "worker"]


def task_modules(enabled_modes: Iterable[str]) -> list[str]:
    """What the tasks of the enabled modes import while their DAG file is parsed: the blueprint's
    DAG building (Cosmos and its dependencies with it) and each mode's Cosmos operators."""
    return ["include.blueprint.pipelines", "include.blueprint.modes"] + [
        f"cosmos.operators.{mode}" for mode in enabled_modes
    ]


def is_own(module: str) -> bool:
    return module == OWN_PACKAGE or module.startswith(OWN_PACKAGE + ".")


def own_sources() -> Sources:
    """The source file of every blueprint module loaded here, as it is on disk now."""
    sources: Sources = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if is_own(name) and path:
            sources[path] = file_state(path)
    return sources


def file_state(path: str) -> tuple[int, int]:
    try:
        status = os.stat(path)
    except OSError:
        return (-1, -1)
    return (status.st_mtime_ns, status.st_size)


def changed(sources: Sources) -> bool:
    return any(file_state(path) != state for path, state in sources.items())


def drop_own_modules() -> None:
    """Forget the blueprint's modules, so that what imports them next reads them from disk."""
    for name in sorted((name for name in sys.modules if is_own(name)), reverse=True):
        module = sys.modules.pop(name)
        package, _, attribute = name.rpartition(".")
        # `from package import name` reads the package's attribute before sys.modules.
        if package in sys.modules and getattr(sys.modules[package], attribute, None) is module:
            delattr(sys.modules[package], attribute)


def preload() -> tuple[list[str], Sources]:
    """Import the tasks' modules into this process: the modules it loaded, and the blueprint's
    sources as they were (empty when nothing was preloaded)."""
    import importlib

    started, before = time.monotonic(), set(sys.modules)
    try:
        from include.blueprint.settings import load_settings  # not settings(): its cache stays empty

        for name in task_modules(load_settings().execution.enabled_modes):
            try:
                importlib.import_module(name)
            except ImportError:  # a mode whose provider is missing fails its own DAG file, not this
                log.debug("blueprint task preload: %s not importable", name)
    except Exception as error:  # the tasks then import what they need, as without the preload
        log.warning("blueprint task preload skipped: %s: %s", type(error).__name__, error)
        drop_own_modules()
        return [], {}
    loaded = sorted(set(sys.modules) - before)
    log.info("blueprint task preload: %d modules in %.2f s", len(loaded), time.monotonic() - started)
    return loaded, own_sources()


def enabled(argv: Sequence[str]) -> bool:
    if os.environ.get(OFF_SWITCH, "1") == "0":
        return False
    from airflow.configuration import conf

    return forks_tasks(argv, conf.get("core", "executor", fallback=""))


def preload_before_first_fork(record: list[str] | None = None, argv: Sequence[str] | None = None) -> bool:
    """In a process that forks tasks, preload just before its first fork (adding the names of the
    modules loaded to `record`), and check the blueprint's sources in every child; whether it will."""
    try:
        wanted = enabled(sys.argv if argv is None else argv)
    except Exception as error:  # never stop an Airflow process over an optimisation
        log.warning("blueprint task preload skipped: %s: %s", type(error).__name__, error)
        wanted = False
    if not wanted:
        # Importing this module ran the blueprint package's __init__; the DAG processor forks its
        # parsers from this process, and they must read the blueprint from disk.
        drop_own_modules()
        return False
    preloaded: list[Sources] = []

    def before_fork() -> None:
        if not preloaded:
            loaded, sources = preload()
            preloaded.append(sources)
            if record is not None:
                record.extend(loaded)

    def in_child() -> None:
        if preloaded and preloaded[0] and changed(preloaded[0]):
            drop_own_modules()
            preloaded[0] = {}  # this child and its own children import the blueprint from disk

    os.register_at_fork(before=before_fork, after_in_child=in_child)
    return True
