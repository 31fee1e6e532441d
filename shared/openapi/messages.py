"""The `/messages` and `/attachments` operations of the table (command and query side)."""

from __future__ import annotations

from shared.openapi.types import API, ID, Operation, Param, Response
from shared.schemas import (
    AttachmentCreate,
    AttachmentDownload,
    AttachmentUpload,
    MessageCreate,
    MessageEdit,
    MessageOut,
    MessageVersion,
    ReactionAdd,
    ReactionOut,
)

# Mirrors the seed's examples (sections 4 and 5), with the fields Parley adds.
ATTACHMENT_ID = "550e8400-e29b-41d4-a716-446655440000"
TEXT_MESSAGE_EXAMPLE = {"id": 1, "chat_id": 1, "author_id": 2, "type": "text",
                        "content": "Hello everyone!", "payload": None,
                        "ts": "2024-03-26T12:00:00Z", "edited_at": None}
VOICE_MESSAGE_EXAMPLE = {"id": 2, "chat_id": 1, "author_id": 1, "type": "voice",
                         "content": None, "payload": {
                             "attachment_id": ATTACHMENT_ID, "duration_ms": 5000,
                             "codec": "opus", "waveform": [10, 20, 30, 40, 50]},
                         "ts": "2024-03-26T12:01:00Z", "edited_at": None}
POSTED_MESSAGE_EXAMPLE = {"id": 3, "chat_id": 1, "author_id": 1, "type": "text",
                          "content": "Hello everyone!", "payload": None,
                          "ts": "2024-03-26T12:05:00Z", "edited_at": None}
EDITED_MESSAGE_EXAMPLE = {**POSTED_MESSAGE_EXAMPLE, "content": "Updated message text",
                          "edited_at": "2024-03-26T12:07:00Z"}
UPLOAD_EXAMPLE = {
    "attachment_id": ATTACHMENT_ID,
    "url": "http://localhost:9000/attachments",
    "fields": {
        "key": f"{ATTACHMENT_ID}/audio.opus", "Content-Type": "audio/opus",
        "Content-Disposition": "attachment", "x-amz-algorithm": "AWS4-HMAC-SHA256",
        "x-amz-credential": "parley/20240326/us-east-1/s3/aws4_request",
        "x-amz-date": "20240326T120000Z", "policy": "eyJleHBpcmF0aW9uIjoiMjAyNC0w...",
        "x-amz-signature": "signature-here"},
    "expires_at": "2024-03-26T12:15:00Z",
}
DOWNLOAD_EXAMPLE = {
    "url": f"http://localhost:9000/attachments/{ATTACHMENT_ID}/audio.opus"
           "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=300&X-Amz-Signature=...",
    "expires_at": "2024-03-26T12:10:00Z",
}

MESSAGE = f"{API}/messages/{{message_id}}"

POST_MESSAGE = """\
`text` needs non-empty `content` (at most 4000 characters) and no `payload`. `voice` needs no
`content` (null or absent) and a `payload` whose `attachment_id` is an attachment the caller created
(`POST /attachments`) and has uploaded, with the type and size it was signed for; `duration_ms`
1..600000, `codec` such as `opus`, `aac`, `mp3` or `vorbis`, `waveform` optional (at most 512
integers 0..255). `system` messages are written by the server only (403). Either kind may
answer another message of the same chat with `reply_to_id` (400 if it is not one, or deleted).
Members receive the message as a `message.created` WebSocket event, exactly as returned here.
A voice message:

```json
{"chat_id": 1, "type": "voice", "content": null,
 "payload": {"attachment_id": "550e8400-e29b-41d4-a716-446655440000",
             "duration_ms": 5000, "codec": "opus", "waveform": [10, 20, 30, 40, 50]}}
```
"""

UPLOAD_FLOW = """\
Step 1 of sending a voice message: the upload goes straight to object storage.

1. Call this with the file's `filename` and `content_type` (a bare `type/subtype` such as
   `audio/opus`, no parameters; `audio/*` by default). The answer is a presigned POST.
2. Send a `multipart/form-data` POST to `url` with **every** entry of `fields` as a form field,
   names and values exactly as given (`key`, `Content-Type`, `Content-Disposition`, `policy`,
   `x-amz-*`), then the file **last** (field name `file`). Do not set the request's
   `Content-Type` yourself; the browser adds the multipart boundary. The signed policy binds
   the exact object key, `Content-Type`, `Content-Disposition: attachment`, a size of 1 byte to
   20 MiB (configurable) and expires after 15 minutes (`expires_at`). Storage answers 2xx
   (204 No Content by default).
3. Post the voice message with this `attachment_id` (`POST /messages`); the server checks that
   the object was uploaded with the signed type and size (400 otherwise).

```js
const form = new FormData();
for (const [name, value] of Object.entries(upload.fields)) form.append(name, value);
form.append("file", audioBlob);  // last
await fetch(upload.url, {method: "POST", body: form});
```
"""

