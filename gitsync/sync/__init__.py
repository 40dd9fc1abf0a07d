"""The pure sync core, the same for client and server: decisions as data, no Git, no HTTP, no files.

- :mod:`~gitsync.sync.plan`: ``plan_outgoing`` turns the diff since the synced tree, the ids the
  peer knows and the mode into outgoing steps (plan, then run: the drivers in ``app/`` run them);
- :mod:`~gitsync.sync.state`: ``PeerState``, what is remembered about a peer, with ``load``/``dump``;
- :mod:`~gitsync.sync.payload`: ``Wire``, how a note travels to one peer and back;
- :mod:`~gitsync.sync.ledger`: a session's edits and the ``Effect`` of each change awaiting an answer;
- :mod:`~gitsync.sync.report`: ``SyncReport``, the counts (counted there only) and the commit trailers;
- :mod:`~gitsync.sync.conflict`: the outcome of a conflict per policy;
- :mod:`~gitsync.sync.devinf`, :mod:`~gitsync.sync.ids`: our DevInf, the ids we make.
"""
