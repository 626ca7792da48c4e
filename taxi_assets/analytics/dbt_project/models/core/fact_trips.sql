{#- Every feed's trips in one vocabulary, with their pickup and dropoff zones.
    A view, not a table: the trips are already in the warehouse tables (partitioned by
    month on BigQuery), so a table would hold every trip twice; the marts read one month
    of it, and the month filter reaches the tables' partitions through the view. -#}
with trips as (
    {% for model in ['stg_yellow_trips', 'stg_green_trips', 'stg_fhv_trips', 'stg_fhvhv_trips'] -%}
        select {{ trip_columns() }} from {{ ref_or_empty(model) }}
        {% if not loop.last %}union all
        {% endif -%}
    {%- endfor %}
)

select
    trips.*,
    pu.borough as pickup_borough,
    pu.zone as pickup_zone,
    pu.service_zone as pickup_service_zone,
    dropoff.borough as dropoff_borough,
    dropoff.zone as dropoff_zone,
    dropoff.service_zone as dropoff_service_zone
from trips
left join {{ ref('dim_zones') }} as pu on trips.pickup_location_id = pu.location_id
left join {{ ref('dim_zones') }} as dropoff on trips.dropoff_location_id = dropoff.location_id
