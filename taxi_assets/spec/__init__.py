"""The spec table (datasets.py: every feed's columns, types, checks and first month) and
what it is made of: the eras of each feed (eras.py), the column dictionary (dictionary.py),
months (months.py) and the monthly partitions (partitions.py)."""
