"""Dagster component types of the project (`[tool.dg.project] registry_modules`): `dg list components` lists them."""

from dinum_pipelines.components.dataset import Dataset

__all__ = ["Dataset"]
