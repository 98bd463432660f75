"""`python -m e2e.bench` (from the repository root; e2e/run-bench.sh runs it)."""

from e2e.bench.runner import main

raise SystemExit(main())
