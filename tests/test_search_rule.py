"""The whole-frame face search rule (issue 30 item 1): grid searches are skipped while the
frame shows no change outside the faces followed, never at the price of a face."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from fakescope.config import ScanConfig
from fakescope.errors import ConfigError
from fakescope.inference import Scanner
from fakescope.inference._search import CHANGE_LEVEL, SearchRule, change_score, thumbnail
from fakescope.io import load_example_face
from fakescope.types import Status, Verdict
from scenes import Actor, write_scene


def _background(seed: int = 1) -> npt.NDArray[np.uint8]:
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(40, 215, size=(20, 34, 3)).astype(np.float32)
    big = cv2.resize(coarse, (1360, 760), interpolation=cv2.INTER_CUBIC)
    return np.asarray(np.clip(big, 0, 255), dtype=np.uint8)


def test_a_camera_pan_is_no_change_but_a_new_patch_is() -> None:
    world = _background()
    ref, scale = thumbnail(world[20:740, 20:1300])
    panned, _ = thumbnail(world[36:756, 4:1284])  # 16 px right, 16 px up
    assert change_score(ref, panned, scale, [], 40.0) < 1.0
    entered = world[36:756, 4:1284].copy()
    entered[500:550, 900:945] = 250  # a bright 45x50 px patch: a face-sized newcomer
    new, _ = thumbnail(entered)
    assert change_score(ref, new, scale, [], 40.0) > 3 * CHANGE_LEVEL
    # the same change next to a followed face (in its widened box) is the face's own
    beside = (930.0, 380.0, 1000.0, 450.0)
    assert change_score(ref, new, scale, [beside], 40.0) < 1.0
    # a cut (or thumbnails of another size) is a change
    other, _ = thumbnail(_background(seed=2)[:720, :1280])
    assert change_score(ref, other, scale, [], 40.0) > CHANGE_LEVEL
    assert change_score(ref, new[:-1], scale, [], 40.0) == math.inf


def test_rule_skips_at_most_full_scan_skip_grid_points_in_a_row() -> None:
    still = _background()[:720, :1280]
    face = [(600.0, 300.0, 680.0, 390.0)]
    rule = SearchRule(skip=2, min_face_px=40.0)
    assert rule.due(still, face)  # nothing to compare with yet
    rule.searched(still, face)
    assert [rule.due(still, face) for _ in range(3)] == [False, False, True]
    rule.searched(still, face)
    assert not rule.due(still, face)
    assert SearchRule(skip=0, min_face_px=40.0).due(still, face)
    # a frame with no face followed (none found at the last search either) is compared whole
    empty = SearchRule(skip=5, min_face_px=40.0)
    assert empty.due(still, [])
    empty.searched(still, [])
    assert not empty.due(still, [])
    entered = still.copy()
    entered[500:550, 900:945] = 250  # a face-sized newcomer anywhere in the frame
    part = empty.due(entered, [])
    # searched where it changed only: a box around the newcomer, a small part of the frame
    assert isinstance(part, tuple)
    x0, y0, x1, y1 = part
    assert x0 <= 900 and y0 <= 500 and x1 >= 945 and y1 >= 550
    assert (x1 - x0) * (y1 - y0) < 0.2 * 1280 * 720
    empty.searched(entered, [])  # the reference takes the newcomer's part only ...
    assert not empty.due(entered, [])
    later = entered.copy()
    later[100:150, 100:145] = 250  # ... so a change elsewhere is still seen
    assert isinstance(empty.due(later, []), tuple)
    # a camera pan with a newcomer: the whole frame
    panned = SearchRule(skip=2, min_face_px=40.0)
    world = _background()
    panned.due(world[20:740, 20:1300], [])
    panned.searched(world[20:740, 20:1300], [])
    moved = world[36:756, 4:1284].copy()  # 16 px each way: 2 thumbnail pixels
    moved[500:550, 900:945] = 250
    assert panned.due(moved, []) is True
    with pytest.raises(ConfigError):
        ScanConfig(full_scan_skip=-1)


def _scan(config: ScanConfig, clip: Path) -> tuple[Verdict, int]:
    scanner = Scanner(config)
    before = scanner.face_detector.searches  # type: ignore[attr-defined]
    verdict = scanner.scan(clip)
    assert verdict.status is Status.OK, verdict.reason
    return verdict, scanner.face_detector.searches - before  # type: ignore[attr-defined]


def _crops(verdict: Verdict) -> list[tuple[int, int, float]]:
    return [(t.track_id, f.frame_index, f.raw_score) for t in verdict.tracks for f in t.frames]


@pytest.fixture(scope="module")
def steady(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One face, still, on a still background: 4 s at 10 fps, 32 of its 40 frames sampled."""
    path = tmp_path_factory.mktemp("search") / "steady.mp4"
    return write_scene(path, load_example_face(), [Actor(40, 60, 200)])


