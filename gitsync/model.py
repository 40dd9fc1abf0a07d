"""Plain data shared by every layer: sync modes, change records, peer identity."""

from __future__ import annotations

import enum

__all__ = ["MODE_NAMES", "ChangeKind", "SyncMode"]


class SyncMode(enum.IntEnum):
    """SyncML Alert codes of the six sync modes (OMA DS 1.2 SyncProt)."""

    TWO_WAY = 200
    SLOW = 201
    ONE_WAY_FROM_CLIENT = 202
    REFRESH_FROM_CLIENT = 203
    ONE_WAY_FROM_SERVER = 204
    REFRESH_FROM_SERVER = 205

    @property
    def client_sends(self) -> bool:
        """Whether the client sends its changes in this mode."""
        return self not in (SyncMode.ONE_WAY_FROM_SERVER, SyncMode.REFRESH_FROM_SERVER)

    @property
    def server_sends(self) -> bool:
        """Whether the server sends its changes in this mode."""
        return self not in (SyncMode.ONE_WAY_FROM_CLIENT, SyncMode.REFRESH_FROM_CLIENT)

    @property
    def sends_all(self) -> bool:
        """Whether the sending side(s) send every note instead of changes."""
        return self in (SyncMode.SLOW, SyncMode.REFRESH_FROM_CLIENT, SyncMode.REFRESH_FROM_SERVER)

    @property
    def sync_type(self) -> int:
        """The DevInf SyncCap SyncType number of this mode."""
        return {200: 1, 201: 2, 202: 3, 203: 4, 204: 5, 205: 6}[int(self)]


#: sync-notes ``--mode`` names, kept for drop-in compatibility.
MODE_NAMES: dict[str, SyncMode] = {
    "sync": SyncMode.TWO_WAY,
    "full": SyncMode.SLOW,
    "push": SyncMode.ONE_WAY_FROM_CLIENT,
    "push-over": SyncMode.REFRESH_FROM_CLIENT,
    "pull": SyncMode.ONE_WAY_FROM_SERVER,
    "pull-over": SyncMode.REFRESH_FROM_SERVER,
}


class ChangeKind(enum.Enum):
    """What happened to a note."""

    ADD = "add"
    MODIFY = "modify"
    DELETE = "delete"

