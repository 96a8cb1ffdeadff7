"""One file per schema revision, oldest first (see ../__init__.py)."""
