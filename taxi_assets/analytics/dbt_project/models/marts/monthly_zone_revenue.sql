{#- The course's revenue mart: per pickup zone, month and service type. The month is the
    trips' source month (the partition every layer shares), not the pickup timestamp's month:
    files carry a few trips dated outside their month, and a month must be rebuilt alone. -#}
{{ monthly_mart_config() }}
{{ require_month_loaded('monthly_zone_revenue') }}
select
    {{ month_start() }} as source_month,
    service_type,
    pickup_borough as revenue_borough,
    pickup_zone as revenue_zone,
    sum(fare_amount) as revenue_monthly_fare,
    sum(extra) as revenue_monthly_extra,
    sum(mta_tax) as revenue_monthly_mta_tax,
    sum(tip_amount) as revenue_monthly_tip_amount,
    sum(tolls_amount) as revenue_monthly_tolls_amount,
    sum(ehail_fee) as revenue_monthly_ehail_fee,
    sum(improvement_surcharge) as revenue_monthly_improvement_surcharge,
    sum(total_amount) as revenue_monthly_total_amount,
    count(*) as total_monthly_trips,
    avg(passenger_count) as avg_monthly_passenger_count,
    avg(trip_distance) as avg_monthly_trip_distance
from {{ ref('fact_trips') }}
where source_month = {{ month_start() }}
group by service_type, pickup_borough, pickup_zone
