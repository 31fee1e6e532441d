"""The upload policy: what may be signed for upload, and whether the upload is what was signed."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from domain.errors import InvalidCommandError
from domain.uploads import UploadPolicy

POLICY = UploadPolicy(("audio/*", "image/png"), max_bytes=100)


@dataclass(frozen=True)
class Stored:
    size: int
    content_type: str


def test_a_slot_has_a_fresh_id_a_clean_name_and_the_bare_type() -> None:
    slot = POLICY.slot("../x/Voice\u202e.opus", " Audio/Opus ")
    assert slot.filename == "Voice.opus" and slot.content_type == "audio/opus"
    assert slot.key == f"{slot.attachment_id}/Voice.opus"
    assert POLICY.slot("a.opus", "audio/opus").attachment_id != slot.attachment_id


@pytest.mark.parametrize("content_type", ["video/mp4", "audio/opus; codecs=opus", "audio", ""])
def test_a_type_outside_the_policy_is_refused_naming_the_allowed(content_type: str) -> None:
    with pytest.raises(InvalidCommandError) as raised:
        POLICY.slot("a.opus", content_type)
    assert str(raised.value) == "content_type must be one of: audio/*, image/png"


def test_an_unusable_filename_is_refused() -> None:
    with pytest.raises(InvalidCommandError) as raised:
        POLICY.slot("/..", "audio/opus")
    assert str(raised.value) == "unusable filename '/..'"


def test_the_upload_must_exist_with_the_signed_type_within_the_size() -> None:
    POLICY.check_uploaded("audio/opus", Stored(100, "audio/opus"))
    with pytest.raises(InvalidCommandError, match="has not been uploaded"):
        POLICY.check_uploaded("audio/opus", None)
    with pytest.raises(InvalidCommandError, match="does not match its upload policy"):
        POLICY.check_uploaded("audio/opus", Stored(101, "audio/opus"))
    with pytest.raises(InvalidCommandError, match="does not match its upload policy"):
        POLICY.check_uploaded("audio/opus", Stored(1, "audio/ogg"))
