{#- The one vocabulary of every feed's staging view (models/staging/stg_*_trips.sql): (column,
    type) in order. A feed maps the columns it has; the others are typed NULLs, so the views
    union into fact_trips (which selects these columns by name).
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

{#- The vocabulary's column names, comma-separated: what fact_trips selects from each view. -#}
{% macro trip_columns() %}{{ trip_vocabulary() | map(attribute=0) | join(', ') }}{% endmacro %}

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
