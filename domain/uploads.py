"""The upload policy: which files may be uploaded as attachments, and when an upload counts.

Object storage enforces the signed policy on the upload itself (`shared/s3/storage.py` signs it
with these rules); the rules here decide what is signed and whether the object that arrived
is the one that was signed for, before a voice message may carry it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID, uuid4

from domain.errors import InvalidCommandError

MAX_FILENAME_CHARS = 120
_MAX_EXTENSION_CHARS = 16
# RFC 6838 restricted-name, lowercased: a bare type/subtype, no parameters, no whitespace
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")


class UploadRefusedError(ValueError):
    """The upload request cannot be honoured (content type not allowed, unusable filename...)."""


def normalize_content_type(content_type: str) -> str | None:
    """Lowercased bare `type/subtype`, or None if malformed or carrying parameters."""
    value = content_type.strip().lower()
    return value if _MEDIA_TYPE.fullmatch(value) else None


def content_type_allowed(content_type: str, patterns: Sequence[str]) -> bool:
    """True if a bare type/subtype matches an entry like "audio/opus", "audio/*" or "*/*"."""
    value = normalize_content_type(content_type)
    if value is None:  # parameters ("; codecs=opus") are refused: the policy binds exact strings
        return False
    major = value.split("/", 1)[0]
    for pattern in (p.strip().lower() for p in patterns):
        if pattern in ("*", "*/*", value) or pattern == f"{major}/*":
            return True
    return False


def safe_filename(filename: str) -> str:
    """Basename without control/format chars, NFC, at most 120 chars keeping the extension."""
    name = unicodedata.normalize("NFC", filename)
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(" " if unicodedata.category(c)[0] == "Z" else c for c in name
                   if unicodedata.category(c)[0] != "C")  # drop control/format (bidi) chars
    name = unicodedata.normalize("NFC", " ".join(name.split())).strip(". ")  # no "..", ".x"
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        if dot and stem and len(ext) <= _MAX_EXTENSION_CHARS:
            name = stem[: MAX_FILENAME_CHARS - len(ext) - 1].rstrip(". ") + "." + ext
        else:
            name = name[:MAX_FILENAME_CHARS].rstrip(". ")
    if not name:
        raise UploadRefusedError(f"unusable filename {filename!r}")
    return name


def object_key(attachment_id: UUID, filename: str) -> str:
    """The object key of an attachment: "<attachment_id>/<safe filename>"."""
    return f"{attachment_id}/{safe_filename(filename)}"


class StoredUpload(Protocol):
    """What object storage holds under an attachment's key."""

    @property
    def size(self) -> int: ...

    @property
    def content_type(self) -> str: ...


Stat = Callable[[str], StoredUpload | None]  # object key -> what is stored there, if anything


@dataclass(frozen=True)
class UploadSlot:
    """Where one requested upload goes."""

    attachment_id: UUID
    key: str
    filename: str
    content_type: str


@dataclass(frozen=True)
class UploadPolicy:
    """The content types an upload may have and its largest size (set from Settings)."""

    content_types: tuple[str, ...] = ("audio/*",)
    max_bytes: int = 20 * 1024 * 1024

    def slot(self, filename: str, content_type: str) -> UploadSlot:
        """A fresh attachment id and its object key, for an allowed type and a usable name."""
        value = normalize_content_type(content_type)
        if value is None or not content_type_allowed(value, self.content_types):
            raise InvalidCommandError(
                f"content_type must be one of: {', '.join(self.content_types)}")
        try:
            name = safe_filename(filename)
        except UploadRefusedError as exc:
            raise InvalidCommandError(str(exc)) from None
        attachment_id = uuid4()
        return UploadSlot(attachment_id, object_key(attachment_id, name), name, value)

    def check_uploaded(self, signed_type: str, stored: StoredUpload | None) -> None:
        """The object arrived, with the type it was signed for and within the size."""
        if stored is None:
            raise InvalidCommandError("The attachment has not been uploaded")
        if stored.content_type != signed_type or stored.size > self.max_bytes:
            raise InvalidCommandError("The uploaded attachment does not match its upload policy")
