"""Regenerate ``examples/astronaut.mp4`` (the README's example input) from the packaged,
public-domain astronaut photo: ``python tools/make_example.py``."""

from __future__ import annotations

from pathlib import Path

from fakescope.io import load_example_face, make_clip

OUT = Path(__file__).resolve().parents[1] / "examples" / "astronaut.mp4"

if __name__ == "__main__":
    OUT.parent.mkdir(exist_ok=True)
    make_clip(
        OUT,
        width=1280,
        height=720,
        seconds=4.0,
        fps=25,
        face=load_example_face(),
        face_height=240,
        seed=0,
    )
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
