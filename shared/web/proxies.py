"""Which peers may name the client's address in `X-Forwarded-For`: `TRUSTED_PROXIES`.

Rate limits and the login throttle count per client address, so whoever can choose that
address can dodge them. Only a peer listed in `TRUSTED_PROXIES` (IPs or CIDRs; empty: none) is
believed. uvicorn gets the same list (`uvicorn_args`), and `client_host` applies it again
inside Parley: the two agree, so applying both changes nothing, and an ASGI server started
without proxy headers still gets the trusted proxy's client right.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from shared.settings import ConfigurationError

MAX_HOST_LENGTH = 64  # an address; anything longer from a proxy is cut, not stored whole


class TrustedProxies:
    """The configured proxies and the rule that picks the client's address behind them."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.entries = tuple(entries)
        try:  # strict, like uvicorn: "10.0.0.1/8" is a mistake, not a network
            self.networks = tuple(ipaddress.ip_network(entry) for entry in self.entries)
        except ValueError as exc:
            raise ConfigurationError(f"TRUSTED_PROXIES: {exc}") from None

    def trusts(self, host: str) -> bool:
        if not self.networks:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def client_host(self, peer: str, forwarded_for: Sequence[str]) -> str:
        """The peer, or when the peer is a trusted proxy, the right-most `X-Forwarded-For` hop
        that is not one (hops on the left were written by the client and prove nothing)."""
        if not self.trusts(peer):
            return peer
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
        hops = [hop for hop in hops if hop]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop[:MAX_HOST_LENGTH]
        return hops[0] if hops else peer  # every hop a proxy of ours: the first one asked

    def uvicorn_args(self) -> list[str]:
        """uvicorn's flags for the same trust (its default trusts X-Forwarded-For from
        loopback, which would let any local client pick its address)."""
        if not self.entries:
            return ["--no-proxy-headers"]
        return ["--proxy-headers", "--forwarded-allow-ips", ",".join(self.entries)]
