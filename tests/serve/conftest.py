"""A job store on the shipped model, and helpers to wait for its jobs (a condition, never a sleep)."""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("fastapi", reason="the serve tests need openjukebox[serve]")
pytest.importorskip("gradio", reason="the serve tests need openjukebox[serve]")

from fastapi.testclient import TestClient  # noqa: E402

from openjukebox.models import default_model  # noqa: E402
from openjukebox.sampling.bundle import Bundle  # noqa: E402
from openjukebox.serve.app import create_app  # noqa: E402
from openjukebox.serve.jobs import FINISHED, JobStore  # noqa: E402

SONG = {"seconds": 1, "seed": 7, "artist": "joseph_haydn", "genre": "piano", "lyrics": "Nun danket alle Gott"}
WAIT_S = 300  # a bound on a stuck job, not a timing: jobs take seconds
TIMED = Bundle(default_model()).configs[2].labels  # the song lengths the shipped top prior can time
SPAN = f"from {TIMED.min_duration:g} s to under {TIMED.max_duration:g} s"  # as the model's messages say them


def wait_for(condition, what: str):
    """Poll ``condition()`` until it returns something true; fail after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def finish(client: TestClient, job_id: str) -> dict:
    """The job once it is done, failed or cancelled."""
    return wait_for(lambda: (j := client.get(f"/api/jobs/{job_id}").json())["status"] in FINISHED and j, job_id)


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    store = JobStore(default_model(), tmp_path_factory.mktemp("serve"))
    yield store
    store.close()


@pytest.fixture(scope="session")
def client(store) -> TestClient:
    return TestClient(create_app(store))


@pytest.fixture(scope="session")
def song(client) -> dict:
    """One finished 1-second song with lyrics, and every server-sent event its job sent."""
    job = client.post("/api/jobs", json=SONG)
    assert job.status_code == 201, job.text
    events = []
    with client.stream("GET", f"/api/jobs/{job.json()['id']}/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    assert events[-1]["status"] == "done", events[-1]
    return {"job": events[-1], "events": events}
