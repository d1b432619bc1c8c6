"""Run the emulator with uvicorn: in a background thread (tests, --sandbox) or in the
foreground (`reconciler emulator serve`)."""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import uvicorn

from reconciler.emulator.app import create_app
from reconciler.emulator.core import SANDBOX, EmulatorConfig


class EmulatorServer:
    def __init__(self, data_dir: str | Path | None = None, config: EmulatorConfig | None = None,
                 host: str = "127.0.0.1", port: int = 0):
        self.host = host
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only then (40 ms per request otherwise)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:  # bound before the data is opened: a taken port (OSError) leaves nothing open
            self.sock.bind((host, port))
        except OSError:
            self.sock.close()
            raise
        self.port = self.sock.getsockname()[1]
        self.config = config or EmulatorConfig()
        self.app = create_app(data_dir, self.config)
        self.emulator = self.app.state.emulator
        self.url = f"http://{host}:{self.port}"
        self.emulator.base_url = self.url
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", access_log=False,
                                                     lifespan="off", timeout_keep_alive=30,
                                                     # a stalled request (fault injection) must not hold up a stop
                                                     timeout_graceful_shutdown=1))
        self._thread: threading.Thread | None = None

    def env(self) -> dict[str, str]:
        """The variables the providers and the official clients read."""
        return sandbox_env(self.url)

    def start(self) -> "EmulatorServer":
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self.sock]},
                                        daemon=True, name="emulator")
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the emulator did not start")
            time.sleep(0.01)
        return self

    def serve_forever(self) -> None:
        self._server.run(sockets=[self.sock])

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread:
            self._thread.join(timeout=10)
        self.sock.close()
        self.emulator.store.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def sandbox_env(url: str) -> dict[str, str]:
    return {
        "VALDI_ENDPOINT": url,
        "VALDI_EMAIL": SANDBOX["valdi_email"],
        "VALDI_PASSWORD": SANDBOX["valdi_password"],
        "VALOHAI_HOST": url,
        "VALOHAI_TOKEN": SANDBOX["valohai_token"],
        "VALOHAI_PROJECT": SANDBOX["valohai_project_id"],
        "CODEOCEAN_DOMAIN": url,
        "CODEOCEAN_TOKEN": SANDBOX["codeocean_token"],
    }
