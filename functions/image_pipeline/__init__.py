"""The code behind the Cloud Functions in ``functions/main.py``: a pure core, and adapters
that import their cloud clients lazily (docs/architecture.md, "Layout")."""
