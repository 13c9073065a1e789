# The Astro project image, for `astro dev start`, `astro deploy` and `make up`.
# Astro Runtime 3.3 is Airflow 3.3. Its ONBUILD steps install packages.txt and requirements.txt
# (Cosmos and the providers of the enabled modes, pinned) into Airflow's environment, then copy
# this project to /usr/local/airflow. CI builds this same file on docker/astro-runtime's stand-in
# where Astronomer's registry cannot be reached (ci/build-astro-image.sh sets RUNTIME_IMAGE).
ARG RUNTIME_IMAGE=astrocrpublic.azurecr.io/runtime:3.3-2
FROM ${RUNTIME_IMAGE}

# dbt gets a virtual environment of its own: its dependencies conflict with Airflow's. It is
# installed from the same lock as the local .venvs/dbt and the dbt runtime image in docker/, and
# byte-compiled (the astro user cannot write .pyc files next to it at run time).
RUN PIP_USER=false python -m venv /usr/local/airflow/dbt_venv \
    && PIP_USER=false /usr/local/airflow/dbt_venv/bin/pip install --quiet --no-cache-dir \
        -r /usr/local/airflow/dbt/requirements.lock.txt \
    && /usr/local/airflow/dbt_venv/bin/python -m compileall -q -j 0 \
        --invalidation-mode unchecked-hash /usr/local/airflow/dbt_venv/lib

ENV BLUEPRINT__DBT__EXECUTABLE=/usr/local/airflow/dbt_venv/bin/dbt \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false \
    PYTHONPATH=/usr/local/airflow

# The DAGs render from dbt's manifest, never by running dbt in the scheduler: build it now, with
# the dbt docs the UI serves. `dbt parse` and `dbt docs generate --empty-catalog` need no database; the generated seed files are part of what it parses. Packages
# come installed in dbt/<project>/dbt_packages (the build has no network for `dbt deps`).
RUN python -m tools.manifest

# Airflow settings of every deployment, here once: the image takes them to `astro dev start`,
# `make up` and deploys, and tools/local_env.py gives the local runs the same (`make ui`, tests,
# benchmarks). An Astro Deployment's own environment variables override them.
# After a loop with nothing to do, the scheduler sleeps 0.25 s instead of Airflow's 1 s: a level
# of tasks waits about 0.2 s for the next instead of 0.5-0.8 s, for about 2.6 s of scheduler CPU
# and 1,200-1,700 metadata database commits more per idle minute (README, "Run time under a real
# scheduler", has the figures).
ENV AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME=0.25
