"""Where runs execute besides this machine: ``slurm`` sends runs to a Slurm
cluster as a job array through submitit, ``ray`` to a Ray cluster as one task per run
(``vlmhb.executors.local`` fills this machine's GPU slots). Imported only when used.
"""
