"""The users file of ``serve``: reading it (once, at start-up) and changing one user in it atomically.

One ``name:secret`` per line; blank lines and ``#`` comments are skipped. *secret* is an htpasswd
style hash, optionally followed by ``:`` and the SyncML MD5 secret, or (with a warning) a plain
password: see :mod:`gitsync.protocol.passwords`. ``gitsync-notes user add FILE NAME`` writes entries.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

from gitsync.atomic import atomic_write
from gitsync.errors import ConfigError
from gitsync.protocol.passwords import PasswordEntry, hash_password, md5_secret, parse_entry

__all__ = ["check_user_name", "read_users", "remove_user", "set_user", "user_line"]

logger = logging.getLogger(__name__)

#: a user name that is also a safe file name on every system (its repository is ROOT/<name> with
#: --per-user): no separators, no leading dot, no control or shell characters
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._@+-]{0,63}")
_warned: set[str] = set()


def check_user_name(name: str) -> str | None:
    """Why ``name`` cannot be a user name (``None`` when it can)."""
    if not _SAFE_NAME.fullmatch(name):
        return (
            "user names are 1-64 characters of letters, digits and . _ @ + -, "
            "not starting with . - @ or +"
        )
    return None


def read_users(path: Path, *, per_user: bool = False) -> dict[str, PasswordEntry]:
    """The users of ``path``. Plain-text passwords are accepted with one warning per file and process.

    With ``per_user`` (each user gets the repository ``ROOT/<name>``) a name that is not a safe path
    component, or two names that differ only in case, are refused.
    """
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"cannot read users file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"users file {path} is not UTF-8 text") from exc
    users: dict[str, PasswordEntry] = {}
    folded: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        user, sep, secret = line.partition(":")
        user = user.strip()
        if not sep or not user:
            raise ConfigError(f"{path}:{n}: expected user:password")
        if user in users:
            raise ConfigError(f"{path}:{n}: user {user!r} appears twice")
        if per_user:
            if (why := check_user_name(user)) is not None:
                raise ConfigError(f"{path}:{n}: user name {user!r} cannot name a repository: {why}")
            if (other := folded.get(user.casefold())) is not None:
                raise ConfigError(f"{path}:{n}: users {other!r} and {user!r} differ only in case")
            folded[user.casefold()] = user
        try:
            users[user] = parse_entry(secret)
        except ValueError as exc:
            raise ConfigError(f"{path}:{n}: user {user!r}: {exc}") from exc
    _warn(path, users, mode)
    return users


def _warn(path: Path, users: dict[str, PasswordEntry], mode: int) -> None:
    key = str(path.resolve())
    if key in _warned:
        return
    _warned.add(key)
    plain = sorted(name for name, entry in users.items() if entry.plain)
    if plain:
        logger.warning(
            "users file %s keeps plain-text passwords for %s: hash them with "
            "'gitsync-notes user add %s NAME [--md5]'", path, ", ".join(plain), path,
        )
    if mode & (stat.S_IRWXG | stat.S_IRWXO) and any(e.plain or e.md5 for e in users.values()):
        logger.warning("users file %s can be read by other users (mode %o): chmod 600 it",
                       path, stat.S_IMODE(mode))


def user_line(name: str, password: str, *, scheme: str = "bcrypt", with_md5: bool = False) -> str:
    """The users-file line for ``name`` (no newline): the hash, and the MD5 secret if asked."""
    line = f"{name}:{hash_password(password, scheme=scheme)}"
    return f"{line}:{md5_secret(name, password)}" if with_md5 else line


def set_user(path: Path, name: str, line: str) -> bool:
    """Put ``line`` in ``path`` for user ``name`` (replacing its old line); ``True`` if it was new.

    The file is replaced atomically (a reader sees the old or the new file) and gets mode 0600;
    two commands changing it at once take turns (a lock file beside it), so neither change is lost.
    """
    with _locked(path):
        return _set_user(path, name, line)


def _set_user(path: Path, name: str, line: str) -> bool:
    lines, found = [], False
    for old in _lines(path):
        if old.partition(":")[0].strip() == name and not old.lstrip().startswith("#"):
            if not found:
                lines.append(line)
            found = True
        else:
            lines.append(old)
    if not found:
        lines.append(line)
    _write(path, lines)
    return not found


def remove_user(path: Path, name: str) -> bool:
    """Remove user ``name`` from ``path``; ``False`` if it was not there."""
    with _locked(path):
        return _remove_user(path, name)


def _remove_user(path: Path, name: str) -> bool:
    old = _lines(path)
    keep = [ln for ln in old if ln.lstrip().startswith("#") or ln.partition(":")[0].strip() != name]
    if len(keep) == len(old):
        return False
    _write(path, keep)
    return True


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock = path.parent / f".{path.name}.lock"
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot write users file {path}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read users file {path}: {getattr(exc, 'strerror', None) or exc}") from exc


def _write(path: Path, lines: list[str]) -> None:
    data = "".join(f"{ln}\n" for ln in lines).encode("utf-8")
    try:
        atomic_write(path, data, mode=0o600, durable=True)
    except OSError as exc:
        raise ConfigError(f"cannot write users file {path}: {exc.strerror}") from exc
