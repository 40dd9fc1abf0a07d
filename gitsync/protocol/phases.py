"""Where a SyncML session stands, and every move between phases, in one table.

Rules (after h11's ``_state.py``):

1. Everything that moves a session from one phase to another lives here: the sessions name
   *what happened* (a :class:`Trigger`) and :func:`next_phase` says where that leads.  No other
   code assigns a phase; ``SessionBase._go`` is the one caller that applies the answer.
2. The table is data: ``TRANSITIONS[role][phase][trigger] -> phase``.  A trigger the table does
   not list for the current phase is a protocol error (:class:`LocalProtocolError`, answered
   with a SyncML status) and leaves the phase unchanged.
3. ``Trigger.FAIL`` leads to ``Phase.ERROR`` from every phase, and nothing leaves ``ERROR`` or
   ``DONE`` otherwise: a failed or finished session stays so.
4. Which phases take a message from the peer (:data:`RECEIVES`) and which may build one
   (:data:`SENDS`) is here too; a message out of turn is refused the same way.

The package numbers are OMA DS's: the client sends 1, 3 and 5, the server 2, 4 and 6.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from gitsync.errors import LocalProtocolError

__all__ = [
    "RECEIVES",
    "SENDS",
    "TRANSITIONS", "Phase", "Role", "Trigger", "check_receive",
    "check_send",
    "next_phase",
]


class Role(enum.Enum):
    """Which side of the session we play."""

    CLIENT = "client"
    SERVER = "server"


class Phase(enum.Enum):
    """Where a session stands."""

    INIT = "init"
    WAIT_ACCEPT = "wait-accept"  # server: SyncRequested emitted
    ALERTED = "alerted"  # client: pkg1 sent; server: pkg2 going out
    NEED_CHANGES = "need-changes"  # the application must provide_changes
    SENDING = "sending"  # our Sync package is going out, maybe over several messages
    RECEIVING = "receiving"  # the peer's Sync package is coming in
    NEED_RESULTS = "need-results"  # the application must provide_results
    MAPPING = "mapping"  # client: pkg5 sent; server: waiting for pkg5
    DONE = "done"
    ERROR = "error"


class Trigger(enum.Enum):
    """What happened, as far as the phase is concerned."""

    START = "start"  # client: package 1 built
    SYNC_ALERT = "sync-alert"  # server: the client's sync Alert arrived (SyncRequested)
    ACCEPT = "accept"  # server: the application accepted the sync (accept_sync)
    MODE_DECIDED = "mode-decided"  # client: the server's package 2 is complete (SyncModeDecided)
    CHANGES_GIVEN = "changes-given"  # the application gave our changes (provide_changes)
    PACKAGE_SENT = "package-sent"  # the last message of our Sync package is built
    CHANGES_IN = "changes-in"  # a message of the peer's Sync package arrived (ChangesReceived)
    RESULTS_GIVEN = "results-given"  # provide_results, more of the peer's package may follow
    LAST_RESULTS_GIVEN = "last-results-given"  # server: provide_results for the final package 3
    MAP_SENT = "map-sent"  # client: package 5 (Map, final) built
    END = "end"  # the peer's last message of the session arrived
    FAIL = "fail"  # anything went wrong: the session is over


_C, _S = Role.CLIENT, Role.SERVER
P, T = Phase, Trigger  # short names for the tables only

#: role → phase → trigger → next phase, without ``FAIL`` (added to every phase below)
_MOVES: Mapping[Role, Mapping[Phase, Mapping[Trigger, Phase]]] = {
    _C: {
        P.INIT: {T.START: P.ALERTED},
        P.WAIT_ACCEPT: {},  # a server phase
        P.ALERTED: {T.MODE_DECIDED: P.NEED_CHANGES},
        P.NEED_CHANGES: {T.CHANGES_GIVEN: P.SENDING},
        P.SENDING: {T.PACKAGE_SENT: P.RECEIVING},
        # the server's package 4; it ends with our Map (pkg5), or with nothing when the server's
        # last message held only Statuses (it has closed the session: Synthesis does that)
        P.RECEIVING: {T.CHANGES_IN: P.NEED_RESULTS, T.MAP_SENT: P.MAPPING, T.END: P.DONE},
        P.NEED_RESULTS: {T.RESULTS_GIVEN: P.RECEIVING},
        P.MAPPING: {T.END: P.DONE},
        P.DONE: {},
        P.ERROR: {},
    },
    _S: {
        P.INIT: {T.SYNC_ALERT: P.WAIT_ACCEPT},
        P.WAIT_ACCEPT: {T.ACCEPT: P.ALERTED},
        P.ALERTED: {T.CHANGES_IN: P.NEED_RESULTS},
        P.RECEIVING: {T.CHANGES_IN: P.NEED_RESULTS},
        P.NEED_RESULTS: {T.RESULTS_GIVEN: P.RECEIVING, T.LAST_RESULTS_GIVEN: P.NEED_CHANGES},
        P.NEED_CHANGES: {T.CHANGES_GIVEN: P.SENDING},
        P.SENDING: {T.PACKAGE_SENT: P.MAPPING},
        P.MAPPING: {T.END: P.DONE},
        P.DONE: {},
        P.ERROR: {},
    },
}
#: role → phase → trigger → next phase: the whole state machine
TRANSITIONS: Mapping[Role, Mapping[Phase, Mapping[Trigger, Phase]]] = {
    role: {phase: {**moves, T.FAIL: P.ERROR} for phase, moves in table.items()}
    for role, table in _MOVES.items()
}

#: the phases in which a message from the peer is expected (a message elsewhere is refused)
RECEIVES: Mapping[Role, frozenset[Phase]] = {
    _C: frozenset({P.ALERTED, P.SENDING, P.RECEIVING, P.MAPPING}),
    _S: frozenset({P.INIT, P.ALERTED, P.RECEIVING, P.SENDING, P.MAPPING}),
}

#: the phases in which we may build a message (the client has none to send once DONE; the server
#: answers every message it received, also the one that ended or failed the session)
SENDS: Mapping[Role, frozenset[Phase]] = {
    _C: frozenset({P.ALERTED, P.SENDING, P.RECEIVING}),
    _S: frozenset({P.INIT, P.ALERTED, P.RECEIVING, P.SENDING, P.MAPPING, P.DONE, P.ERROR}),
}


def next_phase(role: Role, phase: Phase, trigger: Trigger) -> Phase:
    """Where ``trigger`` leads ``role`` from ``phase``.

    Raises:
        LocalProtocolError: the table has no such move (status hint 400: the server driver
            answers the message with it); the caller's phase is unchanged.
    """
    moves = TRANSITIONS[role][phase]
    try:
        return moves[trigger]
    except KeyError:
        allowed = ", ".join(t.value for t in moves if t is not T.FAIL) or "nothing"
        raise LocalProtocolError(
            f"{role.value} session: {trigger.value} is not allowed in phase {phase.value} "
            f"(allowed: {allowed})"
        ) from None


def check_receive(role: Role, phase: Phase) -> None:
    """Refuse a message from the peer in a phase that expects none.

    Raises:
        LocalProtocolError: with status 400 (the peer's message came out of turn).
    """
    if phase not in RECEIVES[role]:
        raise LocalProtocolError(f"{role.value} session: not expecting a message in phase {phase.value}")


def check_send(role: Role, phase: Phase) -> None:
    """Refuse to build a message in a phase where the application must answer first, or where
    the session has nothing to say.

    Raises:
        LocalProtocolError: with status 400.
    """
    if phase not in SENDS[role]:
        raise LocalProtocolError(f"{role.value} session: no message to send in phase {phase.value}")
