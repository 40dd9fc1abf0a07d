"""The phases table (gitsync/protocol/phases.py) and the sessions' use of it."""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Callable
from pathlib import Path

import pytest

from gitsync.errors import LocalProtocolError
from gitsync.model import SyncMode
from gitsync.protocol import phases
from gitsync.protocol.client import ClientConfig, ClientSession
from gitsync.protocol.events import ItemResult, SyncRequested
from gitsync.protocol.messages import Anchor
from gitsync.protocol.phases import RECEIVES, SENDS, TRANSITIONS, Phase, Role, Trigger, next_phase
from gitsync.protocol.server import ServerConfig, ServerSession
from tests.protocol.test_session_pair import DEVINF, Pair, _adds

P, T = Phase, Trigger

#: the phases each role goes through in a normal session, with the trigger of each step
HAPPY_PATHS = {
    Role.CLIENT: [
        (T.START, P.ALERTED),
        (T.MODE_DECIDED, P.NEED_CHANGES),
        (T.CHANGES_GIVEN, P.SENDING),
        (T.PACKAGE_SENT, P.RECEIVING),
        (T.CHANGES_IN, P.NEED_RESULTS),
        (T.RESULTS_GIVEN, P.RECEIVING),
        (T.MAP_SENT, P.MAPPING),
        (T.END, P.DONE),
    ],
    Role.SERVER: [
        (T.SYNC_ALERT, P.WAIT_ACCEPT),
        (T.ACCEPT, P.ALERTED),
        (T.CHANGES_IN, P.NEED_RESULTS),
        (T.RESULTS_GIVEN, P.RECEIVING),
        (T.CHANGES_IN, P.NEED_RESULTS),
        (T.LAST_RESULTS_GIVEN, P.NEED_CHANGES),
        (T.CHANGES_GIVEN, P.SENDING),
        (T.PACKAGE_SENT, P.MAPPING),
        (T.END, P.DONE),
    ],
}


@pytest.mark.parametrize("role", list(Role))
def test_a_normal_session_walks_the_table(role: Role) -> None:
    phase = P.INIT
    for trigger, expected in HAPPY_PATHS[role]:
        phase = next_phase(role, phase, trigger)
        assert phase is expected, (trigger, phase)


ILLEGAL = [
    (role, phase, trigger)
    for role in Role
    for phase in Phase
    for trigger in Trigger
    if trigger not in TRANSITIONS[role][phase]
]


def test_most_moves_are_illegal() -> None:
    legal = sum(len(moves) for table in TRANSITIONS.values() for moves in table.values())
    assert len(ILLEGAL) + legal == len(Role) * len(Phase) * len(Trigger)
    assert legal < len(ILLEGAL) / 4  # the table is a narrow path, not a free-for-all


@pytest.mark.parametrize(("role", "phase", "trigger"), ILLEGAL)
def test_an_illegal_move_is_a_protocol_error(role: Role, phase: Phase, trigger: Trigger) -> None:
    with pytest.raises(LocalProtocolError) as caught:
        next_phase(role, phase, trigger)
    assert caught.value.status_hint == 400
    assert phase.value in str(caught.value) and trigger.value in str(caught.value)


@pytest.mark.parametrize("role", list(Role))
def test_every_phase_fails_to_error_and_done_and_error_are_final(role: Role) -> None:
    table = TRANSITIONS[role]
    assert set(table) == set(Phase)
    for phase in Phase:
        assert next_phase(role, phase, T.FAIL) is P.ERROR
    assert set(table[P.DONE]) == {T.FAIL}
    assert set(table[P.ERROR]) == {T.FAIL}


