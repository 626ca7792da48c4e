"""The sensors: new and re-published months at the source (new_months.py, republished.py, one per
dataset), files in the GCS drop zone (gcs_drop.py). Each module contributes its own (`@dg.definitions`)."""
