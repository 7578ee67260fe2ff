"""Training: steps, losses, optimizer, the loop, checkpoints, the run directory and its reports."""
