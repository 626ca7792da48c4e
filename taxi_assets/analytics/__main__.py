"""`python -m taxi_assets.analytics prepare|DBT_COMMAND [--month YYYY-MM] [dbt arguments...]`
(project.main), on the warehouse resource built from the environment as the definitions build it."""

import sys

from taxi_assets.analytics.project import main


def warehouse():
    from taxi_assets.defs.resources import build_resources

    # process_config_and_initialize: the EnvVar fields resolved, as at a run's start.
    return build_resources()["warehouse"].process_config_and_initialize()


if sys.argv[1:] and sys.argv[1] not in ("prepare", "-h", "--help"):
    sys.exit(main(sys.argv[1:], warehouse()))
sys.exit(main(sys.argv[1:]))
