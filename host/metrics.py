"""Prometheus metrics of one host process, on prometheus-client with a registry of its own
(never the global one, so tests and several hosts in one process do not collide).

Requests are counted where they are answered (the authorization service, and the link server
for what it answers itself); active card sessions and locked cards are read from the database
at scrape time, because several host processes share them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE", "HostMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class HostMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._answered: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        self.requests = Counter(
            "atm_host_requests",
            "Link requests answered, by request MTI and response code (DE 39)",
            ["mti", "response_code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "atm_host_request_seconds",
            "Time to answer a link request, by request MTI",
            ["mti"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.lockouts = Counter(
            "atm_host_lockouts",
            "Cards locked by this process after too many wrong PINs",
            registry=self.registry,
        )
        self.active_sessions = Gauge(
            "atm_host_active_sessions",
            "Card sessions used within SESSION_TIMEOUT_SECONDS (all host processes)",
            registry=self.registry,
        )
        self.locked_cards = Gauge(
            "atm_host_locked_cards",
            "Cards locked out right now (all host processes)",
            registry=self.registry,
        )
        self.statement_jobs = Gauge(
            "atm_host_statement_jobs",
            "Statement jobs by status",
            ["status"],
            registry=self.registry,
        )

        self.link_connections_closed = Counter(
            "atm_host_link_connections_closed",
            "Link connections closed or refused by the server's limits, by reason "
            "(frame_timeout, first_frame_timeout, idle_timeout, unauthenticated_limit, "
            "connection_limit)",
            ["reason"],
            registry=self.registry,
        )
        self.unsolicited_messages = Counter(
            "atm_host_link_unsolicited_messages",
            "Authenticated messages a terminal must not send (response MTIs), by MTI",
            ["mti"],
            registry=self.registry,
        )

    def observe(self, mti: str, response_code: str, seconds: float) -> None:
        """Count one answered request; the link server may call this for what it answers
        without the service (network management, format errors, reversals)."""
        children = self._answered.get((mti, response_code))
        if children is None:
            # ``labels`` takes a lock and builds its key on every call: each pair's
            # children are looked up once (MTIs and response codes are a small set).
            children = self._answered[(mti, response_code)] = (
                self.requests.labels(mti=mti, response_code=response_code),
                self.latency.labels(mti=mti),
            )
        requests, latency = children
        requests.inc()
        latency.observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
