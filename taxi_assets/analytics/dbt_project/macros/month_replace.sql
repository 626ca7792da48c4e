{#- How a monthly mart replaces exactly its month (the incremental config of every mart).
    DuckDB: delete the month's rows, insert the new ones, in the materialization's one
    transaction (the `replace_month` strategy below; the month is deleted even when the
    new rows are none). BigQuery: insert_overwrite of the month's partition (static
    partitions: one MERGE that drops and writes that partition only). -#}
{% macro monthly_mart_config() %}
  {%- if target.type == 'bigquery' -%}
    {{ config(
        materialized='incremental',
        incremental_strategy='insert_overwrite',
        partition_by={'field': 'source_month', 'data_type': 'date', 'granularity': 'month'},
        partitions=[month_start()],
        on_schema_change='fail',
    ) }}
  {%- else -%}
    {{ config(materialized='incremental', incremental_strategy='replace_month', on_schema_change='fail') }}
  {%- endif -%}
{% endmacro %}

{#- dbt's custom incremental strategy hook: `incremental_strategy='replace_month'`. -#}
{% macro get_incremental_replace_month_sql(arg_dict) %}
  delete from {{ arg_dict['target_relation'] }} where source_month = {{ month_start() }};
  insert into {{ arg_dict['target_relation'] }} ({{ get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) }})
  select {{ get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) }} from {{ arg_dict['temp_relation'] }}
{% endmacro %}
