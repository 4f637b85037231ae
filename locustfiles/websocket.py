import reliability.plugin  # noqa: F401

# isort: split
# Template: the reference target's /ws (copy and edit).
#   RELIABILITY_WS_URL=ws://127.0.0.1:8080/ws locust -f locustfiles/websocket.py --headless -u 50 -t 2m
# RELIABILITY_WS_PUSH_MS sets the server push interval each user subscribes to.
import os
import random

from locust import between, task

from reliability.users.websocket import WebSocketUser

PUSH_MS = float(os.environ.get("RELIABILITY_WS_PUSH_MS", "500"))


class WsUser(WebSocketUser):
    """Holds a connection with server pushes, echoes messages and now and then broadcasts."""

    wait_time = between(0.2, 1.0)

    def on_start(self) -> None:
        super().on_start()
        self.subscribe(interval_ms=PUSH_MS)

    @task(10)
    def echo_message(self) -> None:
        self.echo({"n": random.randrange(1000), "text": "hello"})

    @task(1)
    def broadcast_message(self) -> None:
        self.broadcast({"from": id(self)})
