"""The one basic-credential decoder: the checker and the per-user router read the same name."""

from __future__ import annotations

import base64

import pytest

from gitsync.app.multiuser import claimed_user
from gitsync.protocol.auth import basic_cred, check_cred, parse_basic
from gitsync.protocol.messages import Cred, SyncHdr


def _raw(data: bytes) -> Cred:
    return Cred(type="syncml:auth-basic", data=base64.b64encode(data).decode("ascii"))


@pytest.mark.parametrize(
    ("cred", "expected"),
    [
        (basic_cred("alice", "pw"), ("alice", "pw")),
        (basic_cred("alice", "a:b:c"), ("alice", "a:b:c")),  # only the first colon splits
        (basic_cred("", "pw"), ("", "pw")),
        (_raw(b"no-colon"), None),
        (_raw(b"\xff\xfe:x"), None),  # not UTF-8
        (Cred(type="syncml:auth-basic", data="!!!not base64"), None),
    ],
)
def test_parse_basic(cred: Cred, expected: tuple[str, str] | None) -> None:
    assert parse_basic(cred) == expected


@pytest.mark.parametrize("cred", [basic_cred("alice", "pw"), _raw(b"no-colon"), _raw(b"\xff:x")])
def test_router_claims_the_name_the_checker_checks(cred: Cred) -> None:
    hdr = SyncHdr(target="srv", source="dev", cred=cred)
    parsed = parse_basic(cred)
    assert claimed_user(hdr) == (parsed[0] if parsed else None)
    users = {"alice": "pw"}
    assert check_cred(cred, users, nonce=b"", username_hint=None) == (
        "alice" if parsed == ("alice", "pw") else None
    )
