"""One run, from a plan row to a scored run folder.

``prepare`` resolves the row (dataset, prompts, model, run id) and builds its requests
(``iter_samples``); ``infer`` starts the worker (``worker_process``, with the interpreter
``isolation`` picks, the ``code_shim`` and the ``child_env``; weights built first by
``local_weights`` where the catalogue says so) and streams requests through it
(``dispatch``) into the run folder (``folder``, names in ``files``); ``evaluate`` scores the
answers in the metrics env; ``metric_directions`` reads which way is better from what it
wrote; ``execute`` chains the stages for one run; ``rerun`` resumes or re-scores existing run
folders. ``progress`` draws the live board.

This package's ``__init__`` stays empty: ``files`` is read from inside the metrics venv.
"""
