"""The output folder of a batch: verdict journals, Parquet score shards, resume index.

Layout of ``--out DIR``::

    batch.json                 the settings the folder was written with (one config per folder)
    verdicts/part-NNNNN.jsonl  one line per finished attempt: the ``fakescope scan --json``
                               object of the item plus a ``batch`` block (key, attempt, rows)
    scores/part-NNNNN.parquet  the ScoreTable rows of the same shard (``ScoreRow`` columns plus
                               ``item_key``, ``record``, ``attempt``, ``failed``, and the
                               item's overall verdict on each of its rows: ``overall_label``,
                               ``overall_probability`` (NaN without one), ``decided_by``)
    scores.csv                 written at the end of a run: the labelled results, deduplicated,
                               for ``fakescope eval --from-scores``

A line is appended (and flushed to disk) as soon as an item finishes, so a killed run loses
only the items in flight; a shard is *sealed* (its Parquet file written to a temporary name
and renamed) every ``shard_size`` lines and at the end of a run. On open, a journal left
unsealed by a killed run is repaired (a torn last line is dropped) and sealed. Readers
deduplicate by item key: the last successful attempt wins, else the last failed one, so an
item appears exactly once however often it was written.
"""

from __future__ import annotations

import fcntl
import importlib
import json
import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, Any

from fakescope.errors import ConfigError, InputError
from fakescope.evaluation import ScoreRow, ScoreTable

__all__ = [
    "FAILURE_STATUSES",
    "KeyState",
    "ResultStore",
    "read_results",
    "read_verdicts",
]

FAILURE_STATUSES = frozenset({"error", "crash", "timeout", "memory"})
"""Statuses that mean "no result": the item is retried (``--retries``) and the batch exits
non-zero when one is left. The scanner's abstentions (``no_face``, ``undecodable``, ...) are
results."""

_FORMAT = 1
_SHARD = re.compile(r"part-(\d{5,})\.(jsonl|parquet)")
_COLUMNS = [f.name for f in fields(ScoreRow)]
_EXTRA = ("item_key", "record", "attempt", "failed")
_OVERALL = ("overall_label", "overall_probability", "decided_by")  # written, not read back


@dataclass
class KeyState:
    """What the folder already holds for one item key."""

    attempts: int = 0
    good: bool = False
    status: str = ""


def _pyarrow() -> Any:
    try:
        importlib.import_module("pyarrow.parquet")
        return importlib.import_module("pyarrow")
    except ImportError:
        raise ConfigError(
            "fakescope batch needs pyarrow: python3 -m pip install 'fakescope[batch]'"
        ) from None


def row_values(row: ScoreRow) -> list[Any]:
    """A ScoreRow as a JSON-safe list (NaN as null), in ``ScoreRow`` field order."""
    out: list[Any] = []
    for name in _COLUMNS:
        value = getattr(row, name)
        out.append(None if isinstance(value, float) and math.isnan(value) else value)
    return out


def _row(values: list[Any]) -> ScoreRow:
    data = dict(zip(_COLUMNS, values, strict=True))
    for name in ("score", "raw_score"):
        data[name] = float("nan") if data[name] is None else float(data[name])
    return ScoreRow(**data)


def _shards(out_dir: Path) -> list[int]:
    found: set[int] = set()
    for sub in ("verdicts", "scores"):
        folder = out_dir / sub
        if folder.is_dir():
            for entry in os.listdir(folder):
                match = _SHARD.fullmatch(entry)
                if match:
                    found.add(int(match.group(1)))
    return sorted(found)


def _journal(out_dir: Path, index: int) -> Path:
    return out_dir / "verdicts" / f"part-{index:05d}.jsonl"


def _parquet(out_dir: Path, index: int) -> Path:
    return out_dir / "scores" / f"part-{index:05d}.parquet"


def _records(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """The complete records of a journal and whether it ended in a torn line."""
    records: list[dict[str, Any]] = []
    torn = False
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], False
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError:
            torn = True  # only the last line can be torn: writes are whole lines, appended
            continue
        if isinstance(record, dict) and isinstance(record.get("batch"), dict):
            records.append(record)
    return records, torn


