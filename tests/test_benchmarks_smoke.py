"""The benchmark script keeps working: a tiny run end to end (no timing is asserted, ever).

``benchmarks/run.py`` is run as a user runs it, on a few notes, and what it reports is checked:
every sync succeeded with both folders holding the same notes, the counting relay saw the HTTP
round trips, the scans listed the changes they should, and the JSON file replays into the same
tables.  The note generator is checked for what the measurements rely on.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests import peers

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


notegen = _load("notegen")


def _run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[str, dict[str, object]]:
    out = tmp_path / "out.json"
    res = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--work", str(tmp_path / "work"), "--json", str(out),
         "--reps", "1", "--scan-reps", "1", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout, json.loads(out.read_text(encoding="utf-8"))


def _samples(data: dict[str, object], **match: object) -> list[dict[str, object]]:
    samples = data["samples"]
    assert isinstance(samples, list)
    return [s for s in samples if all(s.get(k) == v for k, v in match.items())]


def _check_syncs(data: dict[str, object], subject: str) -> None:
    for step in ("first sync", "follow-up 1%"):
        walls = _samples(data, group=step, subject=subject, metric="client wall")
        assert walls, f"no {step} of {subject}"
        for s in walls:
            assert s["ok"] == "ok", (step, subject, s)
        trips = _samples(data, group=step, subject=subject, metric="HTTP round trips")
        assert all(isinstance(s["value"], int | float) and s["value"] >= 2 for s in trips), trips
        up = _samples(data, group=step, subject=subject, metric="bytes client→server")
        assert all(isinstance(s["value"], int | float) and s["value"] > 0 for s in up), up


def test_tiny_run_of_our_own_tool(tmp_path: Path) -> None:
    stdout, data = _run(tmp_path, "--sizes", "20", "--no-pysyncml", "--large-mib", "1")
    _check_syncs(data, "gitsync → gitsync (rich)")
    for case in ("scan unchanged", "scan 1% modified"):
        for cmd in ("gitsync-notes sync --local", "git status --porcelain"):
            (wall,) = _samples(data, n=20, group=case, subject=cmd, metric="wall")
            assert wall["ok"] == "ok", wall  # also: each tool listed exactly the notes modified
    help_runs = _samples(data, group="startup", subject="gitsync-notes --help", metric="wall")
    assert help_runs and all(s["ok"] == "ok" for s in help_runs)
    for heading in ("Start-up", "Scans of a synced client folder", "First sync", "Targets of issue 8"):
        assert heading in stdout
    assert "| 20 | gitsync → gitsync (rich) |" in stdout
    for direction in ("up", "down"):  # a large note each way, compared byte for byte
        (large,) = _samples(data, group="large note", subject="1 MiB", metric=f"{direction} wall")
        assert large["ok"] == "ok", large
    assert "Targets of issue 14 (large notes)" in stdout
    assert not (tmp_path / "work" / "n20").exists()  # note folders are removed without --keep
    replay = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--report", str(tmp_path / "out.json")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert replay.stdout.strip() == stdout.strip()


@pytest.mark.interop
def test_tiny_run_with_pysyncml_in_both_roles(tmp_path: Path) -> None:
    launcher = peers.pysyncml_launcher()  # skips without Python 2.7
    env = dict(os.environ, SYNC_NOTES=str(launcher))
    stdout, data = _run(tmp_path, "--sizes", "8", "--pysyncml-client-max", "8", "--large-mib", "", env=env)
    for subject in (
        "gitsync → gitsync (rich)",
        "gitsync → gitsync (flat)",
        "pysyncml → pysyncml (flat)",
        "gitsync → pysyncml (flat)",
        "pysyncml → gitsync (flat)",
    ):
        _check_syncs(data, subject)
    (scan,) = _samples(data, n=8, group="scan 1% modified", subject="sync-notes -l", metric="wall")
    assert scan["ok"] == "ok", scan
    assert "Speed-up over pysyncml" in stdout


def test_note_folders_are_deterministic_and_shaped_as_documented(tmp_path: Path) -> None:
    notegen.generate(tmp_path / "a", 300)
    notegen.generate(tmp_path / "b", 300)
    names = list(notegen.list_notes(tmp_path / "a"))
    assert names == list(notegen.list_notes(tmp_path / "b"))
    assert len(names) == 300
    assert all((tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes() for n in names)
    assert any("/" in n for n in names)  # sub-folders
    assert any(not n.isascii() for n in names)  # non-ASCII names
    assert any(not (tmp_path / "a" / n).read_bytes().isascii() for n in names)  # and text
    sizes = sorted((tmp_path / "a" / n).stat().st_size for n in names)
    assert sizes[0] < 300 < sizes[len(sizes) // 2] < 2000 < sizes[-1]  # short, typical and long notes

    notegen.generate(tmp_path / "flat", 300, flavour="flat")
    flat = list(notegen.list_notes(tmp_path / "flat"))
    assert flat[0] == "note-00000.txt" and len(flat) == 300
    assert all("/" not in n and n.isascii() for n in flat)
    assert all((tmp_path / "flat" / n).read_bytes().isascii() for n in flat)

    changed = notegen.modify(tmp_path / "a", 1, 3)
    assert len(changed) == 3  # 1 % of 300
    others = notegen.modify(tmp_path / "b", 1, 3, stride_offset=50)
    assert len(others) == 3 and not set(changed) & set(others)
    assert all((tmp_path / "a" / n).read_bytes() != (tmp_path / "b" / n).read_bytes() for n in changed)
