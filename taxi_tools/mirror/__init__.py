"""A local stand-in for the TLC source: synthetic months plus an HTTP server.

`generate` writes course-mirror-shaped gzip CSVs under a root directory and
`MirrorServer` serves that directory (with optional fault injection), so tests
and demos never need the internet.
"""

from taxi_tools.mirror.generator import generate, header_for, relpath, spec_column_name
from taxi_tools.mirror.serve import Fault, MirrorServer

__all__ = ["Fault", "MirrorServer", "generate", "header_for", "relpath", "spec_column_name"]
