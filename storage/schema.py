"""Every table module, imported once so `SQLModel.metadata` knows the whole schema
(for Alembic and for the test that keeps models and migrations in agreement).

The modules are found, not listed: a feature's `storage/<feature>.py` joins the
schema by existing (tests/test_architecture.py checks that each one belongs to a
declared feature)."""

import importlib
import pkgutil

from sqlmodel import SQLModel

import storage

for _module in pkgutil.iter_modules(storage.__path__):
    if _module.name != "schema" and not _module.ispkg:
        importlib.import_module(f"storage.{_module.name}")

metadata = SQLModel.metadata
