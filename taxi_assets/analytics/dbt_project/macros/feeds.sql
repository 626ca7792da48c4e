{#- The trip feeds the month needs, as (table, first month): var('feeds') when given (Dagster
    and `python -m taxi_assets.analytics` pass the spec table's datasets), else the `warehouse`
    sources with meta.first_month. -#}
{% macro trip_feeds() %}
  {%- set given = var('feeds', none) -%}
  {%- if given is not none -%}
    {{ return(given.items() | list | sort) }}
  {%- endif -%}
  {%- set feeds = [] -%}
  {%- for node in graph.sources.values() -%}
    {%- if node.source_name == 'warehouse' and node.meta.get('first_month') -%}
      {%- do feeds.append((node.name, node.meta.first_month)) -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return(feeds | sort) }}
{% endmacro %}

{#- Refuses to build a month that a feed should have but the warehouse has not: the mart
    would be silently short. Months before a feed's first month do not need it. -#}
{% macro require_month_loaded(model_name) %}
  {%- if execute and flags.WHICH in ('run', 'build') -%}
    {%- set month = month_var() -%}
    {%- set missing = [] -%}
    {%- for table_name, first_month in trip_feeds() if first_month <= month -%}
      {%- set table = source('warehouse', table_name) -%}
      {%- set relation = adapter.get_relation(table.database, table.schema, table.identifier) -%}
      {%- if relation is none -%}
        {%- do missing.append(table_name ~ ' (no such table)') -%}
      {%- else -%}
        {%- set n = run_query("select count(*) from " ~ relation ~ " where source_month = " ~ month_start()).columns[0].values()[0] -%}
        {%- if n == 0 -%}{%- do missing.append(table_name) -%}{%- endif -%}
      {%- endif -%}
    {%- endfor -%}
    {%- if missing -%}
      {{ exceptions.raise_compiler_error(model_name ~ " " ~ month ~ ": no trips of " ~ month ~ " in " ~ missing | join(', ') ~ ": load that month into the warehouse first") }}
    {%- endif -%}
  {%- endif -%}
{% endmacro %}

{#- A feed's table, or (before its first month was ever loaded) no rows of the same columns,
    so the staging view exists either way; the next month's run replaces it with the table. -#}
{% macro source_or_empty(table_name) %}
  {%- set relation = source('warehouse', table_name) -%}
  {%- if not execute or adapter.get_relation(relation.database, relation.schema, relation.identifier) is not none -%}
    {{ relation }}
  {%- else -%}
    {%- set node = graph.sources['source.taxi_assets.warehouse.' ~ table_name] -%}
    (select * from (select {% for column in node.columns.values() -%}
      cast(null as {{ sql_type(column.data_type) }}) as {{ adapter.quote(column.name) }}{{ ', ' if not loop.last }}
    {%- endfor %}) as empty_table where 1 = 0)
  {%- endif -%}
{% endmacro %}
