"""Subpackage placeholder; see the package docstring."""
