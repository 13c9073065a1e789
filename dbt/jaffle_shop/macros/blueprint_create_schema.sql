{#-
    dbt's own postgres__create_schema, made safe to run at once. The first tasks of a per-model
    DAG start their dbt invocations together, and on a fresh target schema each one runs
    `create schema if not exists`: PostgreSQL does not serialise those, and the loser fails with
    a duplicate key on pg_namespace_nspname_index. An advisory lock, held until dbt commits,
    makes them take turns; the later ones then find the schema and skip it.
    `make adopt` adds this file to a project that has no postgres__create_schema of its own
    (README, "Use your own dbt project"); tools/adopt_files/ holds the original.
-#}
{% macro postgres__create_schema(relation) -%}
    {% if relation.database -%}
        {{ adapter.verify_database(relation.database) }}
    {%- endif -%}
    {%- call statement('create_schema_lock') -%}
        select pg_advisory_xact_lock(hashtext('dbt create schema'), hashtext('{{ relation.schema | replace("'", "''") }}'))
    {%- endcall -%}
    {%- call statement('create_schema') -%}
        create schema if not exists {{ relation.without_identifier().include(database=False) }}
    {%- endcall -%}
{% endmacro %}
