"""The write bucket's arithmetic and the trusted-proxy rule, without servers."""

from __future__ import annotations

import pytest

from command_api.buckets import WriteBuckets
from shared.settings import ConfigurationError, Settings
from shared.web.proxies import TrustedProxies


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate_then_retry_after_rounded_up() -> None:
    clock = Clock()
    buckets = WriteBuckets(rate=2.0, burst=3, clock=clock)
    assert [buckets.take(1) for _ in range(3)] == [0, 0, 0]
    assert buckets.take(1) == 1  # half a second to the next token: rounded up to 1
    assert buckets.take(2) == 0, "another user has a bucket of its own"
    clock.now += 0.5
    assert buckets.take(1) == 0
    assert buckets.take(1) == 1


def test_retry_after_is_the_wait_for_one_token() -> None:
    clock = Clock()
    buckets = WriteBuckets(rate=0.25, burst=1, clock=clock)
    assert buckets.take(7) == 0
    assert buckets.take(7) == 4
    clock.now += 1.5
    assert buckets.take(7) == 3  # 2.5 s left, rounded up; refused writes take nothing
    clock.now += 2.5
    assert buckets.take(7) == 0


def test_a_person_typing_fast_is_never_slowed_by_the_defaults() -> None:
    settings, clock = Settings(), Clock()
    buckets = WriteBuckets(settings.write_rate_per_user, settings.write_burst_per_user, clock)
    for _ in range(600):  # 10 messages a second for a minute, far beyond typing
        assert buckets.take(1) == 0
        clock.now += 0.1
    for _ in range(30 * 60):  # the bench's share per user: 30/s for a minute
        assert buckets.take(2) == 0
        clock.now += 1 / 30
    refused = [buckets.take(3) for _ in range(1000)]  # a flood, all at once
    assert refused.count(0) == settings.write_burst_per_user


def test_full_buckets_are_forgotten() -> None:
    clock = Clock()
    buckets = WriteBuckets(rate=10.0, burst=10, clock=clock)
    for user in range(100):
        buckets.take(user)
    clock.now += 120
    buckets.take(1000)
    assert list(buckets.buckets) == [1000]


@pytest.mark.parametrize(("trusted", "peer", "forwarded", "client"), [
    ((), "127.0.0.1", ["10.0.0.1"], "127.0.0.1"),  # nobody trusted: the peer
    (("127.0.0.1",), "127.0.0.1", ["10.0.0.1"], "10.0.0.1"),
    (("127.0.0.1",), "127.0.0.1", [], "127.0.0.1"),
    (("127.0.0.1",), "192.0.2.7", ["10.0.0.1"], "192.0.2.7"),  # not a proxy of ours
    # the client's own entries are on the left: the right-most untrusted hop is the client
    (("172.30.0.0/24",), "172.30.0.10", ["6.6.6.6, 198.51.100.4"], "198.51.100.4"),
    (("172.30.0.0/24",), "172.30.0.10", ["6.6.6.6", "198.51.100.4, 172.30.0.11"],
     "198.51.100.4"),
    (("::1",), "::1", ["2001:db8::1"], "2001:db8::1"),
])
def test_client_host(trusted: tuple[str, ...], peer: str, forwarded: list[str],
                     client: str) -> None:
    assert TrustedProxies(trusted).client_host(peer, forwarded) == client


def test_uvicorn_gets_the_same_trust() -> None:
    assert TrustedProxies(()).uvicorn_args() == ["--no-proxy-headers"]
    assert TrustedProxies(("10.0.0.1", "10.1.0.0/16")).uvicorn_args() == [
        "--proxy-headers", "--forwarded-allow-ips", "10.0.0.1,10.1.0.0/16"]


@pytest.mark.parametrize("entry", ["proxy", "10.0.0.1/8", "*"])
def test_a_malformed_trusted_proxy_fails_at_start(entry: str) -> None:
    with pytest.raises(ConfigurationError, match="TRUSTED_PROXIES"):
        TrustedProxies(Settings.from_env({"TRUSTED_PROXIES": f"127.0.0.1,{entry}"})
                       .trusted_proxies)