MESSAGES: list[Operation] = [
    Operation(
        "GET", f"{API}/messages", "A page of a chat's messages, newest first", "messages",
        query=[
            Param("chat_id", schema=ID, required=True, description="The chat."),
            Param("before_id", schema=ID,
                  description="Page back: the `limit` messages just before this id (the last "
                              "id of the previous page)."),
            Param("after_id", schema=ID,
                  description="Page forward: the `limit` messages just after this id (the "
                              "first id of the previous page), still newest first."),
            Param("around_id", schema=ID,
                  description="The page around this id (opening a chat at a message, say its "
                              "first unread): that message if it exists and at most `limit` "
                              "in all, split evenly before and after it."),
            Param("limit", schema={**ID, "default": 50},
                  description="Page size, default 50; values above 100 are treated as 100."),
        ],
        description="Messages of a chat the caller is a member of, newest (highest id) first. "
                    "Without an anchor, the newest page. At most one of `before_id`, "
                    "`after_id` and `around_id`. An empty page means there is nothing further "
                    "that way.",
        responses={
            200: Response("The page.", list[MessageOut],
                          example=[VOICE_MESSAGE_EXAMPLE, TEXT_MESSAGE_EXAMPLE]),
            400: "`chat_id` missing; `chat_id`, `before_id`, `after_id`, `around_id` or "
                 "`limit` not a positive integer; more than one of `before_id`, `after_id` "
                 "and `around_id`; or `X-Min-Position` not a non-negative integer.",
            403: "The caller is not a member of the chat.",
            404: "No such chat, or it was deleted.",
        }),
    Operation(
        "POST", f"{API}/messages", "Post a text or voice message", "messages",
        request=MessageCreate, description=POST_MESSAGE,
        responses={
            201: Response("The new message.", MessageOut, example=POSTED_MESSAGE_EXAMPLE,
                          headers=("Location",)),
            400: "Validation error; a text message without content or with a payload; a "
                 "voice message without payload or with content, whose attachment is not "
                 "the caller's, not uploaded, or does not match its upload policy; a "
                 "`reply_to_id` that is not a message of the chat; or a bad "
                 "`Idempotency-Key`.",
            403: "The caller is not a member of the chat, or `type` is `system`.",
            404: "No such chat, or it was deleted.",
        }),
    Operation(
        "GET", MESSAGE, "One message", "messages",
        responses={
            200: Response("The message.", MessageOut, example=TEXT_MESSAGE_EXAMPLE),
            400: "`message_id` is not a positive integer, or `X-Min-Position` is not a "
                 "non-negative integer.",
            404: "No such message, or the caller is not a member of its chat.",
        }),
    Operation(
        "PATCH", MESSAGE, "Edit a text message", "messages", request=MessageEdit,
        description="Only the author, only text messages, only `content` (`payload` must be "
                    "null or absent). Sets `edited_at`; members receive a `message.updated` "
                    "WebSocket event.",
        responses={
            200: Response("The edited message.", MessageOut, example=EDITED_MESSAGE_EXAMPLE),
            400: "Validation error, a voice message, a `message_id` that is not a positive "
                 "integer, or a bad `Idempotency-Key`.",
            403: "The caller is not the message's author, or it is a system message.",
            404: "No such message, or the caller is not a member of its chat.",
        }),
    Operation(
        "DELETE", MESSAGE, "Delete a message", "messages",
        description="The author, or the creator of a group chat, deletes a text or voice "
                    "message. Afterwards it is gone from every read (lists skip it, `GET` is "
                    "404, its voice attachment is 404 to everyone but the uploader) and from "
                    "unread counts; members receive a `message.deleted` WebSocket event "
                    "`{\"id\", \"chat_id\"}`. Its text stays in the event log and, until "
                    "retention drops it, in the live stream: the README says how an operator "
                    "erases it.",
        responses={
            204: None,
            400: "`message_id` is not a positive integer, or a bad `Idempotency-Key`.",
            403: "The caller is neither the author nor the group's creator, or it is a "
                 "system message.",
            404: "No such message, it was deleted, or the caller is not a member of its chat.",
        }),
]

