"""Device (ATM) configuration, loaded once at the edge and passed in."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

from device.errors import DeviceConfigError
from protocol.keyblock import DEFAULT_KEY_BLOCK, KeyBlockFormat
from protocol.security import KeyScheme
from protocol.tls import TlsError, client_context

__all__ = ["LOCAL_HOSTS", "TEST_CARD_RANGES", "CassetteConfig", "DeviceConfig"]

# The production-safety guard (docs/devices.md): by default the ATM reads only cards whose PAN
# starts with one of these prefixes (the seeded test cards) and talks only to these hosts.
TEST_CARD_RANGES = ("400000",)
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class CassetteConfig:
    denomination_cents: int
    count: int

    def __post_init__(self) -> None:
        if self.denomination_cents <= 0 or self.count < 0:
            raise DeviceConfigError(f"bad cassette {self}")


@dataclass(frozen=True)
class DeviceConfig:
    terminal_id: str = "ATM00001"
    acceptor_id: str = "ATMSIM000000001"
    host: str = "127.0.0.1"
    port: int = 8583
    currency: str = "840"
    state_dir: Path = Path("var/device")
    response_timeout: float = 30.0
    key_timeout: float = 30.0
    # When a customer's wait (key_timeout) runs out, "Do you need more time?" counts down this
    # many seconds before the session ends (Yes goes back where the customer was); 0: no
    # warning, the session ends at once.
    more_time_seconds: float = 30.0
    card_take_timeout: float = 30.0
    cash_take_timeout: float = 30.0
    reconnect_delay: float = 5.0
    # Idle-time echo test (0800/301): a dead link is noticed without a customer.
    idle_echo_interval: float = 60.0
    supervisor_timeout: float = 300.0
    fast_cash_cents: tuple[int, ...] = (2000, 4000, 6000, 10000, 20000)
    max_withdrawal_cents: int = 100_000
    max_transfer_cents: int = 1_000_000
    max_check_deposit_cents: int = 1_000_000
    # A cassette at or below ``near_empty_notes`` is reported low (journal, supervisor report);
    # notes at or below ``empty_notes`` are never used (the picker needs a reserve).
    near_empty_notes: int = 50
    empty_notes: int = 0
    # The host answers 75 (PIN tries exceeded) without a capture instruction; some banks
    # still want the card kept. Default: return it (the host's answer decides).
    retain_card_on_pin_tries_exceeded: bool = False
    cassettes: tuple[CassetteConfig, ...] = field(
        default=(CassetteConfig(2000, 500), CassetteConfig(5000, 200))
    )
    # Development keys (hex). The terminal master key (TMK) is loaded into the PIN pad and
    # configured on the host; working keys arrive under it at sign-on.
    # Out of repr(): a logged or printed configuration never shows the key.
    terminal_master_key: str = field(default="00112233445566778899AABBCCDDEEFF", repr=False)
    # The terminal's key scheme (docs/protocol.md 7.1): T = TDES keys, PIN block format 0,
    # retail MAC; A = AES-128 keys, PIN block format 4, AES-CMAC. Must match the host's
    # TERMINAL_KEY_SCHEMES entry for this terminal. "T"/"A" strings are accepted.
    key_scheme: KeyScheme = KeyScheme.TDES
    # Where the in-process simulated devices (``sim`` backends) keep their physical state
    # (notes, card, paper) so that it survives a crash of the ATM process, as real devices'
    # does (docs/devices.md). None: they forget it when the process ends.
    sim_state_dir: Path | None = None
    # A card found inside the reader at start-up (left by a crash) belongs to a customer who
    # has gone: "retain" captures it (default: nobody else can take it), "eject" offers it at
    # the gate for card_take_timeout and captures it if nobody takes it (docs/state-diagram.md).
    card_left_at_restart: str = "retain"
    # The layout of the working keys at sign-on (protocol.keyblock): legacy or tr31 (TR-31 key
    # blocks). Must match the host's TERMINAL_KEY_BLOCKS entry; another layout is refused.
    key_block: KeyBlockFormat = DEFAULT_KEY_BLOCK
    # TLS on the host link (protocol.tls): the CA the host's certificate must chain to (a path
    # or PEM text); unset, the link is plaintext. ``tls_cert``/``tls_key``: this terminal's
    # client certificate for mutual TLS (its common name is the terminal ID).
    # ``tls_server_name``: the name the host's certificate must carry (default ``host``).
    tls_ca: str | None = field(default=None, repr=False)
    tls_cert: str | None = field(default=None, repr=False)
    tls_key: str | None = field(default=None, repr=False)
    tls_server_name: str | None = None
    # Production-safety guard: a card whose PAN starts with none of ``card_ranges`` is refused
    # at the reader (nothing is sent); ``host`` must be one of ``allowed_hosts``. Widening
    # either is deliberate configuration, warned about at start-up (``widened``).
    card_ranges: tuple[str, ...] = TEST_CARD_RANGES
    allowed_hosts: tuple[str, ...] = LOCAL_HOSTS

    def __post_init__(self) -> None:
        if len(self.terminal_id) != 8:
            raise DeviceConfigError(f"terminal ID must be 8 characters, got {self.terminal_id!r}")
        if len(self.acceptor_id) != 15:
            raise DeviceConfigError(f"acceptor ID must be 15 characters, got {self.acceptor_id!r}")
        if not 1 <= len(self.fast_cash_cents) <= 5:
            raise DeviceConfigError("between 1 and 5 fast-cash amounts")
        for name in (
            "response_timeout",
            "key_timeout",
            "card_take_timeout",
            "cash_take_timeout",
            "idle_echo_interval",
            "supervisor_timeout",
        ):
            if getattr(self, name) <= 0:
                raise DeviceConfigError(f"{name} must be positive")
        if self.card_left_at_restart not in ("retain", "eject"):
            raise DeviceConfigError(
                f"card_left_at_restart must be retain or eject, got {self.card_left_at_restart!r}"
            )
        if self.more_time_seconds < 0:
            raise DeviceConfigError("more_time_seconds must be 0 (no warning) or more")
        if not 0 <= self.empty_notes <= self.near_empty_notes:
            raise DeviceConfigError("need 0 <= empty_notes <= near_empty_notes")
        scheme = str(self.key_scheme).strip().upper()
        if scheme not in {s.value for s in KeyScheme}:
            raise DeviceConfigError(
                f"key scheme must be T (TDES) or A (AES), got {self.key_scheme!r}"
            )
        object.__setattr__(self, "key_scheme", KeyScheme(scheme))
        try:
            key = bytes.fromhex(self.terminal_master_key)
        except ValueError:
            key = b""
        if len(key) != 16:
            raise DeviceConfigError("terminal_master_key must be 32 hex digits (16 bytes)")
        bad = [r for r in self.card_ranges if not (r.isdigit() and 1 <= len(r) <= 19)]
        if bad or not self.card_ranges:
            raise DeviceConfigError(f"card ranges are PAN prefixes (digits), got {bad or '[]'}")
        if self.host not in self.allowed_hosts:
            raise DeviceConfigError(
                f"host {self.host!r} is not on the allow-list ({', '.join(self.allowed_hosts)}); "
                "allow it deliberately (atm device --allow-host NAME)"
            )

    def accepts_card(self, pan: str) -> bool:
        """The guard at the card reader: the PAN is in a configured (test) range."""
        return pan.startswith(self.card_ranges)

    @property
    def widened(self) -> list[str]:
        """What the guard allows beyond its defaults, one line each (start-up warnings)."""
        lines = []
        extra_ranges = [r for r in self.card_ranges if r not in TEST_CARD_RANGES]
        if extra_ranges:
            lines.append(f"card ranges widened beyond the test cards: {', '.join(extra_ranges)}")
        extra_hosts = [h for h in self.allowed_hosts if h not in LOCAL_HOSTS]
        if extra_hosts:
            lines.append(f"hosts allowed beyond localhost: {', '.join(extra_hosts)}")
        return lines

    def tls_context(self) -> ssl.SSLContext | None:
        """The client TLS context, or None for a plaintext link (``DeviceConfigError`` when
        a certificate, key or CA does not load)."""
        if not self.tls_ca:
            if self.tls_cert or self.tls_key:
                raise DeviceConfigError("a terminal certificate needs the host CA (tls_ca)")
            return None
        try:
            return client_context(self.tls_ca, self.tls_cert, self.tls_key)
        except TlsError as exc:
            raise DeviceConfigError(str(exc)) from exc

    @property
    def journal_path(self) -> Path:
        return self.state_dir / f"journal-{self.terminal_id}.log"

    @property
    def counters_path(self) -> Path:
        return self.state_dir / f"cash-{self.terminal_id}.json"

    @property
    def dispenser_counts_path(self) -> Path:
        """Where a dispenser driver that counts notes itself (LCDM-2000) keeps its counts."""
        return self.state_dir / f"dispenser-counts-{self.terminal_id}.json"

    def sim_state_path(self, kind: str) -> Path | None:
        """The physical state file of simulated device ``kind`` (None: not kept)."""
        if self.sim_state_dir is None:
            return None
        return self.sim_state_dir / f"{kind}-{self.terminal_id}.json"

    @property
    def master_key(self) -> bytes:
        return bytes.fromhex(self.terminal_master_key)

    @property
    def saf_path(self) -> Path:
        return self.state_dir / f"saf-{self.terminal_id}.jsonl"
