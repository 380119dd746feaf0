"""The package's metadata is in pyproject.toml (PEP 621); this file stays for tools that look for it."""

from setuptools import setup

setup()
