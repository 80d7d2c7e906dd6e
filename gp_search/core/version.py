"""The package version, in the one place that every part of gp-search may import."""

__version__ = "0.2.0"