def _write_atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _seal(out_dir: Path, index: int, records: list[dict[str, Any]]) -> None:
    """Write the Parquet shard of journal ``index`` (temporary name, then rename)."""
    pa = _pyarrow()
    columns: dict[str, list[Any]] = {name: [] for name in (*_COLUMNS, *_EXTRA, *_OVERALL)}
    for number, record in enumerate(records):
        info = record["batch"]
        overall = record.get("verdict") or {}
        for values in info["rows"]:
            for name, value in zip(_COLUMNS, values, strict=True):
                columns[name].append(value)
            columns["item_key"].append(info["item_key"])
            columns["record"].append(number)
            columns["attempt"].append(int(info["attempt"]))
            columns["failed"].append(bool(info["failed"]))
            columns["overall_label"].append(overall.get("label"))
            columns["overall_probability"].append(overall.get("probability"))
            columns["decided_by"].append(overall.get("decided_by"))
    for name in ("score", "raw_score", "overall_probability"):
        columns[name] = [float("nan") if v is None else float(v) for v in columns[name]]
    schema = pa.schema(
        [
            ("media_id", pa.string()),
            ("track_id", pa.int32()),
            ("frame_index", pa.int32()),
            ("detector", pa.string()),
            ("score", pa.float64()),
            ("label", pa.int8()),
            ("method", pa.string()),
            ("dataset", pa.string()),
            ("status", pa.string()),
            ("compression", pa.string()),
            ("raw_score", pa.float64()),
            ("item_key", pa.string()),
            ("record", pa.int32()),
            ("attempt", pa.int16()),
            ("failed", pa.bool_()),
            ("overall_label", pa.string()),
            ("overall_probability", pa.float64()),
            ("decided_by", pa.string()),
        ]
    )
    table = pa.table(columns, schema=schema)
    target = _parquet(out_dir, index)
    target.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(target, lambda tmp: pa.parquet.write_table(table, tmp, compression="zstd"))


