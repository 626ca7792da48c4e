"""What each column means, after the TLC data dictionaries (yellow, green, FHV, HVFHV
trip records, and the taxi zone lookup). The spec table's `Column` takes its
description from here by name unless it gives its own; every layer's column schema
in the UI shows it.
"""

from __future__ import annotations

USD = "in US dollars"

PROVIDERS = (
    "The technology provider that sent the record: 1 Creative Mobile Technologies, "
    "2 Curb Mobility (formerly VeriFone), 6 Myle Technologies, 7 Helix."
)

COLUMN_DESCRIPTIONS: dict[str, str] = {
    # yellow and green
    "VendorID": PROVIDERS,
    "tpep_pickup_datetime": "When the meter was engaged (New York wall-clock time, no time zone).",
    "tpep_dropoff_datetime": "When the meter was disengaged (New York wall-clock time, no time zone).",
    "lpep_pickup_datetime": "When the meter was engaged (New York wall-clock time, no time zone).",
    "lpep_dropoff_datetime": "When the meter was disengaged (New York wall-clock time, no time zone).",
    "passenger_count": "The number of passengers in the vehicle, as entered by the driver.",
    "trip_distance": "The trip distance in miles reported by the taximeter.",
    "RatecodeID": (
        "The rate in effect at the end of the trip: 1 standard rate, 2 JFK, 3 Newark, 4 Nassau or Westchester, "
        "5 negotiated fare, 6 group ride, 99 unknown."
    ),
    "store_and_fwd_flag": (
        "Y when the record was held in the vehicle's memory before being sent to the vendor (no connection "
        "to the server during the trip), N when it was sent at once."
    ),
    "PULocationID": "The TLC taxi zone where the trip began (the meter was engaged); see taxi_zone_lookup.",
    "DOLocationID": "The TLC taxi zone where the trip ended (the meter was disengaged); see taxi_zone_lookup.",
    "payment_type": (
        "How the passenger paid: 0 flex fare trip, 1 credit card, 2 cash, 3 no charge, 4 dispute, "
        "5 unknown, 6 voided trip."
    ),
    "fare_amount": f"The time-and-distance fare calculated by the meter, {USD}.",
    "extra": (
        f"Miscellaneous extras and surcharges, {USD}: e.g. the rush-hour and overnight charges "
        "(not the taxes, tolls and surcharges that have their own columns)."
    ),
    "mta_tax": f"The MTA tax triggered by the metered rate in use, {USD} (0.50).",
    "tip_amount": f"The tip, {USD}: filled in for credit-card tips; cash tips are not included.",
    "tolls_amount": f"All tolls paid in the trip, {USD}.",
    "ehail_fee": f"The e-hail fee, {USD} (empty in most months).",
    "improvement_surcharge": f"The improvement surcharge assessed at the flag drop, {USD} (0.30 from 2015, 1.00 from 2022).",
    "total_amount": f"The total amount charged to the passenger, {USD}; cash tips are not included.",
    "congestion_surcharge": f"The New York State congestion surcharge collected in the trip, {USD} (from 2019).",
    "airport_fee": f"The fee for pickups at LaGuardia and JFK airports, {USD} (from 2021).",
    "cbd_congestion_fee": f"The MTA Congestion Relief Zone toll per trip, {USD} (from 5 January 2025).",
    "trip_type": "1 street-hail, 2 dispatch: set from the metered rate in use, can be changed by the driver.",
    "pickup_longitude": "Longitude where the meter was engaged (older months; null when the month has zone IDs).",
    "pickup_latitude": "Latitude where the meter was engaged (older months; null when the month has zone IDs).",
    "dropoff_longitude": "Longitude where the meter was disengaged (older months; null when the month has zone IDs).",
    "dropoff_latitude": "Latitude where the meter was disengaged (older months; null when the month has zone IDs).",
    # fhv
    "dispatching_base_num": "The TLC license number of the base that dispatched the trip.",
    "pickup_datetime": "When the trip began (New York wall-clock time, no time zone).",
    "dropoff_datetime": "When the trip ended (New York wall-clock time, no time zone).",
    "SR_Flag": (
        "1 when the trip was part of a shared-ride chain offered by a high-volume FHV company "
        "(e.g. Uber Pool, Lyft Line); null otherwise."
    ),
    "Affiliated_base_number": "The license number of the base the vehicle is affiliated with.",
    # fhvhv
    "hvfhs_license_num": "The TLC license of the high-volume FHV company: HV0002 Juno, HV0003 Uber, HV0004 Via, HV0005 Lyft.",
    "originating_base_num": "The license number of the base that received the original trip request.",
    "request_datetime": "When the passenger requested the trip.",
    "on_scene_datetime": "When the driver arrived at the pickup (accessible vehicles only).",
    "trip_miles": "The passenger trip's distance in miles.",
    "trip_time": "The passenger trip's duration in seconds.",
    "base_passenger_fare": f"The base fare before tolls, tips, taxes and fees, {USD}.",
    "tolls": f"All tolls paid in the trip, {USD}.",
    "bcf": f"The Black Car Fund charge collected in the trip, {USD}.",
    "sales_tax": f"The New York State sales tax collected in the trip, {USD}.",
    "tips": f"The tip the passenger gave the driver, {USD}.",
    "driver_pay": f"The driver's pay (not including tolls or tips, net of commission, surcharges or taxes), {USD}.",
    "shared_request_flag": "Y when the passenger agreed to a shared/pooled ride, whether or not they were matched.",
    "shared_match_flag": "Y when the passenger shared the vehicle with another passenger booked separately.",
    "access_a_ride_flag": "Y when the trip was administered on behalf of the MTA's Access-A-Ride.",
    "wav_request_flag": "Y when the passenger requested a wheelchair-accessible vehicle.",
    "wav_match_flag": "Y when the trip took place in a wheelchair-accessible vehicle.",
    # added by the lake layer
    "source_month": "The month of the source file the row came from (its first day); a month is replaced by it.",
    # the taxi zone lookup
    "LocationID": "The TLC taxi zone's ID (1..263; 264 and 265 are the unknown zones NV and NA).",
    "Borough": "The borough of the zone (Manhattan, Queens, ... EWR for Newark Airport, Unknown).",
    "Zone": "The zone's name.",
    "service_zone": "Which street hails are allowed: Yellow Zone, Boro Zone, Airports, EWR.",
}


def describe(name: str) -> str:
    return COLUMN_DESCRIPTIONS.get(name, "")
