"""Test session setup: a hermetic Git environment for every test, hypothesis profiles, the ``slow`` marker.

Hypothesis profiles: "dev" (default), "ci" (when $CI is set: derandomized, so a CI failure reproduces
locally with ``CI=1``), "deterministic" (when $DETERMINISTIC_TESTS is set).  ``--hypothesis-profile``
overrides the choice.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pygit2
import pytest
from hypothesis import HealthCheck, settings
from pygit2.enums import ConfigLevel

# Imported here, before any fixture changes the environment: tests.peers keeps the session's real
# environment for the pysyncml installer, whose cache lives under the real HOME.
from tests import peers as _peers  # noqa: F401

settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("deterministic", max_examples=50, deadline=None, derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
elif os.environ.get("DETERMINISTIC_TESTS"):
    settings.load_profile("deterministic")
else:
    settings.load_profile("dev")

GITCONFIG = """\
[user]
\tname = Test
\temail = test@example.invalid
[init]
\tdefaultBranch = main
"""

# Where libgit2 looks for config files.  pygit2 computes these once, from $HOME at import time, so
# changing HOME alone would not stop the developer's ~/.gitconfig from reaching pygit2.
_CONFIG_LEVELS = (ConfigLevel.SYSTEM, ConfigLevel.XDG, ConfigLevel.GLOBAL, ConfigLevel.PROGRAMDATA)


@pytest.fixture(autouse=True)
def hermetic_git_env(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """No GIT_* variable, HOME = a fresh folder holding only a minimal ~/.gitconfig, no system config.

    Applies to the git command line (through the environment) and to pygit2 (through its search path).
    Yields the temporary HOME.
    """
    home = tmp_path_factory.mktemp("home")
    (home / ".gitconfig").write_text(GITCONFIG, encoding="utf-8")
    (home / ".config").mkdir()
    no_config = home / ".no-system-config"  # an empty folder: no gitconfig in it
    no_config.mkdir()
    for name in list(os.environ):
        if name.startswith("GIT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")  # git CLI: ignore /etc/gitconfig
    monkeypatch.delenv("EMAIL", raising=False)  # git's identity fallback

    search_path = pygit2.settings.search_path
    saved = {level: search_path[level] for level in _CONFIG_LEVELS}
    search_path[ConfigLevel.GLOBAL] = str(home)
    search_path[ConfigLevel.XDG] = str(home / ".config" / "git")
    search_path[ConfigLevel.SYSTEM] = str(no_config)
    search_path[ConfigLevel.PROGRAMDATA] = str(no_config)
    try:
        yield home
    finally:
        for level, value in saved.items():
            search_path[level] = value


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow (soak tests)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``slow`` tests are not in the default run: they need --run-slow or a -m expression naming slow."""
    if config.getoption("--run-slow") or "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow or -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
