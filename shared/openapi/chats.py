"""The `/chats` operations of the table: chats and their members (command and query side)."""

from __future__ import annotations

from shared.openapi.types import API, ID, Operation, Param, Response
from shared.schemas import (
    ChatCreate,
    ChatOut,
    ChatUpdate,
    ChatView,
    MarkRead,
    MemberOut,
    MembersAdd,
    MembersOut,
    ReadState,
)

# Mirrors the seed's examples (section 3), with the fields Parley adds.
GROUP_CHAT_EXAMPLE = {"id": 3, "title": "New Project Discussion", "is_group": True,
                      "created_at": "2024-03-26T12:00:00Z", "creator_id": 1,
                      "last_activity_at": None}
DIRECT_CHAT_EXAMPLE = {"id": 2, "title": "John Doe", "is_group": False,
                       "created_at": "2024-03-26T11:00:00Z", "creator_id": 2,
                       "last_activity_at": None}
LAST_MESSAGE_EXAMPLE = {"id": 57, "chat_id": 1, "author_id": 2, "type": "text",
                        "content": "See you at 3", "payload": None,
                        "ts": "2024-03-26T12:05:00Z", "edited_at": None, "reply_to_id": None}
CHAT_LIST_EXAMPLE = [
    {"id": 1, "title": "General Chat", "is_group": True, "created_at": "2024-03-26T10:00:00Z",
     "creator_id": 1, "last_activity_at": "2024-03-26T12:05:00Z", "unread_count": 3,
     "last_read_message_id": 54, "last_message": LAST_MESSAGE_EXAMPLE},
    {**DIRECT_CHAT_EXAMPLE, "last_activity_at": "2024-03-26T11:30:00Z", "unread_count": 0,
     "last_read_message_id": None, "last_message": None},
]
RENAMED_CHAT_EXAMPLE = {"id": 1, "title": "Updated Chat Title", "is_group": True,
                        "created_at": "2024-03-26T10:00:00Z", "creator_id": 1,
                        "last_activity_at": None}
MEMBERS_EXAMPLE = [
    {"id": 1, "display_name": "John Doe", "avatar_url": "https://example.com/avatar.jpg",
     "joined_at": "2024-03-26T12:00:00Z", "last_read_message_id": 57},
    {"id": 2, "display_name": "Jane Smith", "avatar_url": None,
     "joined_at": "2024-03-26T12:00:00Z", "last_read_message_id": None},
]
READ_STATE = ("`unread_count`: text and voice messages by others after the caller's read "
              "marker `last_read_message_id` (null before any); system and deleted messages "
              "do not count. `last_message`: the newest message left, null if none.")

CHAT = f"{API}/chats/{{chat_id}}"
NOT_VISIBLE = "No such chat, or it was deleted."
NOT_MEMBER = "The caller is not a member of the chat."
WRITE_TITLE = ("Write responses leave `last_activity_at` null; reads fill it in. A direct "
               "chat has no title of its own: each member sees the other member's "
               "`display_name`.")

