"""The per-process bounds of the gateway: sockets per user and resumes at once."""

from __future__ import annotations

import asyncio

import pytest

from gateway.limits import Limits, ResumesBusyError


def test_sockets_are_counted_per_user_up_to_the_limit() -> None:
    limits = Limits(sockets_per_user=2, concurrent_resumes=1, resume_wait=0.1)
    assert limits.open_socket(1) and limits.open_socket(1)
    assert not limits.open_socket(1)  # refused, and not counted
    assert limits.open_socket(2)  # another user is not affected
    limits.close_socket(1)
    assert limits.open_socket(1)
    assert not limits.open_socket(1)
    for _ in range(2):
        limits.close_socket(1)
    assert limits.sockets(1) == 0


def test_a_resume_beyond_the_bound_waits_then_gives_up() -> None:
    async def scenario() -> None:
        limits = Limits(sockets_per_user=2, concurrent_resumes=1, resume_wait=0.2)
        async with limits.resume_slot():
            with pytest.raises(ResumesBusyError):
                async with limits.resume_slot():
                    raise AssertionError("two resumes at once")
        async with limits.resume_slot():  # released on exit, also after the refusal
            pass

    asyncio.run(scenario())


def test_a_waiting_resume_gets_the_slot_once_it_is_free() -> None:
    async def scenario() -> None:
        limits = Limits(sockets_per_user=2, concurrent_resumes=1, resume_wait=30)
        order: list[str] = []
        release = asyncio.Event()

        async def first() -> None:
            async with limits.resume_slot():
                order.append("first")
                await release.wait()
            order.append("first done")

        async def second() -> None:
            async with limits.resume_slot():
                order.append("second")

        one = asyncio.create_task(first())
        await asyncio.sleep(0)  # `first` holds the slot
        two = asyncio.create_task(second())
        await asyncio.sleep(0)
        assert order == ["first"]
        release.set()
        await asyncio.gather(one, two)
        assert order == ["first", "first done", "second"]

    asyncio.run(scenario())
