"""Training: the loop, optimizers, schedules, Grokfast filters, device choice."""
