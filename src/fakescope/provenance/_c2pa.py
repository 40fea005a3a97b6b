"""Read and validate C2PA content credentials with c2pa-python (imported lazily)."""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fakescope.errors import FakescopeError, UnsupportedMedia
from fakescope.io import Limits, read_head, sniff_bytes

__all__ = [
    "TRUST_ANCHORS_ENV",
    "Provenance",
    "ProvenanceStatus",
    "ValidationIssue",
    "read_provenance",
]

TRUST_ANCHORS_ENV = "FAKESCOPE_C2PA_TRUST_ANCHORS"
"""Environment variable naming a PEM bundle of trusted root certificates (used when
``read_provenance`` gets no ``trust_anchors``)."""

_DEFAULT_LIMITS = Limits()

# fakescope's sniffed formats -> MIME type; c2pa's own list decides which it reads.
_FORMAT_MIME = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "bmp": "image/bmp",
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "avi": "video/x-msvideo",
    "mkv": "video/x-matroska",
    "webm": "video/webm",
}
_FORMAT_NAMES = {"jpeg": "JPEG", "png": "PNG", "webp": "WebP", "bmp": "BMP", "mkv": "Matroska"}

# Images fakescope does not scan but which often carry credentials (phones, generators).
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})

# Codes about whether the signer is trusted, reported by ``trusted``, not as errors.
_TRUST_CODES = frozenset({"signingCredential.untrusted", "timeStamp.untrusted"})

# IPTC digital source types that declare generative-AI content.
_GENERATIVE_SOURCE_TYPES = frozenset(
    {"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia"}
)

# c2pa errors raised while parsing a manifest store that is present but damaged.
_DAMAGED_MANIFEST_ERRORS = frozenset(
    {"Decoding", "Verify", "Manifest", "Signature", "Json", "Assertion", "Encoding"}
)


class ProvenanceStatus(enum.StrEnum):
    """What reading a file's C2PA content credentials found."""

    ABSENT = "absent"
    """No manifest store in the file."""
    VALID = "valid"
    """A manifest whose signature and hashes validate (see ``trusted`` for the signer)."""
    INVALID = "invalid"
    """A manifest that fails validation: altered content, bad signature, damaged store."""
    UNAVAILABLE = "unavailable"
    """Not checked: c2pa missing, a format c2pa cannot read, or over the size limit."""
    ERROR = "error"
    """The file could not be read."""


@dataclass(frozen=True)
class ValidationIssue:
    """One validation failure: a C2PA status ``code`` and c2pa's explanation."""

    code: str
    explanation: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "explanation": self.explanation}


@dataclass(frozen=True)
class Provenance:
    """C2PA content credentials of one file, read beside (never mixed into) detection.

    Everything but ``status`` and ``reason`` is None / empty unless a manifest was read;
    the signer fields come from the signing certificate's subject, the rest from the
    active manifest. ``trusted`` is True only when the certificate chains to a configured
    trust anchor, False when c2pa reports it untrusted, None when trust was not checked.
    """

    status: ProvenanceStatus
    reason: str
    trusted: bool | None = None
    signer: str | None = None
    """Organisation (O) of the signing certificate's subject."""
    signer_common_name: str | None = None
    claim_generator: str | None = None
    signed_at: str | None = None
    """ISO 8601 time from a time-stamp authority, when the signature has one."""
    title: str | None = None
    actions: tuple[str, ...] = ()
    digital_source_types: tuple[str, ...] = ()
    """IPTC digital source types the actions declare, e.g. ``trainedAlgorithmicMedia``."""
    validation_state: str | None = None
    """c2pa's overall verdict: ``Invalid``, ``Valid`` or ``Trusted``."""
    validation_errors: tuple[ValidationIssue, ...] = ()
    media_type: str | None = None

    @property
    def declares_generative_ai(self) -> bool:
        """The manifest says generative AI made (part of) the content."""
        return not _GENERATIVE_SOURCE_TYPES.isdisjoint(self.digital_source_types)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": str(self.status),
            "reason": self.reason,
            "trusted": self.trusted,
            "signer": self.signer,
            "signer_common_name": self.signer_common_name,
            "claim_generator": self.claim_generator,
            "signed_at": self.signed_at,
            "title": self.title,
            "actions": list(self.actions),
            "digital_source_types": list(self.digital_source_types),
            "declares_generative_ai": self.declares_generative_ai,
            "validation_state": self.validation_state,
            "validation_errors": [e.to_dict() for e in self.validation_errors],
            "media_type": self.media_type,
        }


