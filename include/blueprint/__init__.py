"""Shared code for the dbt DAGs: settings, manifest checks and one DAG builder per execution mode."""

from include.blueprint.lineage import quiet as _quiet_lineage

# Before any module here imports Cosmos, whose import logs that the OpenLineage provider is missing.
_quiet_lineage()
