"""Catalogues: GPUs, models, prices and platforms as sourced, dated package data."""

from .load import load_catalog
from .records import GPU, Catalog, Model, Platform, Price

__all__ = ["GPU", "Catalog", "Model", "Platform", "Price", "load_catalog"]
