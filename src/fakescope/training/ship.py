"""The engine's ship stage: a finished run's model into the package (``fakescope/models/assets``)
with its weight config (sha256 included), or its weight config beside the run's model.

    fakescope train --ship runs/sbi_v4 [--set ship.beside=true]

ships a run by the ``ship`` section of its saved ``config.yaml`` (each recipe's ``ship``:
:func:`fakescope.training.engine.ship`). A face network (recipes ``sbi`` and ``vae``) is shipped
by :func:`write_face_weights`; with ``ship.beside: true`` nothing is copied: the weight config
is written next to the run's ONNX (``<run>/weights.json``), so that ``fakescope eval --detector
<run>/weights.json`` measures a run before it is shipped.

Runs without a ``ship`` section (trained before it existed) ship a face network with this
module's command line, which writes the same weight config:

    python -m fakescope.training.ship runs/sbi_v4/model.onnx --name effnet-lite0-v4 \\
        --file effnet_lite0_v4.onnx --input-size 192 --margin 0.125 [--beside]
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fakescope import __version__
from fakescope.errors import ConfigError

__all__ = [
    "FACE_ARCHITECTURE",
    "FACE_TRAINED_ON",
    "FaceShipSection",
    "asset_target",
    "beside_json",
    "check_asset_name",
    "copy_asset",
    "face_weight_config",
    "main",
    "write_face_weights",
]

FACE_ARCHITECTURE = "EfficientNet-Lite0 (ImageNet init), sigmoid head"
"""A face network's ``architecture`` unless its ship section says otherwise."""
FACE_TRAINED_ON = (
    "FaceForensics++ face crops, train_ split (ffpp_face_crops; research-only FF++ Terms of Use)"
)
"""A face network's ``trained_on`` unless its ship section says otherwise."""
_LICENSE = "Apache-2.0 (code); weights trained on research-only data, see MODEL_CARD"


def check_asset_name(name: str, key: str, suffix: str = "") -> None:
    """A ship section's asset file name (``suffix`` given) or file stem (no ``suffix``): no
    folder, and the suffix or none at all; "" (nothing to ship) passes."""
    if not name:
        return
    if suffix and (Path(name).name != name or not name.endswith(suffix)):
        raise ConfigError(f"{key}: a file name ending in {suffix} (no folder), got {name!r}")
    if not suffix and (Path(name).name != name or "." in name):
        raise ConfigError(f"{key}: a file stem without folder or suffix, got {name!r}")


@dataclass
class FaceShipSection:
    """How a face network ships (recipes ``sbi`` and ``vae``); its input size and margin are
    the data section's. By default nothing ships: give ``file`` (into the package) or
    ``beside`` (``<run>/weights.json``), and ``name``."""

    name: str = ""  # weight name, e.g. effnet-lite0-v4 (required to ship)
    file: str = ""  # asset file name, e.g. effnet_lite0_v4.onnx; "": not into the package
    beside: bool = False  # write <run>/weights.json next to model.onnx, copy nothing
    dest: str | None = None  # folder shipped into; null: the package's models/assets
    version: str = __version__
    threshold: float = 0.5
    architecture: str = FACE_ARCHITECTURE
    trained_on: str = FACE_TRAINED_ON
    calibration: str | None = None  # JSON of `fakescope calibrate` stored in the weight config
    # the int8 twin (model_int8.onnx of the quantize stage), shipped beside when file is given;
    # "" for name / architecture / trained_on: derived from the float network's
    int8_file: str = ""  # asset file name, e.g. effnet_lite0_v4_int8.onnx
    int8_name: str = ""  # default: <name>-int8
    int8_architecture: str = ""  # default: <architecture>; static INT8 (QDQ) of <file>
    int8_trained_on: str = ""  # default: trained_on

    def validate(self) -> None:
        check_asset_name(self.file, "ship.file", ".onnx")
        check_asset_name(self.int8_file, "ship.int8_file", ".onnx")
        if self.beside and (self.file or self.int8_file):
            raise ConfigError("ship: ship.beside and ship.file / ship.int8_file exclude each other")
        if self.int8_file and self.int8_file == self.file:
            raise ConfigError("ship.int8_file: must differ from ship.file")
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError("ship.threshold: must be in (0, 1)")
        if not self.version:
            raise ConfigError("ship.version: must not be empty")


def asset_target(file: str, dest: str | None) -> Path:
    """Where an asset named ``file`` ships: ``dest/file``, else the package's
    ``models/assets/file``."""
    from fakescope.models import asset_path

    return Path(dest) / file if dest else asset_path(file)


def copy_asset(source: Path, file: str, dest: str | None) -> Path:
    """Copy a run's ``source`` to :func:`asset_target` ``(file, dest)``; returns the copy."""
    if not source.is_file():
        raise ConfigError(f"{source} does not exist: train first")
    target = asset_target(file, dest)
    shutil.copyfile(source, target)
    return target


