"""Reusable evpm constructs, one per module.

Imported as ``infra.constructs``; the folder shares its name with the ``constructs`` library,
which is why ``infra/app.py`` puts the repo root, not ``infra/``, at the front of ``sys.path``.
"""
