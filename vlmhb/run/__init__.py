"""One run, from a plan row to a scored run folder.

``prepare`` resolves the row (dataset, prompts, model, run id); ``infer`` starts the worker
(``worker_process``, in the env ``isolation`` picks) and streams requests through it
(``dispatch``) into the run folder (``folder``, names in ``files``); ``evaluate`` scores the
answers in the metrics env; ``execute`` chains the stages for one run; ``rerun`` resumes or
re-scores existing run folders. ``progress`` draws the live board.

This package's ``__init__`` stays empty: ``files`` is read from inside the metrics venv.
"""
