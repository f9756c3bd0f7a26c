"""Training beyond one trainer: the baselines' networks, fitting a training to the GPU, and running the protocol's
many trainings (one per GPU, SLURM, progress)."""