def beside_json(network: Path) -> Path:
    """The weight config written next to a run's network: ``weights.json`` for ``model.onnx``,
    ``weights_int8.json`` for ``model_int8.onnx``."""
    return network.with_name(f"weights{network.stem.removeprefix('model')}.json")


def face_weight_config(
    network: Path,
    section: FaceShipSection,
    input_size: int,
    margin: float,
    int8: bool = False,
    name: str = "",
) -> dict[str, Any]:
    """The weight config (:class:`fakescope.models.WeightConfig` fields, no calibration) of the
    face network ``network`` as ``section`` describes it (the int8 twin's fields with
    ``int8``); ``name`` replaces ``section.name`` when given."""
    from fakescope.models import sha256_file
    from fakescope.training.effnet_lite import MEAN, STD

    name = name or section.name
    architecture, trained_on = section.architecture, section.trained_on
    if int8:
        name = section.int8_name or f"{name}-int8"
        architecture = section.int8_architecture or (
            f"{architecture}; static INT8 (QDQ) of {section.file or 'model.onnx'}"
        )
        trained_on = section.int8_trained_on or trained_on
    return {
        "name": name,
        "file": network.name,
        "sha256": sha256_file(network),
        "input_size": input_size,
        "mean": [float(v) for v in MEAN],
        "std": [float(v) for v in STD],
        "margin": margin,
        "alignment": "arcface5",
        "threshold": section.threshold,
        "version": section.version,
        "architecture": architecture,
        "trained_on": trained_on,
        "license": _LICENSE,
    }


def write_face_weights(
    onnx: Path,
    section: FaceShipSection,
    input_size: int,
    margin: float,
    int8: bool = False,
    calibration: dict[str, Any] | None = None,
) -> Path:
    """Ship the face network ``onnx`` as ``section`` says (see :class:`FaceShipSection`; with
    ``int8`` as its int8 twin: ``int8_file``, ``weights_int8.json`` beside) and write its
    weight config (:class:`fakescope.models.WeightConfig`); returns that JSON. Its calibration:
    ``section.calibration``'s (the float network), else ``calibration``."""
    file = section.int8_file if int8 else section.file
    if not section.beside and not file:
        raise ConfigError(
            f"ship: nothing to ship; give ship.{'int8_file' if int8 else 'file'} (the asset "
            "file name, into the package) or ship.beside=true (weights.json next to the run's "
            "model)"
        )
    if not section.name:
        raise ConfigError("ship.name: give the weight's name")
    if not onnx.is_file():
        raise ConfigError(f"{onnx} does not exist: train first")
    if section.beside:
        target, config_path = onnx, beside_json(onnx)
    else:
        target = copy_asset(onnx, file, section.dest)
        config_path = target.with_suffix(".json")
    config = face_weight_config(target, section, input_size, margin, int8)
    if section.calibration is not None and not int8:
        try:
            calibration = json.loads(Path(section.calibration).read_text())["calibration"]
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(
                f"ship.calibration: cannot read {section.calibration}: {exc}"
            ) from exc
    if calibration is not None:
        config["calibration"] = calibration
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    return config_path


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m fakescope.training.ship ONNX ...``: a face network of a run without a ship
    section (the options are :class:`FaceShipSection`'s fields)."""
    parser = argparse.ArgumentParser(description="Ship an exported face network (ONNX).")
    parser.add_argument("onnx", type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--file", default="", help="file name inside models/assets")
    parser.add_argument(
        "--beside", action="store_true", help="write <onnx folder>/weights.json, copy nothing"
    )
    parser.add_argument("--input-size", type=int, required=True)
    parser.add_argument("--margin", type=float, required=True)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--version", default=__version__)
    parser.add_argument("--trained-on", default=FACE_TRAINED_ON)
    parser.add_argument(
        "--calibration", help="JSON from `fakescope calibrate` to store in the weight config"
    )
    parser.add_argument("--architecture", default=FACE_ARCHITECTURE)
    args = parser.parse_args(argv)
    if not args.file and not args.beside:
        parser.error("give --file NAME (ship into the package) or --beside")
    section = FaceShipSection(
        name=args.name,
        file=args.file,
        beside=args.beside,
        version=args.version,
        threshold=args.threshold,
        architecture=args.architecture,
        trained_on=args.trained_on,
        calibration=args.calibration,
    )
    try:
        section.validate()
        config_path = write_face_weights(args.onnx, section, args.input_size, args.margin)
    except ConfigError as exc:
        parser.error(str(exc))
    data = json.loads(config_path.read_text())
    print(f"shipped {data['file']} ({data['sha256']}) and {config_path.name}")


if __name__ == "__main__":
    main()