@pytest.fixture(scope="module")
def comings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A face throughout, one shown for 2 s (1.0-3.0 s), one entering late (3.1 s)."""
    path = tmp_path_factory.mktemp("search") / "comings.mp4"
    actors = [
        Actor(20, 20, 200),
        Actor(440, 20, 150, start=1.0, end=3.0),
        Actor(250, 190, 160, start=3.1),
    ]
    return write_scene(path, load_example_face(), actors)


def test_steady_face_needs_fewer_whole_frame_searches(steady: Path) -> None:
    config = ScanConfig(synthesis_detector=None)
    new, searches = _scan(config, steady)
    old, old_searches = _scan(ScanConfig(synthesis_detector=None, full_scan_skip=0), steady)
    assert old_searches == 8  # every 4th of 32 sampled frames, the old rule
    assert searches == 2  # the first frame, then after 3 grid points skipped
    assert _crops(new) == _crops(old) and len(new.tracks) == 1
    assert new.raw_score == old.raw_score


def test_faces_that_come_and_go_are_found_from_their_first_sampled_frame(
    comings: Path,
) -> None:
    new, searches = _scan(ScanConfig(synthesis_detector=None), comings)
    old, old_searches = _scan(ScanConfig(synthesis_detector=None, full_scan_skip=0), comings)
    assert len(new.tracks) == 3
    assert _crops(new) == _crops(old)
    assert searches < old_searches
    sampled = sorted({f.time_s for t in new.tracks for f in t.frames})
    for track, start in zip(
        sorted(new.tracks, key=lambda t: t.frames[0].time_s), (0, 1, 3.1), strict=True
    ):
        first = min(t for t in sampled if t >= start)
        assert track.frames[0].time_s == pytest.approx(first)


GAPS = {
    # no face for 1.3 s, one until 2.6 s, none until another comes at 3.3 s (of 4 s)
    "gaps": [Actor(60, 40, 200, start=1.3, end=2.6), Actor(380, 160, 180, start=3.3)],
    # a face only in the last two sampled frames, after the last grid point
    "last": [Actor(200, 60, 200, start=3.7)],
}


@pytest.mark.parametrize("scene", sorted(GAPS))
def test_frames_without_faces_wait_for_the_grid_and_faces_are_still_found_from_their_start(
    scene: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Issue 30: a sampled frame that follows no face is no longer searched whole every time
    (the old rule, ``full_scan_skip`` 0, still does); a face that enters between two grid
    points is found at the next one (or at the last sampled frame) and looked for back to
    its first sampled frame."""
    clip = write_scene(
        tmp_path_factory.mktemp("gaps") / f"{scene}.mp4", load_example_face(), GAPS[scene]
    )
    new, searches = _scan(ScanConfig(synthesis_detector=None), clip)
    old, old_searches = _scan(ScanConfig(synthesis_detector=None, full_scan_skip=0), clip)
    assert searches < old_searches - 8  # 18-30 face-free sampled frames searched before
    assert len(new.tracks) == len(old.tracks) == len(GAPS[scene])
    firsts = sorted(t.frames[0].frame_index for t in new.tracks)
    assert firsts == sorted(t.frames[0].frame_index for t in old.tracks)
    assert [len(t.frames) for t in new.tracks] == [len(t.frames) for t in old.tracks]


def test_a_face_entering_a_still_scene_is_searched_for_where_it_appears(
    tmp_path: Path,
) -> None:
    """A grid search that only part of the frame calls for covers that part (issue 30): the
    faces that enter a still 720p scene are found from the same sampled frames as by the old
    rule, with fewer and smaller searches."""
    actors = [
        Actor(100, 100, 220),
        Actor(900, 380, 220, start=1.6),
        Actor(600, 60, 200, start=2.4, end=3.5),
    ]
    clip = write_scene(tmp_path / "enter.mp4", load_example_face(), actors, width=1280, height=720)
    scanner = Scanner(ScanConfig(synthesis_detector=None))
    new = scanner.scan(clip)
    parts = scanner.face_detector.part_searches  # type: ignore[attr-defined]
    searches = scanner.face_detector.searches  # type: ignore[attr-defined]
    old, old_searches = _scan(ScanConfig(synthesis_detector=None, full_scan_skip=0), clip)
    assert parts >= 1 and searches < old_searches
    assert [(t.frames[0].frame_index, len(t.frames)) for t in new.tracks] == [
        (t.frames[0].frame_index, len(t.frames)) for t in old.tracks
    ]
    assert len(new.tracks) == 3
    for a, b in zip(new.tracks, old.tracks, strict=True):
        assert a.raw_score == pytest.approx(b.raw_score, abs=0.01)
