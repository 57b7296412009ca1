"""Device (ATM) configuration, loaded once at the edge and passed in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from device.errors import DeviceConfigError
from protocol.security import KeyScheme

__all__ = ["CassetteConfig", "DeviceConfig"]


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
    terminal_master_key: str = "00112233445566778899AABBCCDDEEFF"
    # The terminal's key scheme (docs/protocol.md 7.1): T = TDES keys, PIN block format 0,
    # retail MAC; A = AES-128 keys, PIN block format 4, AES-CMAC. Must match the host's
    # TERMINAL_KEY_SCHEMES entry for this terminal. "T"/"A" strings are accepted.
    key_scheme: KeyScheme = KeyScheme.TDES

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

    @property
    def journal_path(self) -> Path:
        return self.state_dir / f"journal-{self.terminal_id}.log"

    @property
    def counters_path(self) -> Path:
        return self.state_dir / f"cash-{self.terminal_id}.json"

    @property
    def master_key(self) -> bytes:
        return bytes.fromhex(self.terminal_master_key)

    @property
    def saf_path(self) -> Path:
        return self.state_dir / f"saf-{self.terminal_id}.jsonl"
