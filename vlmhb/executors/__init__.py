"""Where runs execute besides this process: the live board of local runs, Slurm arrays.

``vlmhb.scheduler`` fills one machine's GPU slots; ``vlmhb.executors.slurm`` sends runs to a
cluster through submitit; ``vlmhb.executors.board`` is the live view of runs in progress.
Each is imported only when used.
"""
