"""How a SyncML server behaves: the options ``gitsync-notes serve`` and the WSGI app set."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gitsync.protocol.auth import Users
from gitsync.protocol.constants import AUTH_BASIC
from gitsync.protocol.session import DEFAULT_MAX_OBJ_SIZE
from gitsync.sync.conflict import Policy
from gitsync.sync.devinf import DEFAULT_MAX_MSG_SIZE
from gitsync.sync.report import SyncReport
from gitsync.transport.proxy import TrustedProxies

__all__ = ["STORE_ALIASES", "ServerOptions"]

#: datastore names clients use for notes (compared without ./ and case)
STORE_ALIASES = frozenset({"notes", "note", "memo", "memos", "pnote", "snote", "notebook"})



@dataclass(frozen=True, slots=True, kw_only=True)
class ServerOptions:
    """How the server behaves."""

    users: Users | None = None
    auth_type: str = AUTH_BASIC
    policy: Policy = Policy.MERGE
    filename_sync: bool = True
    session_timeout: float = 900.0  # a session idle this long is dropped
    stranger_timeout: float = 120.0  # ... one not logged in yet (see app/admission.py)
    max_sessions_per_address: int = 32  # sessions not logged in yet, per client address
    max_strangers: int = 2048  # ... from all addresses (about 14 KiB each in memory)
    max_msg_size: int = DEFAULT_MAX_MSG_SIZE
    max_obj_size: int | None = DEFAULT_MAX_OBJ_SIZE  # the largest note we take (MaxObjSize)
    max_body: int = 16 * 1024 * 1024
    store_uris: frozenset[str] = STORE_ALIASES
    server_id: str = "gitsync-notes"
    on_report: Callable[[SyncReport], None] | None = None
    trusted_proxies: TrustedProxies = ()  # X-Forwarded-For/-Proto honoured from these only
    lock_wait: float = 10.0  # seconds to wait for the repository lock before answering 417
