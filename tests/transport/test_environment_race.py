"""The store sets GIT_INDEX_FILE for a moment; requests iterates os.environ for proxies.

A client's scan thread opens the stat cache while its first message is sent (and servers and tests
run many sessions in threads): without one lock for both, the iteration can meet the variable
vanishing and raise KeyError in the middle of a sync.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from gitsync.store import git as store_git
from gitsync.store import scan
from gitsync.transport.http import HttpTransport


def test_proxy_lookup_and_opening_the_stat_cache_do_not_race(tmp_path: Path) -> None:
    store_git.GitStore.open(tmp_path)  # a repository to open again and again
    errors: list[BaseException] = []
    stop = time.monotonic() + 1.0

    def open_indexes() -> None:
        try:
            while time.monotonic() < stop:
                scan.open_with_index(str(tmp_path), str(tmp_path / ".git" / "gitsync" / "index"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    def look_up_proxies() -> None:
        transport = HttpTransport()
        try:
            while time.monotonic() < stop:
                transport._environment("http://127.0.0.1:9/")
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            transport.close()

    threads = [threading.Thread(target=open_indexes), threading.Thread(target=look_up_proxies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
