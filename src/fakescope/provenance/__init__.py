"""Provenance beside detection: C2PA content credentials embedded in images and videos.

``read_provenance(path)`` -> :class:`Provenance` reports whether a file carries a C2PA
manifest, whether its signature and hashes validate, who signed it with which tool, and
whether the signer is on a configured trust list. It never raises for a bad input and
imports c2pa-python only when called. A valid manifest proves who signed the file and
that it is unchanged since; it says nothing about whether the faces in it are real.
"""

from __future__ import annotations

from fakescope.provenance._c2pa import (
    TRUST_ANCHORS_ENV,
    Provenance,
    ProvenanceStatus,
    ValidationIssue,
    read_provenance,
)

__all__ = [
    "TRUST_ANCHORS_ENV",
    "Provenance",
    "ProvenanceStatus",
    "ValidationIssue",
    "read_provenance",
]
