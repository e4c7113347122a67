"""The ``consortia`` command: thin parsing and rendering over the engine."""

from consortia.cli.main import main

__all__ = ["main"]
