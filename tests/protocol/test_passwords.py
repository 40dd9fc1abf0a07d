"""Hashed passwords in the users file: SHA-crypt against its specification's vectors and against
real ``mkpasswd`` output, bcrypt against real ``htpasswd -B`` output (checked in, and made afresh
when the tools are installed), and what ``check_cred`` accepts with each kind of entry."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from gitsync.protocol.auth import basic_cred, check_cred, md5_cred
from gitsync.protocol.passwords import PasswordEntry, hash_password, md5_secret, parse_entry, sha_crypt

PW = "Corr3ct horse:battery"  # a space and a colon: both must survive
PW2 = "pässwörd"

# Drepper, "Unix crypt using SHA-256 and SHA-512", test vectors (the rounds=10 one is clamped to 1000)
SPEC = [
    ("$5$rounds=10000$saltstringsaltstring", "Hello world!",
     "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA"),
    ("$5$rounds=5000$toolongsaltstring", "This is just a test",
     "$5$rounds=5000$toolongsaltstrin$Un/5jzAHMgOGZ5.mWJpuVolil07guHPvOW8mGRcvxa5"),
    ("$6$saltstring", "Hello world!",
     "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"),
    ("$6$rounds=10000$saltstringsaltstring", "Hello world!",
     "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H"
     "9qs/y3RnOaw5v."),
    ("$6$rounds=5000$toolongsaltstring", "This is just a test",
     "$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6J"
     "Mxxl8audkUEm0"),
    ("$6$rounds=1400$anotherlongsaltstring",
     "a very much longer text to encrypt.  This one even stretches over morethan one line.",
     "$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7Um"
     "JEiDwGqd8p4ur1"),
    ("$6$rounds=10$roundstoolow", "the minimum number is still observed",
     "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbp"
     "BYYBaHHrsX."),
]

# made on this machine with apache2-utils 2.4 and whois 5.5 (mkpasswd), password PW or PW2
FIXTURES = [
    ("$2y$05$QvX37Yf3TrJuNDqKVIKTxezoFk16tCqTbmrcO4dM4NlR4NBq4cZy2", PW),  # htpasswd -nbB -C 5
    ("$2y$10$XQxJ/wbzZNuom1p4Zv9GI.cO9JTNCWZ1VQCMIdDwkAe3Rcfk4OhzC", PW),  # htpasswd -nbB -C 10
    ("$2y$05$SQp2VxlBRC.3phvhvxeAQ.G7kbc8BJVP/ob7s77N9uwNGu/GwCZXG", PW2),  # htpasswd -nbB
    ("$2b$05$mgKA3Tmj18j8tP56pz/e4OMjKiXYhsV1BPXLltMujZVZ5be/Ph3kq", PW),  # mkpasswd -m bcrypt
    ("$6$TxNYiT9yUGdNV/XU$1pa68V61yQD2qxWXNk.xfT8DNFdiNihahSlubbkNwdzyqZoT2pFYsKxc6vEmpMPkWjbJmQQrpuP6O9T.A9M/Q.",
     PW),  # mkpasswd -m sha-512
    ("$6$rounds=20000$MA1uTF4Pw7J1ptxN$bY9991ZRcGFcqymbb5RlkEpq/41Scy8aUdhki25cOkeqj8EBwtf9g81jcEo1RX3vWYTuwANq"
     "9.tTG0fdvubBA0", PW),  # mkpasswd -m sha-512 -R 20000
    ("$5$7PVRZ3sNHLfEtGYu$cQLZsVlGM5Vcw1sd4kBGlNCZF7m5UL0yLiKkQ3hYZY6", PW),  # mkpasswd -m sha256crypt
    ("$6$g9h6mSwkkUnRTc4I$Np4C.HM1GJyZj6lCvcedGxbg0BDIZVom5BgosKDHTXXnM36VbjJkvLb1HmVam6PWCVvmX4fUyKPWEmRywG4Fe0",
     PW2),  # mkpasswd -m sha-512, non-ASCII password (UTF-8)
]


@pytest.mark.parametrize(("setting", "password", "want"), SPEC)
def test_sha_crypt_specification_vectors(setting: str, password: str, want: str) -> None:
    assert sha_crypt(password.encode(), setting) == want


@pytest.mark.parametrize(("stored", "password"), FIXTURES)
def test_hashes_written_by_htpasswd_and_mkpasswd_verify(stored: str, password: str) -> None:
    entry = parse_entry(stored)
    assert entry.scheme in {"bcrypt", "sha512-crypt", "sha256-crypt"}
    assert entry.check("alice", password)
    assert not entry.check("alice", password + " ")
    assert not entry.check("alice", password[:-1])
    assert not entry.check("alice", "")


def _run(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize("password", [PW, PW2, "x", "a" * 71])
def test_fresh_hashes_from_the_real_tools(password: str) -> None:
    """Made now by the real tools (skipped only where they are not installed)."""
    made = []
    if shutil.which("htpasswd"):
        made.append(_run("htpasswd", "-nbB", "-C", "4", "u", password).partition(":")[2])
    if shutil.which("mkpasswd"):
        made.append(_run("mkpasswd", "-m", "sha-512", password))
        made.append(_run("mkpasswd", "-m", "sha-512", "-R", "1234", password))
        made.append(_run("mkpasswd", "-m", "sha256crypt", password))
    if not made:
        pytest.skip("neither htpasswd (apache2-utils) nor mkpasswd (whois) is installed")
    for stored in made:
        assert parse_entry(stored).check("u", password), stored
        assert not parse_entry(stored).check("u", password + "!"), stored


def test_our_hashes_verify_and_are_salted() -> None:
    for scheme in ("bcrypt", "sha512-crypt"):
        a, b = hash_password(PW, scheme=scheme, cost=4), hash_password(PW, scheme=scheme, cost=4)
        assert a != b  # salted
        assert parse_entry(a).check("u", PW) and not parse_entry(a).check("u", PW2)
    if shutil.which("mkpasswd"):  # the real tool reads our SHA-512-crypt: same hash for our salt
        ours = hash_password(PW, scheme="sha512-crypt")
        salt = ours.split("$")[2]
        assert _run("mkpasswd", "-m", "sha-512", "-S", salt, PW) == ours


@pytest.mark.parametrize(
    "secret",
    [
        "$apr1$khBTDKTf$.VMHCCV7AF79JLxNqpGMb.",  # htpasswd's default (MD5-crypt)
        "{SHA}EfatjsUqKYSrqv18O1FlA3hcIHI=",  # htpasswd -s
        "$y$j9T$YvYN8eBg8GCGCu3jUwS2H0$o0PcCzCNnDNgjhE4I5a/eLyr.GLGARRZIlKwNFB8qLA",  # mkpasswd's default
        "$1$abcdefgh$abcdefghijklmnopqrstuv",
        "$6$rounds=900000$salt$" + "a" * 86,  # would take minutes per check
        "$2y$05$QvX37Yf3TrJuNDqKVIKTxezoFk16tCqTbmrcO4dM4NlR4NBq4cZy2:not-a-secret",
    ],
)
def test_hashes_we_cannot_check_are_refused_never_taken_for_passwords(secret: str) -> None:
    with pytest.raises(ValueError):
        parse_entry(secret)


def test_plain_passwords_still_work_colons_included() -> None:
    entry = parse_entry("pa:ss:word")
    assert entry.plain and entry.check("u", "pa:ss:word") and not entry.check("u", "pa")
    assert "pa:ss" not in repr(entry)


def test_basic_and_md5_credentials_against_each_kind_of_entry() -> None:
    bcrypt_only = parse_entry(FIXTURES[0][0])
    sha_and_md5 = parse_entry(f"{FIXTURES[4][0]}:{md5_secret('bob', PW)}")
    md5_only = parse_entry(f":{md5_secret('carol', PW)}")
    users: dict[str, PasswordEntry | str] = {
        "alice": bcrypt_only, "bob": sha_and_md5, "carol": md5_only, "dave": PW,
    }
    nonce = b"n0nce"
    for user in users:
        assert check_cred(basic_cred(user, PW), users, nonce=nonce, username_hint=None) == user
        assert check_cred(basic_cred(user, PW2), users, nonce=nonce, username_hint=None) is None
        md5 = md5_cred(user, PW, nonce)
        want = None if user == "alice" else user  # a bcrypt hash alone cannot answer MD5 auth
        assert check_cred(md5, users, nonce=nonce, username_hint=user) == want
        assert check_cred(md5, users, nonce=nonce, username_hint=None) == want
        assert check_cred(md5_cred(user, PW, b"other"), users, nonce=nonce, username_hint=user) is None
    assert check_cred(basic_cred("nobody", PW), users, nonce=nonce, username_hint=None) is None
    # a user's MD5 secret does not open another user's account
    assert check_cred(md5_cred("bob", PW, nonce), users, nonce=nonce, username_hint="carol") is None


def test_hostile_passwords_are_refused_not_raised() -> None:
    """Whatever arrives in basic credentials (NUL, 10 KB, invalid UTF-8 was decoded already) is a no."""
    for stored, _ in FIXTURES[:1] + FIXTURES[4:5]:
        entry = parse_entry(stored)
        for bad in ("\0", "a\0b", "x" * 10_000, PW + "\0"):
            assert not entry.check("u", bad)
    with pytest.raises(ValueError):
        hash_password("x" * 73)  # bcrypt would cut it: refused, SHA-512-crypt takes it
    assert parse_entry(hash_password("x" * 73, scheme="sha512-crypt")).check("u", "x" * 73)
