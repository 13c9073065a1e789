"""Shared code for the dbt DAGs: settings, manifest checks and one DAG builder per execution mode."""
