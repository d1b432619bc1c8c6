"""Only the package list lives here; everything else is in pyproject.toml.

schemas/ stays at the top level (editors and users point at it) and ships inside the
wheel as reconciler/schemas/, so a plain `pip install .` validates as well as an
editable install does."""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["reconciler", "reconciler.*"]) + ["reconciler.schemas"],
    package_dir={"reconciler.schemas": "schemas"},
    package_data={"reconciler.schemas": ["*.json"]},
)
