"""The names and one-line descriptions of the built-in tasks (numpy-free, so that the CLI's help
can list them without importing torch); the tasks themselves are in :mod:`lrkit.tune.tasks`."""

from __future__ import annotations

#: Built-in task names and what each is.
DESCRIPTIONS = {
    "digits": "scikit-learn's 8x8 digits, MLP, SGD with momentum, 300 steps (default)",
    "mnist1d": "MNIST-1D generated offline (needs mnist1d), MLP, AdamW, 600 steps",
    "charlm": "character-level language model on Python's help text, AdamW, 600 steps",
}

#: Built-in task names.
BUILTIN = tuple(DESCRIPTIONS)
