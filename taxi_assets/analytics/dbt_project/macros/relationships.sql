{#- dbt's `relationships` test, except when the table it points to is not built yet: then one
    failing row that says so, so a test configured `severity: warn` (the staging views' tests
    of their zones against dim_zones) warns instead of erroring, and a run that builds a feed's
    staging view before the zones is not failed by a check documented as a warning. A test of
    severity error still fails. (A root project's macro overrides dbt's own of the same name.) -#}
{% macro default__test_relationships(model, column_name, to, field) %}
{%- set target = adapter.get_relation(to.database, to.schema, to.identifier) if execute else to -%}
{%- if target is none %}
select cast(null as {{ string_type() }}) as from_field, '{{ to.identifier }} is not built yet: not checked' as note
{%- else %}
with child as (
    select {{ column_name }} as from_field
    from {{ model }}
    where {{ column_name }} is not null
),

parent as (
    select {{ field }} as to_field
    from {{ to }}
)

select
    from_field

from child
left join parent
    on child.from_field = parent.to_field

where parent.to_field is null
{%- endif %}
{% endmacro %}