def read_provenance(
    path: str | Path,
    *,
    trust_anchors: str | Path | None = None,
    limits: Limits = _DEFAULT_LIMITS,
) -> Provenance:
    """Read and validate the C2PA manifest store embedded in the image or video ``path``.

    Never raises for a bad input: every outcome is a :class:`Provenance` whose ``status``
    and ``reason`` say what happened. The file type is sniffed from its content; the file
    is streamed to c2pa, never read whole into memory, and files over
    ``limits.max_bytes`` are not checked. ``trust_anchors`` is a PEM bundle of trusted
    root certificates (the text, or a path to it); without it, the file named by the
    ``FAKESCOPE_C2PA_TRUST_ANCHORS`` environment variable, if set. Nothing is fetched
    from the network (no remote manifests, no OCSP).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if not path.is_file():
            return _error(f"not a regular file: {path}")
        mime, what = _media_type(read_head(path))
    except UnsupportedMedia as exc:
        return Provenance(ProvenanceStatus.UNAVAILABLE, f"Content credentials not checked: {exc}.")
    except FakescopeError as exc:
        return _error(str(exc))
    except OSError as exc:
        return _error(f"cannot read {path}: {exc.strerror or exc}")
    if size > limits.max_bytes:
        return Provenance(
            ProvenanceStatus.UNAVAILABLE,
            f"Content credentials not checked: the file is {size} bytes, over the "
            f"max_bytes limit of {limits.max_bytes}.",
            media_type=mime,
        )
    try:
        anchors = _trust_anchors(trust_anchors)
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        return _error(f"cannot read the C2PA trust anchors{where}: {exc.strerror or exc}", mime)
    except ValueError as exc:  # not ASCII PEM text
        return _error(f"cannot read the C2PA trust anchors: {exc}", mime)

    try:
        import c2pa
    except (ImportError, OSError) as exc:
        return Provenance(
            ProvenanceStatus.UNAVAILABLE,
            f"Content credentials not checked: the c2pa library is unavailable ({exc}; "
            "pip install 'fakescope[provenance]').",
            media_type=mime,
        )

    settings: dict[str, Any] = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
    if anchors is not None:
        settings["trust"] = {"user_anchors": anchors}
    try:
        supported = mime in c2pa.Reader.get_supported_mime_types()
        context = c2pa.Context.from_dict(settings)
    except Exception as exc:
        return _error(f"cannot set up c2pa (check the trust anchors): {exc}", mime)
    if not supported:
        context.close()
        return Provenance(
            ProvenanceStatus.UNAVAILABLE,
            f"Content credentials not checked: c2pa cannot read {what} files.",
            media_type=mime,
        )
    try:
        with context, path.open("rb") as stream:
            reader = c2pa.Reader.try_create(mime, stream, None, context)
            if reader is None:
                return Provenance(
                    ProvenanceStatus.ABSENT,
                    f"No C2PA content credentials in this {what} file.",
                    media_type=mime,
                )
            with reader:
                store = json.loads(reader.json())
    except c2pa.C2paError as exc:
        kind, _, message = str(exc).partition(": ")
        if kind in _DAMAGED_MANIFEST_ERRORS:
            return Provenance(
                ProvenanceStatus.INVALID,
                "The file carries a C2PA manifest that cannot be parsed (damaged or "
                f"tampered): {message or kind}.",
                validation_state="Invalid",
                validation_errors=(ValidationIssue("manifest.unreadable", str(exc)),),
                media_type=mime,
            )
        return _error(f"could not read content credentials: {message or exc}", mime)
    except Exception as exc:  # a reader must never take a batch down
        return _error(f"could not read content credentials: {exc}", mime)
    return _from_store(store, mime, configured_anchors=anchors is not None)


def _error(message: str, mime: str | None = None) -> Provenance:
    return Provenance(ProvenanceStatus.ERROR, _sentence(message), media_type=mime)


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _media_type(head: bytes) -> tuple[str, str]:
    """``(MIME type, human name)`` of a file from its first bytes."""
    try:
        _, fmt = sniff_bytes(head)
    except UnsupportedMedia:
        extra = _other_image(head)
        if extra is None:
            raise
        return extra
    return _FORMAT_MIME[fmt], _FORMAT_NAMES.get(fmt, fmt.upper())


def _other_image(head: bytes) -> tuple[str, str] | None:
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif", "GIF"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff", "TIFF"
    if head[4:8] == b"ftyp":
        if head[8:12] in _HEIF_BRANDS:
            return "image/heic", "HEIF"
        if head[8:12] in _AVIF_BRANDS:
            return "image/avif", "AVIF"
    return None


def _trust_anchors(value: str | Path | None) -> str | None:
    if value is None:
        env = os.environ.get(TRUST_ANCHORS_ENV, "").strip()
        if not env:
            return None
        value = Path(env)
    if isinstance(value, str) and "-----BEGIN" in value:
        return value
    return Path(value).read_text(encoding="ascii")


def _from_store(store: Mapping[str, Any], mime: str, *, configured_anchors: bool) -> Provenance:
    manifests = store.get("manifests") or {}
    manifest: Mapping[str, Any] = manifests.get(store.get("active_manifest")) or {}
    sig: Mapping[str, Any] = manifest.get("signature_info") or {}
    issues = _failures(store)
    codes = {i.code for i in issues}
    errors = tuple(i for i in issues if i.code not in _TRUST_CODES)
    state = store.get("validation_state")
    if not manifest:
        errors = (*errors, ValidationIssue("manifest.missing", "no active manifest"))
    invalid = state == "Invalid" if state else bool(errors)
    if state == "Trusted":
        trusted: bool | None = True
    elif "signingCredential.untrusted" in codes:
        trusted = False
    else:
        trusted = None
    actions, source_types = _actions(manifest.get("assertions") or ())

    signer = _text(sig.get("issuer"))
    common_name = _text(sig.get("common_name"))
    generator = _claim_generator(manifest)
    who = signer or common_name or "an unnamed signer"
    if signer and common_name and common_name != signer:
        who = f"{signer} ({common_name})"
    head = f"Signed by {who}" + (f" with {generator}" if generator else "")
    if invalid:
        listed = ", ".join(dict.fromkeys(e.code for e in errors)) or "unknown failure"
        reason = (
            f"{head}, but validation fails ({listed}): the file was altered after "
            "signing or its credentials are damaged or forged."
        )
    else:
        if trusted:
            trust = (
                "signer on the configured trust list" if configured_anchors else "signer trusted"
            )
        elif trusted is False:
            trust = (
                "signer not on the configured trust list"
                if configured_anchors
                else "signer not on a trust list (none configured)"
            )
        else:
            trust = "signer trust not checked"
        reason = f"{head}; signature valid; {trust}."
        generative = _GENERATIVE_SOURCE_TYPES.intersection(source_types)
        if generative:
            reason += f" It declares generative-AI content ({', '.join(sorted(generative))})."

    return Provenance(
        status=ProvenanceStatus.INVALID if invalid else ProvenanceStatus.VALID,
        reason=reason,
        trusted=trusted,
        signer=signer,
        signer_common_name=common_name,
        claim_generator=generator,
        signed_at=_text(sig.get("time")),
        title=_text(manifest.get("title")),
        actions=actions,
        digital_source_types=source_types,
        validation_state=_text(state),
        validation_errors=errors,
        media_type=mime,
    )


def _failures(store: Mapping[str, Any]) -> tuple[ValidationIssue, ...]:
    """Failure codes of the active manifest and its ingredients (deduplicated)."""
    results = store.get("validation_results")
    entries: list[tuple[str, Mapping[str, Any]]] = []
    if isinstance(results, Mapping):
        active = results.get("activeManifest") or {}
        entries += [("", e) for e in active.get("failure") or ()]
        for delta in results.get("ingredientDeltas") or ():
            uri = delta.get("ingredientAssertionURI", "ingredient")
            failures = (delta.get("validationDeltas") or {}).get("failure") or ()
            entries += [(f"ingredient {uri}: ", e) for e in failures]
    else:
        entries += [("", e) for e in store.get("validation_status") or ()]
    seen: dict[tuple[str, str], ValidationIssue] = {}
    for prefix, entry in entries:
        if not isinstance(entry, Mapping) or not entry.get("code"):
            continue
        issue = ValidationIssue(str(entry["code"]), prefix + str(entry.get("explanation", "")))
        seen.setdefault((issue.code, issue.explanation), issue)
    return tuple(seen.values())


def _actions(assertions: Iterable[Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Action names and declared digital source types of the c2pa.actions assertions."""
    names: list[str] = []
    sources: list[str] = []
    for assertion in assertions:
        if not isinstance(assertion, Mapping):
            continue
        label = str(assertion.get("label", ""))
        if label != "c2pa.actions" and not label.startswith("c2pa.actions."):
            continue
        for action in (assertion.get("data") or {}).get("actions") or ():
            if not isinstance(action, Mapping):
                continue
            if action.get("action"):
                names.append(str(action["action"]))
            source = action.get("digitalSourceType")
            if source:
                sources.append(str(source).rstrip("/").rsplit("/", 1)[-1])
    return tuple(names), tuple(dict.fromkeys(sources))


def _claim_generator(manifest: Mapping[str, Any]) -> str | None:
    generator = _text(manifest.get("claim_generator"))
    if generator:
        return generator
    for info in manifest.get("claim_generator_info") or ():
        if isinstance(info, Mapping) and info.get("name"):
            version = _text(info.get("version"))
            return f"{info['name']}/{version}" if version else str(info["name"])
    return None


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
