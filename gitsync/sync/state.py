"""Per-peer sync state as small text blobs (stored by the Git store under refs/gitsync/).

Three blobs: ``state`` (``key=value`` lines: anchors, device, content type...), ``map``
(tab-separated id columns and the note path) and ``devinf`` (the peer's DevInf as JSON).
Text keeps ``git show refs/gitsync/<peer>:state`` readable.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping

from gitsync.protocol.messages import CTInfo, DataStore, DevInf

__all__ = ["devinf_from_json", "devinf_to_json", "dump_kv", "dump_rows", "parse_kv", "parse_rows"]


def parse_kv(data: bytes | None) -> dict[str, str]:
    """``key=value`` lines → dict (blank and malformed lines ignored)."""
    out: dict[str, str] = {}
    for line in (data or b"").decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            out[key.strip()] = value
    return out


def dump_kv(values: Mapping[str, str | None]) -> bytes:
    """dict → sorted ``key=value`` lines (``None`` values dropped)."""
    lines = [f"{k}={v}" for k, v in sorted(values.items()) if v is not None]
    return ("\n".join(lines) + "\n").encode()


def parse_rows(data: bytes | None, width: int) -> list[tuple[str, ...]]:
    """Tab-separated rows of exactly ``width`` columns (the last column may contain tabs)."""
    rows: list[tuple[str, ...]] = []
    for line in (data or b"").decode("utf-8", "surrogateescape").split("\n"):
        if not line:
            continue
        parts = line.split("\t", width - 1)
        if len(parts) == width:
            rows.append(tuple(parts))
    return rows


def dump_rows(rows: Iterable[Iterable[str]]) -> bytes:
    """Rows → sorted tab-separated lines."""
    lines = sorted("\t".join(row) for row in rows)
    return ("".join(line + "\n" for line in lines)).encode("utf-8", "surrogateescape")


def devinf_to_json(devinf: DevInf) -> bytes:
    """A DevInf as JSON (for caching the peer's device information)."""
    return json.dumps(dataclasses.asdict(devinf), sort_keys=True, indent=1).encode()


def devinf_from_json(data: bytes | None) -> DevInf | None:
    """The inverse of :func:`devinf_to_json`; ``None`` for missing or unreadable data."""
    if not data:
        return None
    try:
        raw = json.loads(data)
        stores = tuple(
            DataStore(
                source_ref=ds["source_ref"],
                display_name=ds.get("display_name"),
                max_guid_size=ds.get("max_guid_size"),
                sync_types=tuple(ds.get("sync_types", ())),
                **{
                    key: tuple(CTInfo(ct_type=c["ct_type"], ver_ct=c.get("ver_ct")) for c in ds.get(key, ()))
                    for key in ("rx_pref", "rx", "tx_pref", "tx", "ctcaps")
                },
            )
            for ds in raw.get("datastores", ())
        )
        fields = {k: v for k, v in raw.items() if k != "datastores" and k in DevInf.__dataclass_fields__}
        return DevInf(**fields, datastores=stores)
    except (ValueError, KeyError, TypeError, AttributeError):  # AttributeError: JSON but not an object
        return None