@pytest.mark.parametrize("role", list(Role))
def test_every_used_phase_is_reachable_and_can_finish(role: Role) -> None:
    table = TRANSITIONS[role]

    def reach(start: Phase, edges: dict[Phase, set[Phase]]) -> set[Phase]:
        seen, todo = {start}, deque([start])
        while todo:
            for nxt in edges.get(todo.popleft(), set()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    forward = {p: set(moves.values()) for p, moves in table.items()}
    backward: dict[Phase, set[Phase]] = {}
    for src, dsts in forward.items():
        for dst in dsts:
            backward.setdefault(dst, set()).add(src)
    used = reach(P.INIT, forward)
    unused = {P.WAIT_ACCEPT} if role is Role.CLIENT else set()
    assert used == set(Phase) - unused
    assert reach(P.DONE, backward) >= used - {P.ERROR}  # no dead end short of an error
    assert RECEIVES[role] <= used and SENDS[role] - {P.DONE, P.ERROR} <= used


def _client() -> ClientSession:
    return ClientSession(ClientConfig(url="http://server/", device_id="c", devinf=DEVINF, mode=SyncMode.SLOW))


def test_client_calls_out_of_turn_are_refused_and_change_nothing() -> None:
    client = _client()
    with pytest.raises(LocalProtocolError, match="changes-given is not allowed in phase init"):
        client.provide_changes([])
    with pytest.raises(LocalProtocolError, match="results-given is not allowed in phase init"):
        client.provide_results([])
    with pytest.raises(LocalProtocolError, match="no message to send in phase init"):
        client.next_message()
    assert client.phase is P.INIT
    client.start()
    with pytest.raises(LocalProtocolError, match="start is not allowed in phase alerted"):
        client.start()
    assert client.phase is P.ALERTED


def test_server_calls_out_of_turn_are_refused_and_change_nothing() -> None:
    server = ServerSession(ServerConfig(devinf=DEVINF))
    with pytest.raises(LocalProtocolError, match="accept is not allowed in phase init"):
        server.accept_sync(mode=SyncMode.SLOW, anchor=Anchor(next="1"))
    with pytest.raises(LocalProtocolError, match="changes-given is not allowed in phase init"):
        server.provide_changes([])
    assert server.phase is P.INIT
    client = _client()
    events = server.receive(client.start())
    assert [type(e) for e in events if isinstance(e, SyncRequested)] == [SyncRequested]
    assert server.phase is P.WAIT_ACCEPT
    with pytest.raises(LocalProtocolError, match="no message to send in phase wait-accept"):
        server.next_message()  # the application must answer the Alert first
    with pytest.raises(LocalProtocolError, match="results-given is not allowed in phase wait-accept"):
        server.provide_results([ItemResult(code=200)])
    assert server.phase is P.WAIT_ACCEPT


def test_a_message_after_the_session_ended_gets_status_400_not_a_crash() -> None:
    pair = Pair(client_changes=_adds(2, "c"), server_changes=_adds(2, "s"))
    pair.run()
    assert pair.client.phase is P.DONE and pair.server.phase is P.DONE
    late = pair.client._pkg1()  # a replayed first message, after the end
    with pytest.raises(LocalProtocolError) as caught:
        pair.server.receive(late)
    assert caught.value.status_hint == 400  # what the server driver answers the message with
    assert "not expecting a message in phase done" in str(caught.value)
    assert pair.server.phase is P.ERROR  # and the session is over for good
    with pytest.raises(LocalProtocolError):
        pair.server.receive(late)
    with pytest.raises(LocalProtocolError, match="client session: not expecting a message in phase done"):
        pair.client.receive(late)
    assert pair.client.phase is P.ERROR


def _recording(session: ClientSession | ServerSession, into: list[Phase]) -> Callable[[Trigger], None]:
    original = session._go

    def go(trigger: Trigger) -> None:
        original(trigger)
        into.append(session.phase)

    return go


def test_a_real_session_pair_moves_through_the_table_only() -> None:
    """The phases a real session pair goes through are the happy paths of the table."""
    seen: dict[str, list[Phase]] = {"client": [], "server": []}
    pair = Pair(client_changes=_adds(30, "c"), server_changes=_adds(30, "s"), max_msg_size=4000)
    for name, session in (("client", pair.client), ("server", pair.server)):
        session._go = _recording(session, seen[name])  # type: ignore[method-assign]
    pair.run()
    assert pair.complete == {"client": True, "server": True}
    assert seen["client"][0] is P.ALERTED and seen["client"][-1] is P.DONE
    assert seen["server"][0] is P.WAIT_ACCEPT and seen["server"][-1] is P.DONE
    assert seen["server"].count(P.NEED_RESULTS) > 1  # package 3 came over several messages
    assert seen["client"].count(P.NEED_RESULTS) > 1  # and package 4 too
    for role, name in ((Role.CLIENT, "client"), (Role.SERVER, "server")):
        steps = zip([P.INIT, *seen[name]], seen[name], strict=False)
        assert all(dst in TRANSITIONS[role][src].values() for src, dst in steps)


def test_no_code_sets_a_phase_but_the_one_function() -> None:
    """Rule 1 of gitsync/protocol/phases.py, checked on the source: ``.phase =`` appears only in
    SessionBase.__init__ (the start) and SessionBase._go (every move)."""
    root = Path(phases.__file__).resolve().parents[1]
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef):
                continue
            for node in ast.walk(func):
                targets = node.targets if isinstance(node, ast.Assign) else []
                if isinstance(node, ast.AnnAssign | ast.AugAssign):
                    targets = [node.target]
                for target in targets:
                    if isinstance(target, ast.Attribute) and target.attr == "phase":
                        found.append(f"{path.relative_to(root)}:{func.name}")
    assert found == ["protocol/session.py:__init__", "protocol/session.py:_go"]
