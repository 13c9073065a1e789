# The Astro project image, for `astro dev start` and `astro deploy`.
# Astro Runtime 3.3 is Airflow 3.3. Its ONBUILD steps copy this project to /usr/local/airflow and
# install packages.txt and requirements.txt (Cosmos and providers, pinned) into Airflow's environment.
FROM astrocrpublic.azurecr.io/runtime:3.3-2

# dbt gets a virtual environment of its own: its dependencies conflict with Airflow's. It is
# installed from the same lock as the local .venvs/dbt and the dbt runtime image in docker/.
RUN PIP_USER=false python -m venv /usr/local/airflow/dbt_venv \
    && PIP_USER=false /usr/local/airflow/dbt_venv/bin/pip install --no-cache-dir \
        -r /usr/local/airflow/dbt/requirements.lock.txt

ENV BLUEPRINT__DBT__EXECUTABLE=/usr/local/airflow/dbt_venv/bin/dbt \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false \
    PYTHONPATH=/usr/local/airflow

# The DAGs render from dbt's manifest, never by running dbt in the scheduler: build it now.
# `dbt parse` needs no database; the generated seed files are part of what it parses.
RUN python -m tools.manifest
