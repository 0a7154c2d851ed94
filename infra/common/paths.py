"""Where the local stack keeps its state: `.local/` at the repository root (git-ignored)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCAL_DIR = ROOT / ".local"
LOGS_DIR = LOCAL_DIR / "logs"
STACK_JSON = LOCAL_DIR / "stack.json"
FUNCTIONS_SOURCE = ROOT / "functions" / "main.py"
