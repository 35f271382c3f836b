"""Shared fixtures. Helper modules live beside this file (``tiny.py``, ``videos.py``, ``models.py``)."""