ATTACHMENTS: list[Operation] = [
    Operation(
        "POST", f"{API}/attachments", "Get a presigned upload for a voice file", "attachments",
        request=AttachmentCreate, description=UPLOAD_FLOW,
        responses={
            200: Response("Where and how to upload the file.", AttachmentUpload,
                          example=UPLOAD_EXAMPLE),
            400: "Validation error, a content type that is not allowed or carries "
                 "parameters, an unusable filename, or a bad `Idempotency-Key`.",
        }),
    Operation(
        "GET", f"{API}/attachments/{{attachment_id}}", "A download URL of an attachment",
        "attachments",
        query=[Param("attachment_id", "path", {"type": "string", "format": "uuid"},
                     required=True, description="The `attachment_id` of `POST /attachments`.")],
        description="A presigned GET of the file on object storage, valid for 5 minutes, for "
                    "the uploader and for members of a chat where it was posted.",
        responses={
            200: Response("A short-lived download URL.", AttachmentDownload,
                          example=DOWNLOAD_EXAMPLE),
            400: "`attachment_id` is not a UUID, or `X-Min-Position` is not a "
                 "non-negative integer.",
            404: "No such attachment, or the caller neither uploaded it nor is a member of a "
                 "chat where it was posted.",
        }),
]

REACTION_EXAMPLE = {"message_id": 3, "chat_id": 1, "user_id": 2, "emoji": "👍"}
HISTORY_EXAMPLE = [{"content": "Hello everyone!", "at": "2024-03-26T12:05:00Z"},
                   {"content": "Updated message text", "at": "2024-03-26T12:07:00Z"}]
EMOJI_RULE = ("1 to 32 characters, no spaces, no control characters, no `/` and not `.` or "
              "`..` (it must fit one URL path segment)")

REACTIONS: list[Operation] = [
    Operation(
        "POST", f"{MESSAGE}/reactions", "React to a message", "messages", request=ReactionAdd,
        description=f"Adds the caller's `emoji` ({EMOJI_RULE}) to a message of a chat they are "
                    "a member of. Messages carry `reactions`: `[{\"emoji\", \"count\", "
                    "\"user_ids\"}]`, emoji in the order of their first use, users in the order "
                    "they reacted. Members receive a `message.reaction_added` WebSocket event "
                    "with the body answered here.",
        responses={
            201: Response("The reaction, added.", ReactionOut, example=REACTION_EXAMPLE),
            200: Response("The reaction was there already; nothing changed.", ReactionOut,
                          example=REACTION_EXAMPLE),
            400: "Validation error (the emoji), a `message_id` that is not a positive "
                 "integer, or a bad `Idempotency-Key`.",
            404: "No such message, it was deleted, or the caller is not a member of its chat.",
        }),
    Operation(
        "DELETE", f"{MESSAGE}/reactions/{{emoji}}", "Take back a reaction", "messages",
        query=[Param("emoji", "path", {"type": "string", "minLength": 1},
                     required=True, description="The emoji, URL-encoded (`%F0%9F%91%8D`).")],
        description="Removes the caller's own reaction with this emoji. Members receive a "
                    "`message.reaction_removed` WebSocket event `{\"message_id\", \"chat_id\", "
                    "\"user_id\", \"emoji\"}`.",
        responses={
            204: None,
            400: "An emoji that could never be one, a `message_id` that is not a positive "
                 "integer, or a bad `Idempotency-Key`.",
            404: "The caller has no such reaction on it; no such message, it was deleted, or "
                 "the caller is not a member of its chat.",
        }),
    Operation(
        "GET", f"{MESSAGE}/history", "Every version of a message", "messages",
        description="The post, then each edit, oldest first: `[{\"content\", \"at\"}]`. "
                    "The versions are read from the event log, where every one is kept (the "
                    "only read that is not served from the read models); who may see the "
                    "message is checked on the read models, as for `GET /messages/{id}`.",
        responses={
            200: Response("Every version, oldest first.", list[MessageVersion],
                          example=HISTORY_EXAMPLE),
            400: "`message_id` is not a positive integer, or `X-Min-Position` is not a "
                 "non-negative integer.",
            404: "No such message, it was deleted, or the caller is not a member of its chat.",
        }),
]
