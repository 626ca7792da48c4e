{{ staging_select('green', 'green_trips', {
    'vendor_id': 'VendorID',
    'pickup_datetime': 'lpep_pickup_datetime', 'dropoff_datetime': 'lpep_dropoff_datetime',
    'pickup_location_id': 'PULocationID', 'dropoff_location_id': 'DOLocationID',
    'pickup_longitude': 'pickup_longitude', 'pickup_latitude': 'pickup_latitude',
    'dropoff_longitude': 'dropoff_longitude', 'dropoff_latitude': 'dropoff_latitude',
    'passenger_count': 'passenger_count', 'trip_distance': 'trip_distance', 'rate_code_id': 'RatecodeID',
    'store_and_fwd_flag': 'store_and_fwd_flag', 'payment_type': 'payment_type', 'trip_type': 'trip_type',
    'fare_amount': 'fare_amount', 'extra': 'extra', 'mta_tax': 'mta_tax', 'tip_amount': 'tip_amount',
    'tolls_amount': 'tolls_amount', 'ehail_fee': 'ehail_fee', 'improvement_surcharge': 'improvement_surcharge',
    'congestion_surcharge': 'congestion_surcharge', 'cbd_congestion_fee': 'cbd_congestion_fee',
    'total_amount': 'total_amount', 'revenue_amount': 'total_amount',
}) }}
