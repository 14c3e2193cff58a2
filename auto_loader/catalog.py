"""The catalog: the named models of every family, each with its Hub repository, license and card.

Entries are declared by their families (``zoo/models/<family>/family.py``, ``Family.catalog``): names
are FlagAI's (``bert-base-en``, ``glm-large-ch``, ...) plus Llama-family and sentence embedding
models. Lookups are case-insensitive. The heads an entry supports are its family's
(``zoo.family.supported_heads``) unless the entry narrows them; its card is ``model_cards/<name>.md``.
"""

from __future__ import annotations

from zoo.errors import UnknownNameError
from zoo.family import MODEL_CARDS, CatalogEntry, catalog_entries

CATALOG: dict[str, CatalogEntry] = {entry.name: entry for entry in catalog_entries()}


def get_entry(name: str) -> CatalogEntry:
    """The catalog entry called ``name`` (any case); unknown names list the catalog and close matches."""
    entry = CATALOG.get(name.lower())
    if entry is None:
        raise UnknownNameError("model name", name, CATALOG)
    return entry


def find_entry(name: str) -> CatalogEntry | None:
    return CATALOG.get(name.lower())


def catalog_names() -> list[str]:
    return list(CATALOG)


__all__ = ["CATALOG", "MODEL_CARDS", "CatalogEntry", "catalog_names", "find_entry", "get_entry"]
