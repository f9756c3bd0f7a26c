"""The paper's protocol as one command (``dyntransnet_protocol``, :mod:`.cli`): conversion, planning, every trainer
on every fold (one after another, one per GPU, or as a SLURM job array: :mod:`.scheduling`), then the report."""
