"""Integrations with other frameworks, imported lazily."""
