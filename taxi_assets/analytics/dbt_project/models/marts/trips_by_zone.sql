{#- Trips, revenue, average distance and duration per service type (`dataset`), pickup
    borough and pickup zone, per month. Zones sharing a name in a borough are one row; trips
    whose pickup zone is missing or unknown are kept with NULL borough and zone, so the trips
    add up to the warehouse tables' rows. Rows are taken as loaded (no duration filter). -#}
{{ monthly_mart_config() }}
{{ require_month_loaded('trips_by_zone') }}
select
    {{ month_start() }} as source_month,
    service_type as dataset,
    pickup_borough,
    pickup_zone,
    count(*) as trips,
    sum(revenue_amount) as revenue,
    avg(trip_distance) as avg_distance,
    avg(trip_seconds) / 60 as avg_duration_minutes
from {{ ref('fact_trips') }}
where source_month = {{ month_start() }}
group by service_type, pickup_borough, pickup_zone
