"""Training (needs the ``train`` extra: torch). Never imported by scanning."""
