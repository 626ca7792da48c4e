{#- High-volume for-hire trips (Uber, Lyft, Via, Juno) in the vocabulary every feed's staging
    view shares (macros/staging.sql trip_vocabulary). Its fare, tolls and tips are the
    vocabulary's fare_amount, tolls_amount and tip_amount; it publishes no total (the rider's
    total would be a sum this project would have to invent), no passenger count. Its revenue
    in trips_by_zone is the base passenger fare (the spec table's amount column). -#}
-- source_month uncast: on BigQuery the month filter then reaches the table's partitions.
select
    cast('fhvhv' as {{ sql_type('string') }}) as service_type,
    source_month,
    cast(null as {{ sql_type('int') }}) as vendor_id,
    cast(pickup_datetime as {{ sql_type('timestamp') }}) as pickup_datetime,
    cast(dropoff_datetime as {{ sql_type('timestamp') }}) as dropoff_datetime,
    cast(
        {{ seconds_between('pickup_datetime', 'dropoff_datetime') }} as {{ sql_type('float') }}
    ) as trip_seconds,
    cast(PULocationID as {{ sql_type('int') }}) as pickup_location_id,
    cast(DOLocationID as {{ sql_type('int') }}) as dropoff_location_id,
    cast(null as {{ sql_type('float') }}) as pickup_longitude,
    cast(null as {{ sql_type('float') }}) as pickup_latitude,
    cast(null as {{ sql_type('float') }}) as dropoff_longitude,
    cast(null as {{ sql_type('float') }}) as dropoff_latitude,
    cast(null as {{ sql_type('int') }}) as passenger_count,
    cast(trip_miles as {{ sql_type('float') }}) as trip_distance,
    cast(null as {{ sql_type('int') }}) as rate_code_id,
    cast(null as {{ sql_type('string') }}) as store_and_fwd_flag,
    cast(null as {{ sql_type('int') }}) as payment_type,
    cast(null as {{ sql_type('int') }}) as trip_type,
    cast(dispatching_base_num as {{ sql_type('string') }}) as dispatching_base_num,
    cast(hvfhs_license_num as {{ sql_type('string') }}) as hvfhs_license_num,
    cast(base_passenger_fare as {{ sql_type('float') }}) as fare_amount,
    cast(null as {{ sql_type('float') }}) as extra,
    cast(null as {{ sql_type('float') }}) as mta_tax,
    cast(tips as {{ sql_type('float') }}) as tip_amount,
    cast(tolls as {{ sql_type('float') }}) as tolls_amount,
    cast(null as {{ sql_type('float') }}) as ehail_fee,
    cast(null as {{ sql_type('float') }}) as improvement_surcharge,
    cast(congestion_surcharge as {{ sql_type('float') }}) as congestion_surcharge,
    cast(airport_fee as {{ sql_type('float') }}) as airport_fee,
    cast(cbd_congestion_fee as {{ sql_type('float') }}) as cbd_congestion_fee,
    cast(null as {{ sql_type('float') }}) as total_amount,
    cast(base_passenger_fare as {{ sql_type('float') }}) as revenue_amount
from {{ source_or_empty('fhvhv_trips') }}
