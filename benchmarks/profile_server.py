"""Run ``gitsync-notes serve`` single-threaded under cProfile (the CLI server answers in threads,
which cProfile does not follow).

    python benchmarks/profile_server.py OUT.prof DIR PORT      # stop it with SIGTERM or Ctrl-C
    python -c "import pstats; pstats.Stats('OUT.prof').sort_stats('tottime').print_stats(30)"
"""

from __future__ import annotations

import cProfile
import signal
import sys
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    out, folder, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    from gitsync.app.server import SyncServer
    from gitsync.store.git import GitStore

    server = SyncServer(GitStore.open(Path(folder)))
    httpd = make_server("127.0.0.1", port, server.wsgi_app(), handler_class=_Quiet)

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    prof = cProfile.Profile()
    prof.enable()
    try:
        httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        prof.disable()
        prof.dump_stats(out)
        httpd.server_close()


if __name__ == "__main__":
    main()
