"""(task, model name) -> a ready model, tokenizer and predictor; the catalog of named models; the registry."""

from .catalog import CATALOG, CatalogEntry, catalog_names, find_entry, get_entry
from .loader import AutoLoader, ModelUnavailableError, make_model, resolve_model_directory
from .registry import ModelBundle, register_model, register_task, registered_models

__all__ = [
    "CATALOG",
    "AutoLoader",
    "CatalogEntry",
    "ModelBundle",
    "ModelUnavailableError",
    "catalog_names",
    "find_entry",
    "get_entry",
    "make_model",
    "register_model",
    "register_task",
    "registered_models",
    "resolve_model_directory",
]
