"""One module per peer job queue; see bench/system.py for the interface.

Each module defines its no-op and latency jobs at module level (the peer's worker
imports the module as ``bench.peers.<name>``) and one ``System`` subclass.
"""