CHATS: list[Operation] = [
    Operation(
        "GET", f"{API}/chats", "The caller's chats", "chats",
        description="Every chat the caller is a member of, most recent activity first "
                    "(`last_activity_at`: the latest message, or the chat's creation). "
                    "Deleted chats are gone. " + READ_STATE,
        responses={
            200: Response("The caller's chats.", list[ChatView], example=CHAT_LIST_EXAMPLE),
            400: "`X-Min-Position` is not a non-negative integer.",
        }),
    Operation(
        "POST", f"{API}/chats", "Create a chat (or get the pair's direct chat)", "chats",
        request=ChatCreate,
        description="The caller is always a member (listing itself in `member_ids` is "
                    "harmless; duplicates are ignored). A group (`is_group: true`) needs a "
                    "`title`. A direct chat (`is_group: false`) needs exactly one other "
                    "existing user in `member_ids`; its `title` may be omitted. There is one "
                    "direct chat per pair of users: if it exists it is returned with 200 and "
                    "nothing is written (`X-Event-Position: 0`, no wait). " + WRITE_TITLE,
        responses={
            201: Response("The new chat.", ChatOut, example=GROUP_CHAT_EXAMPLE,
                          headers=("Location",)),
            200: Response("The existing direct chat of the pair; nothing was created.",
                          ChatOut, example=DIRECT_CHAT_EXAMPLE, headers=("Location",)),
            400: "Validation error, a group without `title`, a direct chat without exactly "
                 "one other user, unknown user ids, the pair's direct chat was deleted, or a "
                 "bad `Idempotency-Key`.",
            409: Response("Duplicate request: the `Idempotency-Key` was already used.",
                          example={"detail": "Idempotency-Key was already used for a "
                                             "completed request", "original_status": 201}),
        }),
    Operation(
        "GET", CHAT, "One chat", "chats", description=READ_STATE,
        responses={
            200: Response("The chat.", ChatView, example=CHAT_LIST_EXAMPLE[0]),
            400: "`chat_id` is not a positive integer, or `X-Min-Position` is not a "
                 "non-negative integer.",
            403: NOT_MEMBER,
            404: NOT_VISIBLE,
        }),
    Operation(
        "PUT", f"{CHAT}/read", "Mark the chat read up to a message", "chats",
        request=MarkRead, idempotent=False, event_position=True,
        description="Moves the caller's read marker forward to `message_id`, a message of "
                    "this chat; a message at or before the marker leaves it as it is and "
                    "writes nothing (`X-Event-Position: 0`), so no `Idempotency-Key` is "
                    "needed. Posting a message moves its author's marker to it as well. "
                    "Members receive a `chat.read` WebSocket event `{\"chat_id\", "
                    "\"user_id\", \"last_read_message_id\"}` (\"seen\" ticks, and the "
                    "caller's other devices).",
        responses={
            200: Response("The caller's read state in the chat.", ReadState,
                          example={"chat_id": 1, "last_read_message_id": 57,
                                   "unread_count": 0}),
            400: "Validation error, a `message_id` that is not a message of this chat (or "
                 "was deleted), or a `chat_id` that is not a positive integer.",
            403: NOT_MEMBER,
            404: NOT_VISIBLE,
        }),
    Operation(
        "PATCH", CHAT, "Rename a group chat", "chats", request=ChatUpdate,
        description="Only the title changes, only of a group chat, only by its creator. "
                    "Members see a `chat_renamed` system message. " + WRITE_TITLE,
        responses={
            200: Response("The renamed chat.", ChatOut, example=RENAMED_CHAT_EXAMPLE),
            400: "Validation error, a direct chat (it has no title of its own), a "
                 "`chat_id` that is not a positive integer, or a bad `Idempotency-Key`.",
            403: "The caller is not a member of the chat, or not its creator.",
            404: NOT_VISIBLE,
        }),
    Operation(
        "DELETE", CHAT, "Delete a chat", "chats",
        description="The creator of a group, or either member of a direct chat. Afterwards "
                    "the chat and its messages are gone from every read (404); its events "
                    "stay in the log.",
        responses={
            204: None,
            400: "`chat_id` is not a positive integer, or a bad `Idempotency-Key`.",
            403: "The caller is not a member of the chat, or not the creator of the group.",
            404: NOT_VISIBLE,
        }),
    Operation(
        "GET", f"{CHAT}/members", "The chat's members", "chats",
        description="Public profiles of the members with when they joined, oldest first.",
        responses={
            200: Response("The members.", list[MemberOut], example=MEMBERS_EXAMPLE),
            400: "`chat_id` is not a positive integer, or `X-Min-Position` is not a "
                 "non-negative integer.",
            403: NOT_MEMBER,
            404: NOT_VISIBLE,
        }),
    Operation(
        "POST", f"{CHAT}/members", "Add members to a group chat", "chats",
        request=MembersAdd, request_example={"user_ids": [5]},
        description="Only the group's creator. Users who already are members are skipped; "
                    "the new ones see the chat and its history from now on. The members see "
                    "a `members_added` system message (if anyone was added).",
        responses={
            200: Response("Every member of the chat after the change.", MembersOut,
                          example={"chat_id": 3, "member_ids": [1, 2, 3, 4, 5]}),
            400: "Validation error, unknown user ids, a direct chat, a `chat_id` that is not "
                 "a positive integer, or a bad `Idempotency-Key`.",
            403: "The caller is not a member of the chat, or not its creator.",
            404: NOT_VISIBLE,
        }),
    Operation(
        "DELETE", f"{CHAT}/members/{{user_id}}", "Remove a member, or leave", "chats",
        query=[Param("user_id", "path", ID, required=True,
                     description="The member to remove; the caller's own id to leave.")],
        description="The creator of a group removes any other member; any member removes "
                    "itself (leaves). The creator cannot leave (delete the chat instead); "
                    "members of a direct chat cannot be removed. The members see a "
                    "`member_removed` or `member_left` system message.",
        responses={
            204: None,
            400: "A direct chat, the creator leaving, ids that are not positive integers, "
                 "or a bad `Idempotency-Key`.",
            403: "The caller is not a member of the chat, or removes someone else without "
                 "being the creator.",
            404: "No such chat, it was deleted, or `user_id` is not a member.",
        }),
]