class ResultStore:
    """Writes one batch's results into ``out_dir`` (one writer at a time: a lock file)."""

    def __init__(self, out_dir: Path, shard_size: int = 100, sync: bool = True) -> None:
        self.out_dir = Path(out_dir)
        self.shard_size = max(1, shard_size)
        self.sync = sync
        self.index: dict[str, KeyState] = {}
        """Item key -> what the folder holds for it (built by :meth:`open`, kept current)."""
        self.signatures: dict[str, tuple[int, int, str]] = {}
        """Absolute path -> (size, mtime_ns, sha256) of files hashed by earlier runs."""
        self._lock: IO[bytes] | None = None
        self._shard = -1
        self._fh: IO[bytes] | None = None
        self._pending: list[dict[str, Any]] = []

    def open(self, settings: Mapping[str, Any]) -> None:
        """Lock the folder, check it was written with the same ``settings`` (the config hash),
        seal journals a killed run left behind and index what is done."""
        _pyarrow()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        lock = open(self.out_dir / ".lock", "wb")  # noqa: SIM115 - held until close()
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            raise InputError(f"another fakescope batch is writing to {self.out_dir}") from None
        self._lock = lock
        try:
            self._check_settings(settings)
            for leftover in self.out_dir.glob("*/part-*.tmp"):
                leftover.unlink(missing_ok=True)
            for index in _shards(self.out_dir):
                records, torn = _records(_journal(self.out_dir, index))
                if torn:  # a killed run's last line: keep the whole ones
                    body = b"".join(json.dumps(r).encode() + b"\n" for r in records)
                    _write_atomic(_journal(self.out_dir, index), lambda p, b=body: p.write_bytes(b))
                if records and not _parquet(self.out_dir, index).exists():
                    _seal(self.out_dir, index, records)
                for record in records:
                    self._remember(record["batch"])
            shards = _shards(self.out_dir)
            self._shard = (shards[-1] if shards else -1) + 1
        except BaseException:
            self.close()
            raise

    def _check_settings(self, settings: Mapping[str, Any]) -> None:
        path = self.out_dir / "batch.json"
        if path.exists():
            try:
                saved = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise InputError(f"{path} is unreadable: {exc}") from None
            if saved.get("config_hash") != settings.get("config_hash"):
                raise InputError(
                    f"{self.out_dir} holds results of other scan settings (see {path}): "
                    "use another --out for these settings"
                )
            return
        body = json.dumps({"format": _FORMAT, **settings}, indent=1, default=str) + "\n"
        _write_atomic(path, lambda p: p.write_text(body, encoding="utf-8"))

    def _remember(self, info: Mapping[str, Any]) -> None:
        state = self.index.setdefault(str(info["item_key"]), KeyState())
        state.attempts += 1
        if not info["failed"]:
            state.good, state.status = True, str(info["status"])
        elif not state.good:
            state.status = str(info["status"])
        sha, source = info.get("content_sha256"), info.get("source")
        if sha and source and info.get("size") is not None:
            self.signatures[str(source)] = (int(info["size"]), int(info["mtime_ns"]), str(sha))

    def add(self, record: dict[str, Any]) -> None:
        """Append one finished attempt (a verdict dict with its ``batch`` block) and make it
        durable; seal the shard when it is full."""
        if self._lock is None:
            raise RuntimeError("ResultStore.add before open()")
        if self._fh is None:
            path = _journal(self.out_dir, self._shard)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(path, "xb")  # noqa: SIM115 - a shard stays open across calls
        self._fh.write(json.dumps(record).encode("utf-8") + b"\n")
        self._fh.flush()
        if self.sync:
            os.fsync(self._fh.fileno())
        self._pending.append(record)
        self._remember(record["batch"])
        if len(self._pending) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        """Seal the open shard (write its Parquet file); the next record starts a new one."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            _seal(self.out_dir, self._shard, self._pending)
            self._pending = []
            self._shard += 1

    def close(self) -> None:
        """Seal the open shard and release the folder."""
        try:
            self.flush()
        finally:
            if self._lock is not None:
                self._lock.close()
                self._lock = None

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- reading ---------------------------------------------------------------------------------
def _all_records(out_dir: Path) -> Iterator[tuple[int, int, dict[str, Any]]]:
    for index in _shards(out_dir):
        records, _torn = _records(_journal(out_dir, index))
        for number, record in enumerate(records):
            yield index, number, record


def _winners(items: Iterator[tuple[str, bool, tuple[int, int]]]) -> dict[str, tuple[int, int]]:
    """Per item key, the position of the record that counts: the last successful attempt,
    else the last failed one."""
    best: dict[str, tuple[bool, tuple[int, int]]] = {}
    for key, failed, where in items:
        held = best.get(key)
        if held is None or not failed or held[0]:  # a success, or a failure after failures
            best[key] = (failed, where)
    return {key: where for key, (_failed, where) in best.items()}


def read_verdicts(out_dir: Path | str) -> list[dict[str, Any]]:
    """The verdict of every item in ``out_dir``, once each (the ``fakescope scan --json``
    object plus its ``batch`` block), in the order they were first written."""
    out_dir = Path(out_dir)
    if not (out_dir / "verdicts").is_dir():
        raise InputError(f"{out_dir} holds no batch results (no verdicts/ folder)")
    records = list(_all_records(out_dir))
    wins = _winners(
        (r["batch"]["item_key"], bool(r["batch"]["failed"]), (i, n)) for i, n, r in records
    )
    chosen = {where: key for key, where in wins.items()}
    return [r for i, n, r in records if (i, n) in chosen]


def read_results(out_dir: Path | str, labeled_only: bool = False) -> ScoreTable:
    """The ScoreTable of a batch folder: every item's rows once (the attempt that counts, see
    :func:`read_verdicts`); sealed shards are read from Parquet, a shard still being written
    (or left by a killed run) from its journal. ``labeled_only`` drops items without a label
    (``label`` -1), which ``fakescope eval`` cannot score."""
    out_dir = Path(out_dir)
    if not (out_dir / "verdicts").is_dir():
        raise InputError(f"{out_dir} holds no batch results (no verdicts/ folder)")
    pa = None
    located: list[tuple[str, bool, tuple[int, int], ScoreRow]] = []
    for index in _shards(out_dir):
        parquet = _parquet(out_dir, index)
        if parquet.exists():
            pa = pa or _pyarrow()
            data = pa.parquet.read_table(parquet, columns=[*_COLUMNS, *_EXTRA]).to_pydict()
            for values in zip(*(data[name] for name in (*_COLUMNS, *_EXTRA)), strict=True):
                row = _row(list(values[: len(_COLUMNS)]))
                key, record, _attempt, failed = values[len(_COLUMNS) :]
                located.append((key, bool(failed), (index, int(record)), row))
        else:
            records, _torn = _records(_journal(out_dir, index))
            for number, rec in enumerate(records):
                info = rec["batch"]
                for values in info["rows"]:
                    located.append(
                        (info["item_key"], bool(info["failed"]), (index, number), _row(values))
                    )
    wins = _winners((key, failed, where) for key, failed, where, _row_ in located)
    chosen = set(wins.values())
    rows = [
        row
        for _key, _failed, where, row in located
        if where in chosen and not (labeled_only and row.label < 0)
    ]
    return ScoreTable(rows)
