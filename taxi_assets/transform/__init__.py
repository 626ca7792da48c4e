"""A month's file as published -> the lake's typed Parquet. The lake step's one entry point
is `quarantine.convert_quarantining` (convert.py, rows set aside with their reason); reader.py
reads CSV and Parquet in each era's shape; quality.py computes the check figures; zones.py
reads the taxi zone lookup."""
