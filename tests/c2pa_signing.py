"""Sign files with C2PA content credentials from a throw-away test certificate chain.

For tests and ``tools/sign_c2pa_example.py`` only; never shipped in the package. A fresh
root CA and an end-entity certificate are generated with ``cryptography`` (ES256, P-256):
c2pa-rs refuses a self-signed end-entity certificate and wants a critical keyUsage with
digitalSignature and an extendedKeyUsage of emailProtection or documentSigning, without
anyExtendedKeyUsage. No time-stamp authority is used, so signing works offline.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fakescope.io import sniff

__all__ = [
    "CLAIM_GENERATOR",
    "TestCredentials",
    "make_test_credentials",
    "manifest_definition",
    "mime_type",
    "sign_file",
]

CLAIM_GENERATOR = "fakescope-test/1.0"
_IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"

# fakescope's sniffed formats -> the MIME type c2pa's Builder wants.
_MIME = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "avi": "video/x-msvideo",
}


@dataclass(frozen=True)
class TestCredentials:
    """PEM text: the root CA (the trust anchor), the signing chain (end entity first,
    then the root) and the end entity's PKCS#8 private key."""

    __test__ = False  # not a pytest test class

    root_pem: str
    chain_pem: str
    key_pem: str
    organization: str
    common_name: str


def _name(organization: str, common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(ca: bool) -> x509.KeyUsage:
    """Signing always; certificate and CRL signing only for a CA."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def make_test_credentials(
    organization: str = "Test Org", common_name: str = "fakescope test signer"
) -> TestCredentials:
    """A new root CA and an end-entity signing certificate it issued, valid for a day."""
    now = dt.datetime.now(dt.UTC)
    not_before, not_after = now - dt.timedelta(hours=1), now + dt.timedelta(days=1)

    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name(organization, f"{organization} Test Root CA")
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), False)
        .sign(root_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(organization, common_name))
        .issuer_name(root_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.EMAIL_PROTECTION, x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), False
        )
        .sign(root_key, hashes.SHA256())
    )

    def pem(cert: x509.Certificate) -> str:
        return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")

    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    return TestCredentials(
        root_pem=pem(root),
        chain_pem=pem(leaf) + pem(root),
        key_pem=key_pem,
        organization=organization,
        common_name=common_name,
    )


def mime_type(path: Path) -> str:
    """The MIME type c2pa needs for ``path``, from its sniffed content."""
    _, fmt = sniff(Path(path))
    try:
        return _MIME[fmt]
    except KeyError:
        raise ValueError(f"c2pa cannot embed a manifest in {fmt} files") from None


def manifest_definition(title: str, source_type: str = "digitalCapture") -> dict[str, Any]:
    """The manifest written by :func:`sign_file`: claim generator, title, and a
    c2pa.created action with the IPTC digital source type ``source_type``."""
    return {
        "claim_generator": CLAIM_GENERATOR,
        "claim_generator_info": [{"name": "fakescope-test", "version": "1.0"}],
        "title": title,
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": _IPTC + source_type,
                        }
                    ]
                },
            }
        ],
    }


def sign_file(
    source: Path,
    dest: Path,
    credentials: TestCredentials | None = None,
    *,
    title: str | None = None,
    source_type: str = "digitalCapture",
) -> Path:
    """Write ``source`` with an embedded C2PA manifest signed by ``credentials`` (new
    ones when None) to ``dest``; ``source_type`` is the declared IPTC digital source
    type, e.g. ``trainedAlgorithmicMedia`` for generative AI."""
    import c2pa

    source, dest = Path(source), Path(dest)
    creds = credentials or make_test_credentials()
    mime = mime_type(source)
    info = c2pa.C2paSignerInfo(
        alg=b"es256",
        sign_cert=creds.chain_pem.encode("ascii"),
        private_key=creds.key_pem.encode("ascii"),
        ta_url=None,
    )
    # The signer's own root is trusted while signing, so c2pa's verify-after-sign passes.
    context = c2pa.Context.from_dict(
        {
            "trust": {"user_anchors": creds.root_pem},
            "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
            "builder": {"thumbnail": {"enabled": False}},
        }
    )
    with (
        context,
        c2pa.Signer.from_info(info) as signer,
        c2pa.Builder(
            json.dumps(manifest_definition(title or source.name, source_type)), context=context
        ) as builder,
        source.open("rb") as src,
        dest.open("w+b") as dst,
    ):
        builder.sign(signer, mime, src, dst)
    return dest
