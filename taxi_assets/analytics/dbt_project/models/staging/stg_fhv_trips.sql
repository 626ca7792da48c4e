{#- fhv publishes no amounts, distance or passengers: those stay NULL. -#}
{{ staging_select('fhv', 'fhv_trips', {
    'pickup_datetime': 'pickup_datetime', 'dropoff_datetime': 'dropoff_datetime',
    'pickup_location_id': 'PULocationID', 'dropoff_location_id': 'DOLocationID',
    'dispatching_base_num': 'dispatching_base_num',
}) }}
