"""Integrations with training frameworks, each imported on its own and lazily.

``lrkit.integrations.lightning`` (Lightning), ``lrkit.integrations.transformers`` (Hugging Face
``Trainer``), ``lrkit.integrations.accelerate`` (Accelerate): import the one you use; importing
``lrkit`` or this package loads none of them. See ``docs/integrations.md``.
"""
