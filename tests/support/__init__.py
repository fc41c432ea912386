"""Helpers shared by the tests (fixtures live in the ``conftest.py`` files)."""
