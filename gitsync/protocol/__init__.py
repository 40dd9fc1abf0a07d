"""Sans-I/O SyncML engine: messages in, messages out; no sockets, no git, no clock."""
