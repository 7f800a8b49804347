"""Where runs execute besides this machine: ``vlmhb.executors.slurm`` sends runs to a Slurm
cluster as a job array through submitit (``vlmhb.scheduler`` fills this machine's GPU slots).
Imported only when used.
"""
