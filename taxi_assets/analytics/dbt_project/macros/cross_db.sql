{#- The few places where DuckDB and BigQuery SQL differ. -#}

{% macro float_type() %}{{ return(adapter.dispatch('float_type', 'taxi_assets')()) }}{% endmacro %}
{% macro default__float_type() %}double{% endmacro %}
{% macro bigquery__float_type() %}float64{% endmacro %}

{% macro int_type() %}{{ return(adapter.dispatch('int_type', 'taxi_assets')()) }}{% endmacro %}
{% macro default__int_type() %}bigint{% endmacro %}
{% macro bigquery__int_type() %}int64{% endmacro %}

{% macro string_type() %}{{ return(adapter.dispatch('string_type', 'taxi_assets')()) }}{% endmacro %}
{% macro default__string_type() %}varchar{% endmacro %}
{% macro bigquery__string_type() %}string{% endmacro %}

{#- Seconds (a float) from `start` to `end`, two timestamp expressions. -#}
{% macro seconds_between(start, end) %}{{ return(adapter.dispatch('seconds_between', 'taxi_assets')(start, end)) }}{% endmacro %}
{% macro default__seconds_between(start, end) %}date_diff('microsecond', {{ start }}, {{ end }}) / 1e6{% endmacro %}
{#- CAST AS TIMESTAMP takes DATETIME (what the loads give the naive trip times) and TIMESTAMP alike. -#}
{% macro bigquery__seconds_between(start, end) -%}
timestamp_diff(cast({{ end }} as timestamp), cast({{ start }} as timestamp), microsecond) / 1e6
{%- endmacro %}

{#- A typed NULL, for columns a feed does not have. -#}
{% macro null_as(type_macro) %}cast(null as {{ context[type_macro]() }}){% endmacro %}

{#- The adapter's type for a column type of sources.yml (the spec table's: int, bigint, float,
    timestamp, date, string). Trip times are naive: DATETIME on BigQuery. -#}
{% macro sql_type(name) %}{{ return(adapter.dispatch('sql_type', 'taxi_assets')(name)) }}{% endmacro %}
{% macro default__sql_type(name) %}
  {{- return({'int': 'integer', 'bigint': 'bigint', 'float': 'double', 'timestamp': 'timestamp',
              'date': 'date', 'string': 'varchar'}[name]) -}}
{% endmacro %}
{% macro bigquery__sql_type(name) %}
  {{- return({'int': 'int64', 'bigint': 'int64', 'float': 'float64', 'timestamp': 'datetime',
              'date': 'date', 'string': 'string'}[name]) -}}
{% endmacro %}
