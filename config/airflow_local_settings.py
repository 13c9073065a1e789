"""Airflow's local settings for this deployment: Airflow imports this file in every process.

It lives in $AIRFLOW_HOME/config, where Airflow looks for it (the Astro image copies this
project to AIRFLOW_HOME; `make run` and the tests put this folder on PYTHONPATH). A deployment
that already has an airflow_local_settings.py adds the lines below to its own.

The processes that fork tasks import the dbt tasks' libraries once, so each task does not
(include/blueprint/task_preload.py; BLUEPRINT_TASK_PRELOAD=0 turns it off).
"""

# The modules preloaded in this process, once it has forked (for diagnosis and the benchmark).
TASK_PRELOADED: list[str] = []

try:
    from include.blueprint.task_preload import preload_before_first_fork
except ImportError:  # the blueprint is not on this process's path: nothing to preload
    pass
else:
    preload_before_first_fork(TASK_PRELOADED)
