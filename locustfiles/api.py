import reliability.plugin  # noqa: F401

# isort: split
# Template: the reference target's HTTP API with a bearer token (copy and edit).
#   locust -f locustfiles/api.py --headless -u 50 -r 10 -t 2m --host http://127.0.0.1:8080
# Credentials: RELIABILITY_API_USER / RELIABILITY_API_PASSWORD (default demo / demo).
import os
import random

from locust import between, task

from reliability.users.http import ApiUser

LIST_LIMIT = int(os.environ.get("RELIABILITY_API_LIST_LIMIT", "20"))


class ApiShopper(ApiUser):
    """Browses, reads (cache-aside: X-Cache goes into the sample's context) and edits items."""

    wait_time = between(0.1, 0.5)

    def on_start(self) -> None:
        super().on_start()
        self.item_ids: list[int] = []
        self.mine: list[int] = []

    @task(5)
    def list_items(self) -> None:
        response = self.call("GET", f"/api/items?limit={LIST_LIMIT}", name="/api/items")
        if response.status_code == 200:
            self.item_ids = [item["id"] for item in response.json()["items"]]

    @task(8)
    def get_item(self) -> None:
        known = self.mine + self.item_ids
        if not known:
            return self.list_items()
        item_id = random.choice(known)
        with self.call("GET", f"/api/items/{item_id}", name="/api/items/{id}", catch_response=True) as response:
            response.request_meta["context"]["cache"] = response.headers.get("X-Cache", "none")
            if response.status_code == 404 and item_id not in self.mine:
                response.success()  # another user deleted it: not the target's fault
                self.item_ids.remove(item_id)

    @task(2)
    def create_item(self) -> None:
        body = {"name": f"item-{random.randrange(1_000_000)}", "value": random.random() * 100}
        response = self.call("POST", "/api/items", name="/api/items [create]", json=body)
        if response.status_code == 201:
            self.mine.append(response.json()["id"])

    @task(1)
    def update_item(self) -> None:
        if self.mine:
            item_id = random.choice(self.mine)
            self.call("PUT", f"/api/items/{item_id}", name="/api/items/{id} [update]",
                      json={"name": f"item-{item_id}", "value": random.random() * 100})

    @task(1)
    def delete_item(self) -> None:
        if len(self.mine) > 5:
            self.call("DELETE", f"/api/items/{self.mine.pop(0)}", name="/api/items/{id} [delete]")

    @task(1)
    def report(self) -> None:
        self.call("GET", "/api/report", name="/api/report")
