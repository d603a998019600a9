"""Reactive controllers (plateau, restarts, bumps): numpy-only state machines that multiply a
schedule's value from observed metrics. See issue 4."""
