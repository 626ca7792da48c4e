{#- The month a run builds: var('month'), YYYY-MM (or YYYY-MM-DD, a Dagster partition key). -#}
{% macro month_var() %}
  {%- set month = var('month', none) -%}
  {%- if month is none -%}
    {%- if execute and model is defined and 'monthly' in (model.tags or []) -%}
      {{ exceptions.raise_compiler_error("this model is built one month at a time: pass --vars '{month: \"YYYY-MM\"}'") }}
    {%- endif -%}
    {{ return('1900-01') }}
  {%- endif -%}
  {%- set m = modules.re.fullmatch('(\\d{4})-(\\d{2})(-01)?', month | string) -%}
  {%- if not m or not (1 <= m.group(2) | int <= 12) -%}
    {{ exceptions.raise_compiler_error("var month must be YYYY-MM, got '" ~ month ~ "'") }}
  {%- endif -%}
  {{ return(m.group(1) ~ '-' ~ m.group(2)) }}
{% endmacro %}

{#- The month's first day as a DATE literal: the same text on DuckDB and BigQuery. -#}
{% macro month_start() %}DATE '{{ month_var() }}-01'{% endmacro %}

{#- dbt's hook for a test's `where` config: __month_start__ (dbt_project.yml, data_tests)
    becomes the run's month, so a month's run tests that month's rows. -#}
{% macro get_where_subquery(relation) -%}
  {%- set where = config.get('where') -%}
  {%- if where -%}
    {%- set where = where | replace('__month_start__', month_start()) -%}
    {%- set filtered -%}
      (select * from {{ relation }} where {{ where }}) dbt_subquery
    {%- endset -%}
    {%- do return(filtered) -%}
  {%- else -%}
    {%- do return(relation) -%}
  {%- endif -%}
{%- endmacro %}
