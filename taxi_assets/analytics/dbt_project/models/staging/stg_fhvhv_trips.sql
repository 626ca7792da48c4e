{#- High-volume for-hire (Uber, Lyft, Via, Juno). Its fare, tolls and tips are the
    vocabulary's fare_amount, tolls_amount and tip_amount; it publishes no total (the rider's
    total would be a sum this project would have to invent), no passenger count. Its revenue
    in trips_by_zone is the base passenger fare (the spec table's amount column). -#}
{{ staging_select('fhvhv', 'fhvhv_trips', {
    'pickup_datetime': 'pickup_datetime', 'dropoff_datetime': 'dropoff_datetime',
    'pickup_location_id': 'PULocationID', 'dropoff_location_id': 'DOLocationID',
    'trip_distance': 'trip_miles', 'dispatching_base_num': 'dispatching_base_num',
    'hvfhs_license_num': 'hvfhs_license_num',
    'fare_amount': 'base_passenger_fare', 'revenue_amount': 'base_passenger_fare', 'tolls_amount': 'tolls', 'tip_amount': 'tips',
    'congestion_surcharge': 'congestion_surcharge', 'airport_fee': 'airport_fee',
    'cbd_congestion_fee': 'cbd_congestion_fee',
}) }}
