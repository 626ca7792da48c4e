"""`python -m taxi_assets.analytics prepare|DBT_COMMAND [--month YYYY-MM] [dbt arguments...]`
(project.main), on the warehouse resource built from the environment as the definitions build it."""

import sys

from taxi_assets.analytics.project import main

sys.exit(main(sys.argv[1:]))
