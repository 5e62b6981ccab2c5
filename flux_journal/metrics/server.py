"""The exporter's HTTP side: GET /metrics (and a short page at /).

Runs in threads of its own: the server's accept loop in one, each
connection in another (daemon) thread with a socket timeout, so a
client that is slow, stalls, or sends garbage costs one short-lived
thread and never delays the journal readers or other clients.  Every
other path is 404, every other method 405; a malformed request gets the
standard library's 400.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional, Tuple, Type

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

__all__ = ["CLIENT_TIMEOUT", "MetricsServer", "parse_listen"]

#: Seconds a connection may stay silent (while sending its request)
#: before the server drops it.
CLIENT_TIMEOUT = 10.0

_INDEX = b"""<!DOCTYPE html>
<html><head><title>flux-journal metrics</title></head>
<body><h1>flux-journal metrics</h1>
<p>Prometheus metrics of a Flux instance, from its journals: <a href="/metrics">/metrics</a></p>
</body></html>
"""


def parse_listen(text: str) -> Tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:9464`` for IPv6) into (host, port).

    Raises:
        ValueError: *text* is not HOST:PORT with a port in 0..65535
    """
    host, colon, port = text.rpartition(":")
    if not colon or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT, such as 127.0.0.1:9464: {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def _handler_class(registry: CollectorRegistry) -> Type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        """Serves GET /metrics and GET / only."""

        timeout = CLIENT_TIMEOUT
        server_version = "flux-journal-metrics"
        error_content_type = "text/plain; charset=utf-8"
        error_message_format = "%(code)d %(message)s\n"

        def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
            """Answer GET: the metrics, the index page, or 404."""
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                self._reply(200, content_type, encoder(registry))
            elif path == "/":
                self._reply(200, "text/html; charset=utf-8", _INDEX)
            else:
                self.send_error(404, "only /metrics is served here")

        def _reply(self, code: int, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _not_allowed(self) -> None:
            self.send_error(405, "only GET is served here")

        do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _not_allowed

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            """Stay quiet: one line per scrape would drown real messages."""

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # closing the server does not wait for a stalled client's thread
    block_on_close = False
    allow_reuse_address = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that vanished mid-request is no news."""


class _Server6(_Server):
    address_family = socket.AF_INET6


class MetricsServer:
    """An HTTP server exposing *registry* on (host, port), in a thread.

    Raises:
        OSError: the address cannot be bound (in use, not local, ...)
    """

    def __init__(self, host: str, port: int, registry: CollectorRegistry) -> None:
        server_class = _Server6 if ":" in host else _Server
        self._server: _Server = server_class((host, port), _handler_class(registry))
        self._thread: Optional[threading.Thread] = None

    @property
    def address(self) -> Tuple[str, int]:
        """The (host, port) bound (the port chosen when 0 was asked)."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> "MetricsServer":
        """Serve from a daemon thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
            name="metrics-http", daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and close the listening socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5.0)
        self._server.server_close()
