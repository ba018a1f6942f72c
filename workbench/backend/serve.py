"""The backend's process: `python -m workbench.backend.serve --project-dir DIR --port N [--config PATH]`.

Started detached by `workbench backend start` (`process`), never by hand. It reads its login from
`.workbench/backend/backend.json`, loads the current model before it listens (a model that cannot load is one
line in the log and exit code 4, no traceback), binds 127.0.0.1:N itself (a port taken meanwhile is exit code
98, so the starter can pick another), and serves the app with uvicorn until SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from pathlib import Path

import uvicorn

from workbench.backend.app import create_app
from workbench.backend.files import PORT_TAKEN, BackendFiles, log_to_stderr, read_login
from workbench.backend.served import ServedModel
from workbench.backend.training import Trainer
from workbench.errors import BackendError, WorkbenchError
from workbench.project import Project
from workbench.server.processes import LOOPBACK_IP

log = logging.getLogger("workbench.backend")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.backend.serve")
    parser.add_argument("--project-dir", type=Path, required=True)
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    log_to_stderr()
    try:
        project = Project.open(args.project_dir, args.config)
        login = read_login(BackendFiles.of(project))
        if login is None or login.port != args.port:
            raise BackendError(f"The backend's login for port {args.port} is missing. Start it with "
                               "`workbench backend start`.")  # fmt: skip
        served = ServedModel(project, args.config)
        loaded = served.current()  # loaded once, before the first request
        sock = _bind(args.port)
    except WorkbenchError as exc:
        log.error("error: %s", " ".join(str(exc).split()))
        return exc.exit_code
    except OSError as exc:
        log.error("error: port %d on %s cannot be used (%s)", args.port, LOOPBACK_IP, exc.strerror)
        return PORT_TAKEN
    log.info("model backend for %s serving %s on %s", project.root, loaded.version, login.url)
    app = create_app(served, Trainer(project, args.config), login)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def _bind(port: int) -> socket.socket:
    """The listening socket. Its protocol is named: asyncio sets TCP_NODELAY only on connections whose socket says
    IPPROTO_TCP, and without it every response's body waits ~40 ms for the client's delayed ACK (Nagle)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK_IP, port))
    sock.listen(128)
    return sock


if __name__ == "__main__":
    sys.exit(main())
