"""Operator tools (backfill, dead letters) that work on the local stack and on GCP alike."""
