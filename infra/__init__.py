"""Deployment code: importable without cdktf (only infra/stack*.py import it)."""
