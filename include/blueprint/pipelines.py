"""The declared dbt DAGs of this deployment, built per execution mode and checked against each other.

`dags/dbt_<mode>.py` calls `declared_dags("<mode>")`. Each DAG is built from its declaration (see
declarations.py); the checks that need every DAG of every mode compare what each selects (from
the manifest, without building the other modes' DAGs), and every problem is reported at once,
one line each:
- a selection that builds no model, seed or snapshot;
- two DAGs building the same model, unless one of them says `allow_overlap: true`;
- an asset schedule on a model that no DAG of this deployment builds.
"""

from __future__ import annotations

from collections import defaultdict

from airflow.sdk import DAG, get_parsing_context

from include.blueprint import assets, lineage
from include.blueprint.artifact_settings import environment_problems
from include.blueprint.dag_specs import DagSpec, dag_specs, raise_problems
from include.blueprint.declarations import AssetSchedule
from include.blueprint.manifest import ManifestNotReady, require_fresh_manifest
from include.blueprint.selection import selected_nodes
from include.blueprint.settings import BlueprintConfigError, Settings, problem_list, settings
from include.blueprint.storage import connection_problems, machine_problems


def declared_dags(mode: str, config: Settings | None = None) -> dict[str, DAG]:
    """dag_id -> DAG for every declared DAG in `mode` (dags/ has one file per mode, so a mode whose
    provider is missing fails only its own file); raises on any problem that involves them."""
    from include.blueprint.modes import build_dag, mode_module

    mode_module(mode)  # an unknown mode is a mistake in the DAG file
    config = config or settings()
    every_spec = dag_specs(config)
    ours = [spec for spec in every_spec if spec.mode == mode]
    if not ours:
        return {}
    _check_locations(config, ours)
    lineage_problems = lineage.environment_problems(config.lineage)
    if lineage_problems:
        raise BlueprintConfigError(problem_list("dbt lineage cannot be emitted", lineage_problems))
    task_dag = _dag_of_this_task(ours)
    if task_dag is not None:
        return _build_for_task(task_dag)
    dags: dict[str, DAG] = {}
    problems: list[str] = []
    built: dict[str, set[str]] = {}
    for spec in every_spec:
        try:
            built[spec.dag_id] = built_by(spec)
        except (BlueprintConfigError, ManifestNotReady) as error:
            if spec in ours:
                problems.append(f"{spec.where} ({spec.dag_id}): {_one_line(error)}")
    for spec in ours:
        if spec.dag_id in built:
            try:
                dags[spec.dag_id] = build_dag(spec)
            except BlueprintConfigError as error:
                problems.append(f"{spec.where} ({spec.dag_id}): {_one_line(error)}")
    problems += _empty_selections(ours, built)
    problems += _overlaps(every_spec, built, {spec.dag_id for spec in ours})
    problems += _unbuilt_schedules(ours, every_spec, built)
    if problems:
        raise_problems(list(dict.fromkeys(problems)))
    return dags


def _dag_of_this_task(ours: list[DagSpec]) -> DagSpec | None:
    """In a task's process, the declaration of the DAG it runs (Airflow sets its parsing context
    before the task parses its DAG file); None when every DAG of the file is wanted."""
    dag_id = get_parsing_context().dag_id
    return next((spec for spec in ours if spec.dag_id == dag_id), None)


def _build_for_task(spec: DagSpec) -> dict[str, DAG]:
    """Only the DAG a task runs: building the file's other DAGs would cost every task their
    render. The checks across DAGs ran when the DAG processor parsed this file; those that concern
    this DAG alone (the machine, a stale manifest, its selection) run here too."""
    from include.blueprint.modes import build_dag

    try:
        built = {spec.dag_id: built_by(spec)}
        problems = _empty_selections([spec], built)
        dags = {} if problems else {spec.dag_id: build_dag(spec)}
    except (BlueprintConfigError, ManifestNotReady) as error:
        problems, dags = [f"{spec.where} ({spec.dag_id}): {_one_line(error)}"], {}
    if problems:
        raise_problems(problems)
    return dags


def _check_locations(config: Settings, ours: list[DagSpec]) -> None:
    """The workers write the artifacts and the docs; the machine importing the DAGs is one of
    them (or like them), and resolves connections as they do."""
    artifacts = config.artifacts
    if artifacts.enabled:
        problems = environment_problems(artifacts) or connection_problems("artifacts", artifacts)
        if problems:
            raise BlueprintConfigError(problem_list("dbt run artifacts cannot be kept", problems))
    if any(spec.docs_after_build for spec in ours):
        problems = machine_problems("docs", config.docs) or connection_problems("docs", config.docs)
        if problems:
            raise BlueprintConfigError(problem_list("the dbt docs task cannot write its site", problems))


def built_by(spec: DagSpec) -> set[str]:
    """The models, seeds and snapshots a DAG builds: <project>.<model> references."""
    require_fresh_manifest(spec.project_dir, spec.project.manifest_path)
    return {assets.reference_of(spec, node) for node in selected_nodes(spec).values() if assets.is_built(node)}


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def _empty_selections(specs: list[DagSpec], built: dict[str, set[str]]) -> list[str]:
    return [
        f"{spec.where} ({spec.dag_id}): the selection builds no model, seed or snapshot; "
        f"check it with `dbt ls` in {spec.project_dir.name}"
        for spec in specs
        if spec.dag_id in built and not built[spec.dag_id]
    ]


def _overlaps(specs: list[DagSpec], built: dict[str, set[str]], ours: set[str]) -> list[str]:
    """Two declarations building one model, where one of `ours` is involved. The DAGs one
    declaration expands to (one per mode) are alternatives of one pipeline, not an overlap."""
    builders: dict[str, list[DagSpec]] = defaultdict(list)
    for spec in specs:
        for reference in built.get(spec.dag_id, ()):
            builders[reference].append(spec)
    problems = []
    for reference, found in sorted(builders.items()):
        strict = [spec for spec in found if not spec.declaration.allow_overlap]
        if len({spec.where for spec in strict}) > 1 and ours & {spec.dag_id for spec in strict}:
            names = ", ".join(sorted({spec.dag_id for spec in strict}))
            problems.append(
                f"{reference} is built by {names}; select it in one DAG only, or set allow_overlap: true on one of them"
            )
    return problems


def _unbuilt_schedules(specs: list[DagSpec], every_spec: list[DagSpec], built: dict[str, set[str]]) -> list[str]:
    """Asset schedules on models no other declaration builds (a DAG on its own models would
    start itself again after every run)."""
    problems = []
    for spec in specs:
        if not isinstance(spec.schedule, AssetSchedule):
            continue
        others = [other.dag_id for other in every_spec if other.where != spec.where]
        elsewhere = set().union(*(built.get(dag_id, set()) for dag_id in others))
        for reference in spec.schedule.assets:
            if reference in built.get(spec.dag_id, set()):
                problems.append(
                    f"{spec.where} ({spec.dag_id}): schedule asset {reference} is built by this DAG itself, "
                    "which would then start itself after every run; exclude it or schedule on another model"
                )
            elif reference not in elsewhere:
                problems.append(
                    f"{spec.where} ({spec.dag_id}): schedule asset {reference} is built by no DAG of this "
                    "deployment; declare a DAG that selects it, or fix the name (<project>.<model>)"
                )
    return problems
