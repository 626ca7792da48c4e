"""Google Cloud credentials for the GCS lake and the BigQuery warehouse.

One setting, read through Dagster resources (`EnvVar`, so the UI shows the
variable's name, never its value): the JSON of a key in `TAXI_GCP_CREDENTIALS_JSON`.
Without it the Google clients use their default chain: the key file named by
`GOOGLE_APPLICATION_CREDENTIALS`, else application-default credentials (gcloud
login, or the VM's / workload's service account).

The key is parsed in memory: no temporary key file and no process-wide
environment change (dagster-gcp's `BigQueryResource.gcp_credentials` does both).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING

from pydantic import Field

from taxi_assets.errors import TaxiAssetsError

if TYPE_CHECKING:  # google-auth is imported where credentials are made, not with the definitions
    from google.auth.credentials import Credentials

CREDENTIALS_ENV = "TAXI_GCP_CREDENTIALS_JSON"
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


class CredentialsError(TaxiAssetsError):
    """The configured credentials cannot be used (the message never quotes them)."""


def credentials_field():
    """The resource field that holds the key's JSON (set from an EnvVar)."""
    return Field(
        default=None,
        description=(
            f"Google service account key JSON (or its base64), from {CREDENTIALS_ENV}. Unset: "
            "GOOGLE_APPLICATION_CREDENTIALS's key file, else application-default credentials."
        ),
    )


def _key_info(value: str) -> dict | None:
    text = value.strip()
    if not text.startswith("{"):  # base64, as dagster-gcp takes keys
        try:
            text = base64.b64decode(text, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
    try:
        info = json.loads(text)
    except ValueError:
        return None
    return info if isinstance(info, dict) else None


def credentials_from_json(value: str | None) -> Credentials | None:
    """Credentials from a key's JSON; None (the clients' default chain) when unset."""
    if not value:
        return None
    info = _key_info(value)
    credentials = None
    # Only service account keys: other credential types (external accounts) can make
    # google-auth run commands or fetch URLs named in the JSON.
    if info is not None and info.get("type") == "service_account":
        from google.oauth2 import service_account

        try:
            credentials = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
        except Exception:  # whatever the key's flaw, the error below says it without quoting it
            credentials = None
    if credentials is None:
        # Raised outside any except block: no chained exception can carry the key's text.
        raise CredentialsError(
            f"{CREDENTIALS_ENV} does not hold a usable Google credentials JSON "
            "(expected a service account key file's content, or its base64)"
        )
    return credentials
