"""SyncML constants: status codes, alert codes, content types, URIs."""

from __future__ import annotations

import enum

__all__ = [
    "AUTH_BASIC",
    "AUTH_MD5",
    "DEVINF_TYPE_WBXML",
    "DEVINF_TYPE_XML",
    "SYNC_ALERTS",
    "Alert",
    "St",
    "devinf_uri",
    "ver_proto",
]

AUTH_BASIC = "syncml:auth-basic"
AUTH_MD5 = "syncml:auth-md5"
DEVINF_TYPE_XML = "application/vnd.syncml-devinf+xml"
DEVINF_TYPE_WBXML = "application/vnd.syncml-devinf+wbxml"


def devinf_uri(ver_dtd: str) -> str:
    """The DevInf LocURI for a SyncML version (``./devinf12`` for 1.2)."""
    return {"1.0": "./devinf10", "1.1": "./devinf11"}.get(ver_dtd, "./devinf12")


def ver_proto(ver_dtd: str) -> str:
    """The VerProto string matching a VerDTD."""
    return f"SyncML/{ver_dtd}"


class St(enum.IntEnum):
    """Status codes we produce or act on (OMA DS RepPro §10)."""

    OK = 200
    ITEM_ADDED = 201
    CONFLICT_MERGED = 207
    CONFLICT_CLIENT_WON = 208
    CONFLICT_DUPLICATE = 209
    DELETE_NOT_FOUND = 211
    AUTH_ACCEPTED = 212
    CHUNK_ACCEPTED = 213
    NOT_EXECUTED = 215
    INVALID_CREDENTIALS = 401
    FORBIDDEN = 403
    NOT_FOUND = 404
    NOT_ALLOWED = 405
    NOT_SUPPORTED = 406
    MISSING_CREDENTIALS = 407
    CONFLICT = 409
    INCOMPLETE = 412
    TOO_LARGE = 413
    UNSUPPORTED_TYPE = 415
    RETRY_LATER = 417
    ALREADY_EXISTS = 418
    CONFLICT_SERVER_WON = 419
    DEVICE_FULL = 420
    SIZE_MISMATCH = 424
    COMMAND_FAILED = 500
    VERSION_NOT_SUPPORTED = 505
    PROCESSING_ERROR = 506
    REFRESH_REQUIRED = 508
    DATASTORE_FAILURE = 510
    SYNC_FAILED = 512
    PROTOCOL_NOT_SUPPORTED = 513


class Alert(enum.IntEnum):
    """Alert codes other than the sync modes (those are :class:`gitsync.model.SyncMode`)."""

    NEXT_MESSAGE = 222
    NO_END_OF_DATA = 223
    SUSPEND = 224
    RESUME = 225


#: Alert codes that start a sync (200-205), plus resume (225, treated as two-way).
SYNC_ALERTS = frozenset({200, 201, 202, 203, 204, 205, 225})
