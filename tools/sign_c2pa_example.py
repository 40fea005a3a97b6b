"""Sign a file with C2PA content credentials from a freshly generated test certificate.

    python tools/sign_c2pa_example.py INPUT [OUTPUT] [--org NAME] [--anchor-out ROOT.pem]

Writes OUTPUT (default: INPUT's name with ``.c2pa`` before the suffix, in a new
temporary directory, so nothing lands in the repository) and prints its path. A new test
root CA and end-entity certificate are made on every run (see ``tests/c2pa_signing.py``),
so the signer is never on a trust list unless the root is passed back in: ``--anchor-out``
saves it for ``FAKESCOPE_C2PA_TRUST_ANCHORS``.
For development and demos only.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from c2pa_signing import make_test_credentials, sign_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path, help="JPEG, PNG, WebP, MP4, MOV or AVI file")
    parser.add_argument("output", type=Path, nargs="?", help="where to write the signed copy")
    parser.add_argument("--org", default="Test Org", help="organisation in the certificate")
    parser.add_argument("--title", help="manifest title (default: the input's file name)")
    parser.add_argument("--anchor-out", type=Path, help="also save the test root CA (PEM)")
    args = parser.parse_args(argv)

    src: Path = args.input
    dest: Path = args.output or Path(tempfile.mkdtemp(prefix="c2pa-")) / (
        f"{src.stem}.c2pa{src.suffix}"
    )
    if dest.resolve() == src.resolve():
        parser.error("OUTPUT must differ from INPUT")
    creds = make_test_credentials(organization=args.org)
    try:
        sign_file(src, dest, creds, title=args.title)
    except Exception as exc:
        print(f"sign_c2pa_example: {exc}", file=sys.stderr)
        return 1
    if args.anchor_out:
        args.anchor_out.write_text(creds.root_pem, encoding="ascii")
    print(dest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
