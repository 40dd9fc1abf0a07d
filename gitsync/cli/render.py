"""Text rendering for the CLI: the sync-notes summary table."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gitsync.app.common import SyncReport

__all__ = ["render_table"]


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
