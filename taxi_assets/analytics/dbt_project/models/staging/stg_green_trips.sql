{#- Green taxi trips (street hail outside central Manhattan) in the vocabulary every feed's
    staging view shares (macros/staging.sql trip_vocabulary): renamed, cast, NULL where the
    feed has no such column. Revenue is the rider's total_amount. -#}
-- source_month uncast: on BigQuery the month filter then reaches the table's partitions.
select
    cast('green' as {{ sql_type('string') }}) as service_type,
    source_month,
    cast(VendorID as {{ sql_type('int') }}) as vendor_id,
    cast(lpep_pickup_datetime as {{ sql_type('timestamp') }}) as pickup_datetime,
    cast(lpep_dropoff_datetime as {{ sql_type('timestamp') }}) as dropoff_datetime,
    cast(
        {{ seconds_between('lpep_pickup_datetime', 'lpep_dropoff_datetime') }} as {{ sql_type('float') }}
    ) as trip_seconds,
    cast(PULocationID as {{ sql_type('int') }}) as pickup_location_id,
    cast(DOLocationID as {{ sql_type('int') }}) as dropoff_location_id,
    cast(pickup_longitude as {{ sql_type('float') }}) as pickup_longitude,
    cast(pickup_latitude as {{ sql_type('float') }}) as pickup_latitude,
    cast(dropoff_longitude as {{ sql_type('float') }}) as dropoff_longitude,
    cast(dropoff_latitude as {{ sql_type('float') }}) as dropoff_latitude,
    cast(passenger_count as {{ sql_type('int') }}) as passenger_count,
    cast(trip_distance as {{ sql_type('float') }}) as trip_distance,
    cast(RatecodeID as {{ sql_type('int') }}) as rate_code_id,
    cast(store_and_fwd_flag as {{ sql_type('string') }}) as store_and_fwd_flag,
    cast(payment_type as {{ sql_type('int') }}) as payment_type,
    cast(trip_type as {{ sql_type('int') }}) as trip_type,
    cast(null as {{ sql_type('string') }}) as dispatching_base_num,
    cast(null as {{ sql_type('string') }}) as hvfhs_license_num,
    cast(fare_amount as {{ sql_type('float') }}) as fare_amount,
    cast(extra as {{ sql_type('float') }}) as extra,
    cast(mta_tax as {{ sql_type('float') }}) as mta_tax,
    cast(tip_amount as {{ sql_type('float') }}) as tip_amount,
    cast(tolls_amount as {{ sql_type('float') }}) as tolls_amount,
    cast(ehail_fee as {{ sql_type('float') }}) as ehail_fee,
    cast(improvement_surcharge as {{ sql_type('float') }}) as improvement_surcharge,
    cast(congestion_surcharge as {{ sql_type('float') }}) as congestion_surcharge,
    cast(null as {{ sql_type('float') }}) as airport_fee,
    cast(cbd_congestion_fee as {{ sql_type('float') }}) as cbd_congestion_fee,
    cast(total_amount as {{ sql_type('float') }}) as total_amount,
    cast(total_amount as {{ sql_type('float') }}) as revenue_amount
from {{ source_or_empty('green_trips') }}
