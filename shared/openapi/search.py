"""The `/search` operations of the table (query side)."""

from __future__ import annotations

from shared.openapi.messages import TEXT_MESSAGE_EXAMPLE
from shared.openapi.types import API, ID, Operation, Param, Response
from shared.schemas import MessageOut

SEARCH_DESCRIPTION = """\
Text messages of the caller's chats (their membership now: a chat the caller left is not
searched) that contain every word of `q`, each as the beginning of a word: `hel wor` finds
"Hello, world!", `прив` finds "Привет". Case-insensitive, Latin, Cyrillic and other scripts
alike; a word is a run of letters and digits, anything else separates words (`e-mail` is `e`
and `mail`). No stemming and no ranking: newest (highest id) first, paged like
`GET /messages` with `before_id`. Deleted messages never match; an edited message matches by
its current text. Voice and system messages are not searched.
"""

SEARCH: list[Operation] = [
    Operation(
        "GET", f"{API}/search/messages", "Search the caller's messages by words", "search",
        query=[
            Param("q", required=True,
                  schema={"type": "string", "minLength": 1, "maxLength": 200},
                  description="The words to find, 1..200 characters once stripped, at most "
                              "10 words."),
            Param("chat_id", schema=ID, description="Only this chat (the caller's)."),
            Param("before_id", schema=ID,
                  description="Page back: hits with ids below this one (the last id of the "
                              "previous page)."),
            Param("limit", schema={**ID, "default": 50},
                  description="Page size, default 50; values above 100 are treated as 100."),
        ],
        description=SEARCH_DESCRIPTION,
        responses={
            200: Response("The hits, newest first, in the shape of `GET /messages`.",
                          list[MessageOut], example=[TEXT_MESSAGE_EXAMPLE]),
            400: "`q` missing, blank, longer than 200 characters, without any letter or digit "
                 "or with more than 10 words; `chat_id`, `before_id` or `limit` not a positive "
                 "integer; or `X-Min-Position` not a non-negative integer.",
            403: "`chat_id` is a chat the caller is not a member of.",
            404: "`chat_id` is no chat, or a deleted one.",
        }),
]
