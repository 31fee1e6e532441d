"""The `/chats` operations of the table: chats and their members (command and query side)."""

from __future__ import annotations

from shared.openapi.types import API, ID, Operation, Param, Response
from shared.schemas import ChatCreate, ChatOut, ChatUpdate, MemberOut, MembersAdd, MembersOut

# Mirrors the seed's examples (section 3), with the fields Parley adds.
GROUP_CHAT_EXAMPLE = {"id": 3, "title": "New Project Discussion", "is_group": True,
                      "created_at": "2024-03-26T12:00:00Z", "creator_id": 1,
                      "last_activity_at": None}
DIRECT_CHAT_EXAMPLE = {"id": 2, "title": "John Doe", "is_group": False,
                       "created_at": "2024-03-26T11:00:00Z", "creator_id": 2,
                       "last_activity_at": None}
CHAT_LIST_EXAMPLE = [
    {"id": 1, "title": "General Chat", "is_group": True, "created_at": "2024-03-26T10:00:00Z",
     "creator_id": 1, "last_activity_at": "2024-03-26T12:05:00Z"},
    {**DIRECT_CHAT_EXAMPLE, "last_activity_at": "2024-03-26T11:30:00Z"},
]
RENAMED_CHAT_EXAMPLE = {"id": 1, "title": "Updated Chat Title", "is_group": True,
                        "created_at": "2024-03-26T10:00:00Z", "creator_id": 1,
                        "last_activity_at": None}
MEMBERS_EXAMPLE = [
    {"id": 1, "display_name": "John Doe", "avatar_url": "https://example.com/avatar.jpg",
     "joined_at": "2024-03-26T12:00:00Z"},
    {"id": 2, "display_name": "Jane Smith", "avatar_url": None,
     "joined_at": "2024-03-26T12:00:00Z"},
]

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
                    "Deleted chats are gone.",
        responses={
            200: Response("The caller's chats.", list[ChatOut], example=CHAT_LIST_EXAMPLE),
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
        "GET", CHAT, "One chat", "chats",
        responses={
            200: Response("The chat.", ChatOut, example=CHAT_LIST_EXAMPLE[0]),
            400: "`chat_id` is not a positive integer, or `X-Min-Position` is not a "
                 "non-negative integer.",
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
