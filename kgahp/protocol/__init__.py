"""The GAHP protocol layer: line syntax, reply formats, the server loop, stdout discipline.

Knows nothing of Kubernetes or ClassAd meaning; the service layer plugs in through `Handlers`.
"""

from __future__ import annotations

from kgahp.protocol.escaping import LineReader, OversizeLine, encode_line, escape_token, split_line
from kgahp.protocol.server import GahpServer, Handlers, banner, serve, write_banner
from kgahp.protocol.stdout import claim_stdout

__all__ = [
    "GahpServer",
    "Handlers",
    "LineReader",
    "OversizeLine",
    "banner",
    "claim_stdout",
    "encode_line",
    "escape_token",
    "serve",
    "split_line",
    "write_banner",
]
