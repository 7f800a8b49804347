"""Entry point: ``python -m vlmhb.worker`` (stdin/stdout speak the protocol)."""

from vlmhb.worker.loop import main

raise SystemExit(main())
