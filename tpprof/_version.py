"""The package version (a leaf: the CLI and measurement provenance import it without the package's wiring)."""

__version__ = "0.1.0"
