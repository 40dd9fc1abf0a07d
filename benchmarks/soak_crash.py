#!/usr/bin/env python3
"""Crash soak: kill -9 the gitsync client or server at seeded points of a sync, many times over.

    python benchmarks/soak_crash.py                 # 120 trials, seed 0, deterministic points + delays
    python benchmarks/soak_crash.py -n 300 -s 7     # more trials, another seed
    python benchmarks/soak_crash.py --only-points   # no timer-based kills (fully reproducible)

Each trial (tests/crash/harness.py) syncs a client folder with a server folder, makes seeded changes
on both sides, kills one side (a real ``gitsync-notes`` process) at a crash point -- before/after each
package, inside finish_sync -- or after a seeded delay, then syncs again and checks: exactly the
expected notes on both sides (none lost, duplicated or resurrected), ``git fsck`` clean, nothing
uncommitted, no journal ref or lock file left, and a further sync that has nothing to do.

Prints one line per trial and a table per crash point; exits 1 if any trial failed (the failed
trial's folders are kept and printed).  A failure reproduces with ``-s SEED -n 1`` where SEED is the
trial's seed and the same ``--only-points``/delay choice.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

GITCONFIG = "[user]\n\tname = Soak\n\temail = soak@example.invalid\n[init]\n\tdefaultBranch = main\n"


def _hermetic_home() -> Path:
    """A throw-away HOME so neither the user's git config nor GIT_* variables reach the trials."""
    home = Path(tempfile.mkdtemp(prefix="gitsync-soak-home-"))
    (home / ".gitconfig").write_text(GITCONFIG, encoding="utf-8")
    for name in [n for n in os.environ if n.startswith("GIT_")]:
        del os.environ[name]
    os.environ.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), GIT_CONFIG_NOSYSTEM="1")
    return home


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--trials", type=int, default=120)
    parser.add_argument("-s", "--seed", type=int, default=0)
    parser.add_argument("--only-points", action="store_true", help="no kills after a seeded delay")
    parser.add_argument("--keep", action="store_true", help="keep every trial's folders")
    parser.add_argument("-v", "--verbose", action="store_true", help="show gitsync's warnings (recoveries)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING if args.verbose else logging.ERROR, format="    %(message)s")
    home = _hermetic_home()

    # imported after HOME is set: pygit2 reads its config search path at import time
    from tests.crash.harness import plan_trials, run_trial

    trials = plan_trials(args.trials, args.seed, delays=not args.only_points)
    rows: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # trials, killed, failed, lock waits
    failed: list[tuple[str, Path]] = []
    started = time.monotonic()
    for trial in trials:
        tmp = Path(tempfile.mkdtemp(prefix=f"gitsync-soak-{trial.seed}-"))
        out = run_trial(trial, tmp)
        key = f"{trial.side} {'delay' if trial.point == 'delay' else trial.point + ':' + str(trial.nth)}"
        row = rows[key]
        row[0] += 1
        row[1] += out.killed
        row[2] += not out.ok
        row[3] += out.waited_for_lock
        verdict = "ok" if out.ok else "FAILED"
        waited = " (waited out a ref lock)" if out.waited_for_lock else ""
        print(
            f"{trial.label:48} killed={'yes' if out.killed else 'no ':3} notes={out.notes:2} "
            f"{out.seconds:5.2f}s {verdict}{waited}",
            flush=True,
        )
        if not out.ok:
            failed.append((trial.label, tmp))
            for problem in out.problems:
                print("    " + problem.replace("\n", "\n    "), flush=True)
        elif not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.monotonic() - started
    print()
    print(f"{'side / crash point':32} {'trials':>6} {'killed':>6} {'failed':>6} {'lock wait':>9}")
    for key in sorted(rows):
        n, killed, bad, waits = rows[key]
        print(f"{key:32} {n:6} {killed:6} {bad:6} {waits:9}")
    total = len(trials)
    killed = sum(r[1] for r in rows.values())
    waits = sum(r[3] for r in rows.values())
    print(f"{'total':32} {total:6} {killed:6} {len(failed):6} {waits:9}")
    print(
        f"\n{total} trials in {elapsed:.0f} s: {killed} processes killed by SIGKILL, "
        f"{total - len(failed)} trials ended with both sides correct, {len(failed)} failed"
    )
    if waits:
        print(
            f"{waits} kill(s) landed inside a ref update under refs/gitsync/: its lock file held syncs "
            "back for the store's grace (a few seconds, by design), then they went through"
        )
    for label, tmp in failed:
        print(f"  failed: {label}: {tmp}")
    shutil.rmtree(home, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
