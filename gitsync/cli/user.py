"""``gitsync-notes user``: add, change or remove a user in the users file of ``serve``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gitsync.cli.base import EXIT_OK, main, run


@main.group()
def user() -> None:
    """Manage the users file of serve (hashed passwords, mode 0600)."""


@user.command("add")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("name")
@click.option(
    "--md5",
    "with_md5",
    is_flag=True,
    help="Also store the SyncML MD5 secret b64(md5(NAME:password)), needed by clients using MD5 auth.",
)
@click.option(
    "--scheme",
    type=click.Choice(["bcrypt", "sha512-crypt"]),
    default="bcrypt",
    show_default=True,
    help="Password hash.",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
def add(file: str, name: str, with_md5: bool, scheme: str, password_stdin: bool) -> None:
    """Add user NAME to FILE, or change its password (prompted without echo)."""

    def body() -> int:
        from gitsync.app.users import check_user_name, set_user, user_line
        from gitsync.errors import ConfigError

        if (why := check_user_name(name)) is not None:
            raise ConfigError(f"invalid user name {name!r}: {why}")
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = click.prompt(f"Password for {name}", hide_input=True, confirmation_prompt=True)
        if not password:
            raise ConfigError("empty password")
        new = set_user(Path(file), name, user_line(name, password, scheme=scheme, with_md5=with_md5))
        what = scheme + (" and SyncML MD5 secret" if with_md5 else "")
        verb = "added" if new else "changed"
        click.echo(f"{verb} user {name} in {file} ({what}); restart the server to use it")
        return EXIT_OK

    run(body)


@user.command("remove")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("name")
def remove(file: str, name: str) -> None:
    """Remove user NAME from FILE."""

    def body() -> int:
        from gitsync.app.users import remove_user
        from gitsync.errors import ConfigError

        if not remove_user(Path(file), name):
            raise ConfigError(f"no user {name!r} in {file}")
        click.echo(f"removed user {name} from {file}; restart the server to apply it")
        return EXIT_OK

    run(body)
