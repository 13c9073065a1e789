"""The shipped per-model DAG with the task preload turned back, for the scheduler benchmark.

include/blueprint/task_preload.py imports Cosmos and the rest of what a dbt task imports once, in
the process the tasks are forked from. This file undoes that in its own tasks: before it builds
the DAG it forgets every module the preload loaded, so the task imports them again itself, as
without the preload. (Compiled extension modules are only re-bound, not re-loaded, so the figure
slightly understates the preload's worth.) tools.bench.scheduler copies this file into its dags
folder; it is not a DAG file of the deployment.
"""

from __future__ import annotations

import os
import sys

try:
    from airflow_local_settings import TASK_PRELOADED
except ImportError:
    TASK_PRELOADED = []
for name in TASK_PRELOADED:
    sys.modules.pop(name, None)
if TASK_PRELOADED:
    from include.blueprint.task_preload import drop_own_modules

    drop_own_modules()  # the blueprint's package attributes too

from include.blueprint.modes import build_dbt_dag  # noqa: E402  (after the modules are forgotten)
from include.blueprint.settings import load_settings  # noqa: E402

BENCH_MODES = {**os.environ, "BLUEPRINT__EXECUTION__ENABLED_MODES": "[local, watcher]"}
lever_local_no_preload = build_dbt_dag("lever_local_no_preload", "local", load_settings(BENCH_MODES))
