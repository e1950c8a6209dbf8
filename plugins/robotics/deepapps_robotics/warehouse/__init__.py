"""Multi-robot warehouse: a PettingZoo ParallelEnv, a scripted baseline and a shared learned policy."""
