"""Batch scanning of whole archives: ``fakescope batch INPUTS... --out DIR``.

:func:`collect_items` turns files, folders, globs, manifests (CSV/TSV/JSONL with a ``path``
column and optional ``label``/``method``/``dataset``) and list files into
:class:`BatchItem` records; :func:`run_batch` scans them with worker processes (or Ray actors),
each loading its models once, under a per-item deadline and memory ceiling, and writes the
results as they come: verdict JSON Lines and ScoreTable Parquet shards that a re-run resumes
from (items keyed by content hash, model identity and settings). :func:`read_results` gives
the ScoreTable ``fakescope eval`` scores, :func:`read_verdicts` the verdicts, each item once.

On a Ray cluster (``pip install 'fakescope[batch]'`` on every node, same version; inputs at
the same paths on every node, e.g. a network file system)::

    ray start --head                      # on the head node; prints its address
    ray start --address HEAD_IP:6379      # on every other node
    fakescope batch /archive --out results/ --ray auto --workers 16

``--workers`` is then the number of actors; each reserves ``--threads`` CPUs (default: the
cluster's CPUs divided by the actors) and runs onnxruntime with that many threads. The
``fakescope batch`` process (the driver) hashes the inputs, schedules, enforces ``--timeout``
and is the only writer of ``--out``, so the output and the resume rules are those of a local
run. Throughput grows with the cores: about ``60 * cores / cpu_s`` items per minute, where
``cpu_s`` is the per-item CPU time each verdict's ``batch`` block records.
"""

from fakescope.batch._inputs import MEDIA_EXTENSIONS, BatchItem, collect_items, content_sha256
from fakescope.batch._options import BatchOptions
from fakescope.batch._runner import (
    BatchProgress,
    BatchSummary,
    config_hash,
    run_batch,
)
from fakescope.batch._store import FAILURE_STATUSES, read_results, read_verdicts
from fakescope.batch._worker import ScannerFactory, ScannerLike

__all__ = [
    "FAILURE_STATUSES",
    "MEDIA_EXTENSIONS",
    "BatchItem",
    "BatchOptions",
    "BatchProgress",
    "BatchSummary",
    "ScannerFactory",
    "ScannerLike",
    "collect_items",
    "config_hash",
    "content_sha256",
    "read_results",
    "read_verdicts",
    "run_batch",
]
