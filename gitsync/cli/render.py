"""Text rendering for the CLI: the sync-notes summary table, the dry-run answer."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gitsync.app.safety import DryRun
    from gitsync.store.git import TreeChange
    from gitsync.sync.report import SyncReport

__all__ = ["render_dry_run", "render_table"]


def render_table(report: SyncReport) -> str:
    """The summary table sync-notes prints (Local/Remote Add/Mod/Del/Err, Conflicts Col/Mrg)."""

    def cell(n: int) -> str:
        return f"{n:>4} " if n else "  -  "

    i, o = report.local, report.remote
    counts = (i.add, i.mod, i.dele, i.err, o.add, o.mod, o.dele, o.err, report.conflicts, report.merged)
    mode = {
        "two-way": "<>",
        "slow": "SS",
        "one-way-from-client": "->",
        "one-way-from-server": "<-",
        "refresh-from-client": "=>",
        "refresh-from-server": "<=",
    }.get(report.mode, "??")
    rule = "+--------+------+" + "-----+" * 10
    groups = "+--------+------+-----------------------+-----------------------+-----------+"
    width = len(rule) - 2
    titles = ("Add", "Mod", "Del", "Err") * 2 + ("Col", "Mrg")
    nloc, nrem = i.total(), o.total()
    parts = []
    if nloc:
        parts.append(f"{nloc} local change{'s' if nloc != 1 else ''}")
    if nrem:
        parts.append(f"{nrem} remote change{'s' if nrem != 1 else ''}")
    footer = (" and ".join(parts) + ".") if parts else "No changes."
    if report.unresolved:
        footer += f" {len(report.unresolved)} conflict(s) left unresolved."
    if report.marked:
        footer += f" {len(report.marked)} arrived with conflict markers."
    if report.uncarried:
        footer += f" {len(report.uncarried)} not sent (see below)."
    return "\n".join(
        [
            "+" + "-" * width + "+",
            f"|{'Synchronization Summary':^{width}}|",
            groups,
            "|        |      |         Local         |        Remote         | Conflicts |",
            "| Source | Mode |" + "|".join(f" {t} " for t in titles) + "|",
            rule,
            f"|{'notes':>7} |  {mode}  |" + "|".join(cell(n) for n in counts) + "|",
            rule,
            f"|{footer:^{width}}|",
            "+" + "-" * width + "+",
        ]
    )


# ---------------------------------------------------------------------- --dry-run
_MARK = {"add": "add", "modify": "modify", "delete": "delete"}


def render_dry_run(dr: DryRun) -> str:
    """What ``sync --dry-run`` prints."""
    mode = dr.mode.name.lower().replace("_", "-")
    lines = [f"Dry run: nothing was written and {dr.url} was not contacted."]
    lines.append(f"A sync with {dr.peer} would be {mode}" + (f" ({dr.reason})." if dr.reason else "."))
    if dr.uncommitted:
        lines.append(f"It would first commit {len(dr.uncommitted)} uncommitted edit(s).")
    lines.append(f"It would send {len(dr.outgoing)} change{'s' if len(dr.outgoing) != 1 else ''}:")
    lines.extend(_change_line(tc) for tc in dr.outgoing)
    lines.extend(dr.notes)
    if dr.guard:
        lines.append(f"It would STOP: {dr.guard}")
    return "\n".join(lines)


def _change_line(tc: TreeChange) -> str:
    if tc.old_path and tc.new_path and tc.old_path != tc.new_path:
        return f"  rename  {tc.old_path} -> {tc.new_path}"
    return f"  {_MARK[tc.kind.value]:<7} {tc.new_path or tc.old_path}"
