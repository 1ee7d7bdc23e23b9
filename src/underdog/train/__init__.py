"""Training: LoRA SFT recipe, sweeps, overfitting diagnosis, executors."""
