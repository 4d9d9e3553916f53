"""A bug in a handler is a logged 500 problem with its trace id, and the client's keep-alive
connection stays usable for its next request (it used to be closed without a word)."""

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI

from clinic.devstack.components import free_port
from clinic.platform.problem_handlers import install_problem_handlers
from clinic.platform.telemetry import create_tracer_provider, instrument_http


@pytest.fixture
def server() -> Iterator[int]:
    app = FastAPI()
    install_problem_handlers(app)
    instrument_http(app, create_tracer_provider("probe", ""))

    @app.get("/bug")
    def bug() -> None:
        raise RuntimeError("a bug")

    @app.get("/fine")
    def fine() -> dict[str, str]:
        return {"status": "fine"}

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None)
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    yield port
    running.should_exit = True
    thread.join(timeout=10)


def exchange(sock: socket.socket, path: str) -> tuple[int, dict[str, str], bytes]:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: probe\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    return int(lines[0].split()[1]), headers, body


def test_a_bug_is_a_500_problem_with_a_trace_id_and_the_connection_stays_usable(
    server: int,
) -> None:
    with socket.create_connection(("127.0.0.1", server), timeout=10) as sock:
        status, headers, body = exchange(sock, "/bug")
        assert status == 500
        assert headers["content-type"] == "application/problem+json"
        assert headers.get("connection", "keep-alive") != "close"
        problem = json.loads(body)
        assert problem["type"].endswith("/internal-error")
        assert len(problem["trace_id"]) == 32
        assert problem["trace_id"] in problem["detail"]

        status, _, body = exchange(sock, "/fine")  # the same connection
        assert (status, json.loads(body)) == (200, {"status": "fine"})
