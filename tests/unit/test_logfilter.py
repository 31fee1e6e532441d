"""Tokens never reach a log line: the filter on uvicorn's loggers redacts them before formatting."""

from __future__ import annotations

import logging

import pytest

from shared.web import logfilter

TOKEN = "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiI3In0.c2lnbmF0dXJl"


@pytest.fixture(autouse=True)
def installed() -> None:
    logfilter.install()


def test_websocket_handshake_line_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="uvicorn.error"):
        logging.getLogger("uvicorn.error").info(
            '%s - "WebSocket %s" [accepted]', "127.0.0.1:5000", f"/ws?token={TOKEN}&cursor=12")
    assert TOKEN not in caplog.text
    assert '"WebSocket /ws?token=[REDACTED]&cursor=12" [accepted]' in caplog.text


def test_access_log_line_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/ws?a=1&token=abc.def", "1.1",
            101)
    assert "abc.def" not in caplog.text
    assert '"GET /ws?a=1&token=[REDACTED] HTTP/1.1" 101' in caplog.text


@pytest.mark.parametrize("text", [
    f"refresh_token={TOKEN}", f"Access_Token={TOKEN} next", f"Bearer {TOKEN}",
    f'{{"token": "{TOKEN}"}}',
])
def test_any_jwt_or_token_parameter_is_redacted(text: str) -> None:
    assert TOKEN not in logfilter.redact(text)
    assert logfilter.REDACTED in logfilter.redact(text)


def test_messages_and_mapping_arguments_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("uvicorn")
    with caplog.at_level(logging.INFO, logger="uvicorn"):
        logger.info(f"connect /ws?token={TOKEN}")
        logger.info("user %(user)s from %(path)s", {"user": 7, "path": f"/ws?token={TOKEN}"})
    assert TOKEN not in caplog.text
    assert "user 7 from /ws?token=[REDACTED]" in caplog.text


def test_other_text_and_arguments_are_untouched(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="uvicorn.error"):
        logging.getLogger("uvicorn.error").info("%s - %d workers, tokenizer=%s", "ok", 4, "x")
    assert "ok - 4 workers, tokenizer=x" in caplog.text


def test_install_is_idempotent() -> None:
    logfilter.install()
    for name in logfilter.UVICORN_LOGGERS:
        filters = [f for f in logging.getLogger(name).filters
                   if isinstance(f, logfilter.TokenRedactingFilter)]
        assert len(filters) == 1
