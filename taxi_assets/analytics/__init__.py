"""The dbt layer's plumbing, following dagster-dbt's parts: the dbt project (dbt_project/)
pointed at the warehouse, its manifest and `python -m taxi_assets.analytics` (project.py, what
dagster-dbt's DbtProject is), the models' asset specs read from the manifest (manifest.py, its
DagsterDbtTranslator), the `dbt` resource that runs dbt in the models' steps (runner.py, its
DbtCliResource), and what a mart's month records: figures and pickup map (month_metadata.py).
The assets themselves are taxi_assets/defs/assets/marts.py, as every layer's are."""
