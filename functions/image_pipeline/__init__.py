"""The code behind the Cloud Functions in ``functions/main.py``.

The pure core (settings, patterns, imaging, events, records, errors, logs) imports no
cloud client; the adapters (storage, publisher, store, clients) import theirs lazily.
"""
