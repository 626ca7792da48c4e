"""`python -m taxi_assets.analytics prepare|DBT_COMMAND [--month YYYY-MM] [dbt arguments...]`
(project.main)."""

import sys

from taxi_assets.analytics.project import main

sys.exit(main(sys.argv[1:]))
