"""The reference client as people use it: two users in two browsers chat live, with replies,
reactions, edits, read ticks, typing, presence and a voice message from a (generated)
microphone; a reconnect resumes from the cursor; a long chat pages back. Every wait is on the
page's DOM, with a deadline."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from playwright.sync_api import Page, WebSocket, expect

from parley.stack import Stack
from shared.jwt.tokens import LEEWAY_SECONDS
from tests.browser.conftest import Pages
from tests.e2e.client import Api, unique_email
from tests.e2e.servers import api_process

PASSWORD = "securePassword123"


def sign_up(page: Page, name: str) -> int:
    page.fill("#auth-form [name=email]", unique_email(name))
    page.fill("#auth-form [name=password]", PASSWORD)
    page.fill("#auth-form [name=name]", name)
    page.click("#auth-form [name=signup]")
    expect(page.locator("#status")).to_have_attribute("data-state", "live")
    return int(page.get_attribute("#me", "data-id") or 0)


def message(page: Page, text: str) -> str:
    return f"#messages > li:has(.text:text-is('{text}'))"


def send(page: Page, text: str) -> None:
    page.fill("#composer [name=text]", text)
    page.press("#composer [name=text]", "Enter")
    expect(page.locator(message(page, text))).to_have_count(1)


def test_two_users_chat_live(stack: Stack, page_origin: str, pages: Pages) -> None:
    url = f"{page_origin}/app/?api={quote(stack.base_url)}"
    ann, bob = pages.open("ann", url), pages.open("bob", url)
    bob_sockets: list[WebSocket] = []
    bob.on("websocket", lambda socket: bob_sockets.append(socket))
    sign_up(ann, "Ann")
    bob_id = sign_up(bob, "Bob")

    # Ann starts a direct chat; it appears in Bob's list live, titled with her name
    ann.fill("#new-chat [name=members]", str(bob_id))
    ann.click("#new-chat button")
    expect(ann.locator("#chat-title")).to_have_text("Bob")
    expect(bob.locator("#chats li .title")).to_have_text(["Ann"])
    expect(ann.locator(f"#members li[data-user-id='{bob_id}']")).to_have_attribute(
        "data-online", "true")

    # a message Bob has not read: his badge and preview; once he reads it, Ann's ticks
    send(ann, "hello")
    expect(ann.locator(f"{message(ann, 'hello')} .ticks")).to_have_attribute("data-seen", "false")
    expect(bob.locator("#chats li .badge")).to_have_text("1")
    expect(bob.locator("#chats li .last")).to_have_text("hello")
    bob.click("#chats li")
    expect(bob.locator(message(bob, "hello"))).to_have_count(1)
    expect(bob.locator("#chats li .badge")).to_have_text("")
    expect(ann.locator(f"{message(ann, 'hello')} .ticks")).to_have_attribute("data-seen", "true")

    # Bob types (Ann sees it), then replies to her message
    bob.locator("#composer [name=text]").press_sequentially("hi Ann")
    expect(ann.locator("#typing")).to_have_text("Bob is typing…")
    bob.click(f"{message(bob, 'hello')} .reply")
    expect(bob.locator("#composing")).to_be_visible()
    bob.press("#composer [name=text]", "Enter")
    reply = ann.locator(message(ann, "hi Ann"))
    expect(reply.locator(".quote")).to_have_text("Ann: hello")
    expect(ann.locator("#typing")).to_have_text("")

    # Ann reacts to the reply and edits her first message: Bob sees both live
    ann.click(f"{message(ann, 'hi Ann')} .react[data-emoji='👍']")
    expect(bob.locator(f"{message(bob, 'hi Ann')} .reactions button")).to_have_text("👍 1")
    ann.click(f"{message(ann, 'hello')} .edit")
    ann.fill("#composer [name=text]", "hello, edited")
    ann.press("#composer [name=text]", "Enter")
    expect(bob.locator(f"{message(bob, 'hello, edited')} .edited")).to_have_count(1)
    expect(bob.locator(message(bob, "hello"))).to_have_count(0)

    # a voice message from Ann's microphone: Bob gets it live and it plays
    ann.click("#record")
    # a function, not an expression: the page's policy forbids eval
    ann.wait_for_function("() => Number(document.querySelector('#record').dataset.elapsed) >= 1500")
    ann.click("#record")
    expect(ann.locator("#record")).to_have_text("🎤 Record")
    voice = bob.locator("#messages > li[data-type=voice]")
    expect(voice).to_have_count(1)
    voice.locator(".play").click()
    bob.wait_for_function("""() => {
        const audio = document.querySelector('#messages li[data-type=voice] audio');
        return audio.readyState >= 1 && audio.duration > 0;
    }""")
    token = ann.evaluate("localStorage.getItem('access_token')")
    chat_id = int(ann.get_attribute("#chats li", "data-id") or 0)
    api = Api(stack.base_url)
    (sent,) = [m for m in api.get("/messages", token, {"chat_id": chat_id}).json()
               if m["type"] == "voice"]
    assert sent["payload"]["duration_ms"] >= 1000
    assert len(set(sent["payload"]["waveform"])) > 1, sent["payload"]

    # Bob's browser goes offline; what Ann posts meanwhile arrives once when he is back
    bob_presence = ann.locator(f"#members li[data-user-id='{bob_id}']")
    bob.context.set_offline(True)
    expect(bob.locator("#status")).to_have_attribute("data-state", "offline")
    expect(bob_presence).to_have_attribute("data-online", "false")
    away = api.post("/messages", {"chat_id": chat_id, "type": "text",
                                  "content": "while you were away"}, token=token)
    assert away.status_code == 201, away.text
    bob.context.set_offline(False)
    expect(bob.locator("#status")).to_have_attribute("data-state", "live")
    expect(bob_presence).to_have_attribute("data-online", "true")
    send(ann, "after the reconnect")
    expect(bob.locator(message(bob, "after the reconnect"))).to_have_count(1)
    # frames come in order: a copy of the missed message would have come before this one
    expect(bob.locator(message(bob, "while you were away"))).to_have_count(1)
    resumed = parse_qs(urlsplit(bob_sockets[-1].url).query)
    assert "cursor" in resumed, "the reconnect did not resume from a cursor"
    assert pages.console == []


def test_a_long_chat_pages_back_on_the_page_parley_serves(stack: Stack, pages: Pages) -> None:
    api = Api(stack.base_url)
    email = unique_email("reader")
    reader = api.register(email=email, password=PASSWORD, display_name="Reader")
    token = reader["tokens"]["access_token"]
    other = api.register(display_name="Writer")
    chat = api.post("/chats", {"is_group": False, "member_ids": [other["user"]["id"]]},
                    token=token).json()
    for n in range(60):
        posted = api.post("/messages", {"chat_id": chat["id"], "type": "text",
                                        "content": f"message {n}"}, token=token)
        assert posted.status_code == 201, posted.text

    page = pages.open("reader", f"{stack.base_url}/app/")  # same origin: Parley's own policy
    page.fill("#auth-form [name=email]", email)
    page.fill("#auth-form [name=password]", PASSWORD)
    page.click("#auth-form [name=signin]")
    expect(page.locator("#status")).to_have_attribute("data-state", "live")
    # an access token the server refuses (as an expired one): both requests of opening the
    # chat get 401, one refresh serves them (two would replay the refresh token and end the
    # session), and they are sent again
    first_refresh_token = page.evaluate("localStorage.getItem('refresh_token')")
    page.evaluate("localStorage.setItem('access_token', 'expired')")
    page.click("#chats li")
    expect(page.locator("#messages > li")).to_have_count(50)
    expect(page.locator("#messages > li").last).to_contain_text("message 59")
    page.click("#older")
    expect(page.locator("#messages > li")).to_have_count(61)  # and the chat's system message
    expect(page.locator("#older")).to_be_hidden()
    expect(page.locator("#messages > li.system")).to_have_count(1)
    assert page.evaluate("localStorage.getItem('refresh_token')") != first_refresh_token
    expect(page.locator("#app")).to_be_visible()  # still signed in
    # signing out ends the session on the server: its refresh token is refused afterwards
    refresh_token = page.evaluate("localStorage.getItem('refresh_token')")
    page.click("#signout")
    expect(page.locator("#signin")).to_be_visible()
    expect(page.locator("#chats li")).to_have_count(0)
    assert page.evaluate("localStorage.getItem('refresh_token')") is None
    assert api.post("/auth/refresh", {"refresh_token": refresh_token}, key=None).status_code == 401
    assert [line for line in pages.console if "401" not in line] == []


ISSUED_AT = """limit => {
    const claims = localStorage.getItem("access_token").split(".")[1];
    return JSON.parse(atob(claims.replace(/-/g, "+").replace(/_/g, "/"))).iat > limit;
}"""


def test_the_socket_outlives_its_access_tokens(stack: Stack, pages: Pages,
                                               tmp_path: Path) -> None:
    # API workers issuing 2-second access tokens: the page refreshes at 80% of each one's life
    # and hands the fresh token to its socket, which the server would otherwise close (4401)
    # once the first token is LEEWAY_SECONDS past its expiry
    env = {**stack.env, "ACCESS_TOKEN_TTL": "2"}
    with api_process(stack, tmp_path / "short-tokens", env) as url:
        page = pages.open("short", f"{url}/app/")
        sockets: list[WebSocket] = []
        page.on("websocket", lambda socket: sockets.append(socket))
        sign_up(page, "Short")
        first = page.evaluate("localStorage.getItem('access_token')").split(".")[1]
        expires = json.loads(base64.urlsafe_b64decode(first + "=" * (-len(first) % 4)))["exp"]
        # refreshed until a token is issued a second after the server would have closed
        page.wait_for_function(ISSUED_AT, arg=expires + LEEWAY_SECONDS + 1)
        expect(page.locator("#status")).to_have_attribute("data-state", "live")
        assert len(sockets) == 1 and not sockets[0].is_closed(), f"{len(sockets)} sockets"
