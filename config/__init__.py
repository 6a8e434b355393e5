"""Sluice configuration: the environment, parsed once into a typed object."""

from config.settings import Settings, load_settings

__all__ = ["Settings", "load_settings"]
