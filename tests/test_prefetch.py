"""The decode-ahead thread keeps order, hands over errors and stops when abandoned."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from fakescope.inference._prefetch import prefetch


def test_order_is_kept() -> None:
    assert list(prefetch(iter(range(50)), depth=3)) == list(range(50))


def test_producer_error_arrives_after_the_good_items() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("corrupt tail")

    got = []
    with pytest.raises(ValueError, match="corrupt tail"):
        for item in prefetch(items()):
            got.append(item)
    assert got == [1, 2]


def test_abandoned_consumer_stops_the_thread() -> None:
    produced = []

    def endless() -> Iterator[int]:
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    gen = prefetch(endless(), depth=2)
    assert next(gen) == 0
    gen.close()
    assert not any(t.name == "fakescope-decode" and t.is_alive() for t in threading.enumerate())
    assert len(produced) < 10
