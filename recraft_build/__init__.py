"""recraft-build: declarative, incremental asset builds for the Recraft image API."""

__version__ = "0.1.0"
