{#- The taxi zones (265 rows): a table, rebuilt whenever the zone lookup is. -#}
select
    cast(LocationID as {{ sql_type('int') }}) as location_id,
    Borough as borough,
    Zone as zone,
    service_zone
from {{ source('warehouse', 'taxi_zone_lookup') }}
