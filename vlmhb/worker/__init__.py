"""The worker: the only code that runs inside a model venv.

It imports the standard library, ``vlmhb.worker.protocol`` and its backend's own packages, nothing
of the orchestrator's dependencies. Started as ``python -m vlmhb.worker``.
"""
