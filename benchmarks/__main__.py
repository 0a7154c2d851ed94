"""`python -m benchmarks ...` is what `benchmarks/run` calls."""

from benchmarks.cli import main

raise SystemExit(main())
