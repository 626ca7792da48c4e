{#- The one vocabulary of every feed's staging view: (column, type) in order. A feed maps
    the columns it has; the others are typed NULLs, so the views union into fact_trips.
    revenue_amount is what trips_by_zone sums as revenue: the feed's amount column of the
    spec table (total_amount; fhvhv base_passenger_fare; none for fhv). -#}
{% macro trip_vocabulary() %}
  {{ return([
    ('service_type', 'string'), ('source_month', 'date'), ('vendor_id', 'int'),
    ('pickup_datetime', 'timestamp'), ('dropoff_datetime', 'timestamp'), ('trip_seconds', 'float'),
    ('pickup_location_id', 'int'), ('dropoff_location_id', 'int'),
    ('pickup_longitude', 'float'), ('pickup_latitude', 'float'),
    ('dropoff_longitude', 'float'), ('dropoff_latitude', 'float'),
    ('passenger_count', 'int'), ('trip_distance', 'float'), ('rate_code_id', 'int'),
    ('store_and_fwd_flag', 'string'), ('payment_type', 'int'), ('trip_type', 'int'),
    ('dispatching_base_num', 'string'), ('hvfhs_license_num', 'string'),
    ('fare_amount', 'float'), ('extra', 'float'), ('mta_tax', 'float'), ('tip_amount', 'float'),
    ('tolls_amount', 'float'), ('ehail_fee', 'float'), ('improvement_surcharge', 'float'),
    ('congestion_surcharge', 'float'), ('airport_fee', 'float'), ('cbd_congestion_fee', 'float'),
    ('total_amount', 'float'),
    ('revenue_amount', 'float'),
  ]) }}
{% endmacro %}

{#- A staging view: `columns` maps vocabulary names to expressions over the feed's table
    (pickup_datetime and dropoff_datetime are required; trip_seconds is derived from them).
    source_month is passed through uncast: on BigQuery the month filter then reaches the
    tables' partitions through the views. -#}
{% macro staging_select(service_type, table_name, columns) %}
  {%- set known = trip_vocabulary() | map(attribute=0) | list -%}
  {%- for name in columns if name not in known -%}
    {{ exceptions.raise_compiler_error("staging " ~ service_type ~ ": " ~ name ~ " is not in the trip vocabulary") }}
  {%- endfor -%}
  {%- set exprs = dict(columns) -%}
  {%- do exprs.update({
      'service_type': "'" ~ service_type ~ "'",
      'trip_seconds': seconds_between(columns['pickup_datetime'], columns['dropoff_datetime']),
  }) -%}
select
  {%- for name, type in trip_vocabulary() %}
  {% if name == 'source_month' -%}
  source_month
  {%- elif name in exprs -%}
  cast({{ exprs[name] }} as {{ sql_type(type) }})
  {%- else -%}
  cast(null as {{ sql_type(type) }})
  {%- endif %} as {{ name }}{{ ',' if not loop.last }}
  {%- endfor %}
from {{ source_or_empty(table_name) }}
{% endmacro %}

{#- A staging view, or (the view never built: its feed has no month loaded yet, so the
    automation did not build it) no rows of the trip vocabulary: fact_trips of a 2009 month
    needs no green view. The view is rebuilt whenever a staging view of its month is, so a
    feed built later joins it. -#}
{% macro ref_or_empty(model_name) %}
  {%- set relation = ref(model_name) -%}
  {#- Only when building: `dbt compile` shows the SQL as it reads once every view exists. -#}
  {%- if not execute or flags.WHICH not in ('run', 'build')
        or adapter.get_relation(relation.database, relation.schema, relation.identifier) is not none -%}
    {{ relation }}
  {%- else -%}
    {#- A FROM before the WHERE: BigQuery refuses a WHERE without one. -#}
    (select * from (select {% for name, type in trip_vocabulary() -%}
      cast(null as {{ sql_type(type) }}) as {{ name }}{{ ', ' if not loop.last }}
    {%- endfor %}) as empty_view where 1 = 0)
  {%- endif -%}
{% endmacro %}
