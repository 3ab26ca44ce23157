"""A local S3 API for tests and benchmarks: moto's standalone server on a free port, with a request log.

`S3Server` starts ``moto.server.ThreadedMotoServer`` (offline, in a thread of this process) and
wraps its WSGI application to count requests and bytes per HTTP method, and to answer
``403 AccessDenied`` (S3's own XML error) for keys under a denied prefix, which is how a bucket
policy or IAM denial looks to a client. `environment` gives the variables a client process needs
(dummy credentials, ``AWS_ENDPOINT_URL``); subprocesses and Dask workers inherit them.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass, field

from moto.server import ThreadedMotoServer

DENIED = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
          b"<Message>Access Denied</Message></Error>")


@dataclass
class RequestLog:
    """Requests and bytes by HTTP method, counted at the server (every client process included)."""

    requests: Counter = field(default_factory=Counter)
    bytes_out: int = 0  # response bodies (what clients downloaded)
    bytes_in: int = 0  # request bodies (what clients uploaded)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.bytes_out = self.bytes_in = 0

    @property
    def total(self) -> int:
        return sum(self.requests.values())


class _Middleware:
    def __init__(self, app, log: RequestLog, denied_prefixes: list[str]) -> None:
        self.app, self.log, self.denied_prefixes = app, log, denied_prefixes

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        with self.log.lock:
            self.log.requests[environ["REQUEST_METHOD"]] += 1
            self.log.bytes_in += int(environ.get("CONTENT_LENGTH") or 0)
        if any(path.startswith(prefix) for prefix in self.denied_prefixes):
            start_response("403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(DENIED)))])
            return [DENIED]
        for chunk in self.app(environ, start_response):
            with self.log.lock:
                self.log.bytes_out += len(chunk)
            yield chunk


class S3Server:
    """``with S3Server() as server:`` a moto S3 endpoint at ``server.endpoint``."""

    def __init__(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.log = RequestLog()
        #: URL paths (``/bucket/key-prefix``) answered with 403 AccessDenied.
        self.denied_prefixes: list[str] = []
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)

    def start(self) -> "S3Server":
        self._server.start()
        wsgi = self._server._server  # werkzeug's server: wrap its application (counting, denials)
        wsgi.app = _Middleware(wsgi.app, self.log, self.denied_prefixes)
        return self

    def stop(self) -> None:
        self._server.stop()

    @property
    def endpoint(self) -> str:
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def environment(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": self.endpoint}

    def __enter__(self) -> "S3Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
