"""The dbt layer: the dbt project (dbt_project/) pointed at the warehouse and its manifest
(project.py, also `python -m taxi_assets.analytics`), the models' asset specs read from the
manifest (manifest.py) and dbt run inside their step (runner.py)."""
