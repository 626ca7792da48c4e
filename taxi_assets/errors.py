"""Errors the pipeline raises on bad input; each message names dataset, month and URL or file."""


class TaxiAssetsError(Exception):
    """Base class: a problem with the input, reported to the user as it is."""


class SourceError(TaxiAssetsError):
    """The source answered with something that is not an acceptable file."""


class NotPublishedError(SourceError):
    """The month's file does not exist at the source (yet)."""


class ConversionError(TaxiAssetsError):
    """The file could not be converted to the dataset's canonical schema."""


class SchemaError(ConversionError):
    """The file's columns do not match the dataset spec."""


class NotLoadedError(TaxiAssetsError):
    """A table a derived table is built from lacks the rows it needs: load it first."""


class MalformedRowsError(ConversionError):
    """Too many of the file's rows are malformed to trust the rest."""


class RowsUnaccountedError(ConversionError):
    """Rows read from the file are neither published nor set aside: a reader lost them."""


class UnreadableRowError(ConversionError):
    """A CSV row does not fit the declared schema (wrong field count, a value of the wrong type).

    convert.py's typed fast path raises it at the first such row and stops; the
    validating reader (quarantine.py) catches it and sets the bad rows aside.
    """


class ConfigError(TaxiAssetsError, ValueError):
    """A setting (an env var or resource field) cannot work; the message names it and says what it must be.

    Raised when the definitions load or when a run starts, before any month is fetched.
    """


class StagingError(TaxiAssetsError):
    """A file could not be written to TAXI_STAGING_DIR (disk full, no permission): not the source's fault."""


class WarehouseLockedError(TaxiAssetsError):
    """Another process holds the DuckDB warehouse file open for writing."""


class CheckFailedError(TaxiAssetsError):
    """A month's new version failed a blocking check: it was not published."""
