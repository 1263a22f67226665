"""Every bad request gets a 4xx with a one-line reason; no path a client names is ever read."""

from __future__ import annotations

import pytest

from openjukebox.serve.jobs import MAX_UPLOAD_BYTES

from .conftest import SONG, SPAN

# (method, url, JSON body, status, words of the reason); {job} is a finished job's id
CASES = [
    ("post", "/api/jobs", {"seconds": -1}, 422, "seconds: Input should be greater than 0"),
    ("post", "/api/jobs", {"seconds": 0.5}, 400, SPAN),
    ("post", "/api/jobs", {"seconds": 1000}, 422, "seconds"),
    ("post", "/api/jobs", {"seconds": 1, "artist": "Nobody"}, 400, "unknown artist 'Nobody'"),
    ("post", "/api/jobs", {"seconds": 1, "genre": "polka"}, 400, "genre"),
    ("post", "/api/jobs", {"seconds": 1, "temperature": 0}, 422, "temperature"),
    ("post", "/api/jobs", {"seconds": 1, "n_samples": 0}, 422, "n_samples"),
    ("post", "/api/jobs", {"seconds": 1, "n_samples": 99}, 422, "n_samples"),
    ("post", "/api/jobs", {"seconds": 1, "seed": -3}, 422, "seed"),
    ("post", "/api/jobs", {"seconds": 1, "segments": 0}, 422, "segments: Input should be greater than or equal to 1"),
    ("post", "/api/jobs", {"seconds": 1, "segments": 65}, 422, "segments: Input should be less than or equal to 64"),
    ("post", "/api/jobs", {"seconds": 1, "guidance": 0}, 422, "guidance"),
    ("post", "/api/jobs", {"seconds": 1, "guidance": [3, 1]}, 400, "2 guidance values for a bundle of 3 levels"),
    ("post", "/api/jobs", {"seconds": 1, "guidance": [3, 0, 1]}, 422, "guidance"),
    ("post", "/api/jobs", {"seconds": 1, "temperature": [0.99, 0.9]}, 400, "2 temperature values for a bundle of 3"),
    ("post", "/api/jobs", {"seconds": 1, "temperature": [0.99, 0, 0.9]}, 422, "temperature"),
    ("post", "/api/jobs", {"seconds": 1, "out": "/tmp/x"}, 422, "out: Extra inputs are not permitted"),
    ("post", "/api/jobs", {"seconds": 1, "lyrics": "日本語"}, 400, "no character this model can sing"),
    ("post", "/api/jobs", {"seconds": 1, "lyrics": "[00:05.00]too late"}, 400, "lyrics"),
    ("post", "/api/jobs", {}, 400, "say how long the song should be"),
    ("post", "/api/jobs", {"seconds": 1, "source_job": "../../etc"}, 422, "source_job"),
    ("post", "/api/jobs", {"seconds": 1, "source_job": "0123456789ab"}, 404, "no job '0123456789ab'"),
    ("post", "/api/jobs", {"source_job": "{job}", "source_sample": 3}, 400, "has samples 0 to 0, not 3"),
    ("post", "/api/jobs", {"seconds": 1, "prompt_upload": "../../etc/passwd"}, 422, "prompt_upload"),
    ("post", "/api/jobs", {"seconds": 1, "prompt_upload": "0123456789ab.wav"}, 400, "no upload"),
    ("get", "/api/jobs/nope", None, 404, "no job 'nope'"),
    ("get", "/api/jobs/..%2F..%2Fetc", None, 404, ""),
    ("post", "/api/jobs/0123456789ab/cancel", None, 404, "no job"),
    ("get", "/api/jobs/{job}/files/..%2Fjob.json", None, 404, ""),
    ("get", "/api/jobs/{job}/files/%2e%2e", None, 400, "no file named '..'"),
    ("get", "/api/jobs/{job}/files/%2Fetc%2Fpasswd", None, 404, ""),
    ("get", "/api/jobs/{job}/files/job.json", None, 400, "no file named 'job.json'"),
    ("get", "/api/jobs/{job}/files/level_0_sample_5.wav", None, 404, "is not ready"),
    ("get", "/api/jobs/{job}/files/sample_1.lrc", None, 404, "is not ready"),
    ("get", "/api/jobs/..%2F..%2F..%2Fetc/files/passwd", None, 404, ""),
]


@pytest.mark.parametrize(("method", "url", "body", "status", "reason"), CASES, ids=[f"{c[0]} {c[1]}" for c in CASES])
def test_a_bad_request_gets_a_one_line_reason(client, song, method, url, body, status, reason):
    job = song["job"]["id"]
    if body is not None:
        body = {k: v.replace("{job}", job) if isinstance(v, str) else v for k, v in body.items()}
    response = getattr(client, method)(url.replace("{job}", job), **({"json": body} if body is not None else {}))
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and reason in detail
    assert "root:" not in response.text and "Traceback" not in response.text


def test_a_malformed_body_is_refused(client):
    response = client.post("/api/jobs", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422 and "JSON" in response.json()["detail"]


def test_a_queued_source_is_refused(client, song):
    queued = client.post("/api/jobs", json={**SONG, "seconds": 3, "top_only": True}).json()
    response = client.post("/api/jobs", json={"source_job": queued["id"]})
    client.post(f"/api/jobs/{queued['id']}/cancel")
    assert response.status_code == 400 and "is not finished" in response.json()["detail"]


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("notes.txt", b"RIFF....WAVE", "upload a .wav, .flac, .ogg, .opus or .mp3 file"),
        ("song.wav", b"this is not audio at all", "not usable audio"),
        ("song.flac", b"", "not usable audio"),
        ("big.wav", b"\0" * (MAX_UPLOAD_BYTES + 1), "over 20 MB"),
    ],
)
def test_a_bad_upload_is_refused(client, name, data, reason):
    response = client.post("/api/uploads", files={"file": (name, data, "application/octet-stream")})
    assert response.status_code == 400 and reason in response.json()["detail"], response.text


def test_a_missing_upload_field_is_refused(client):
    response = client.post("/api/uploads", data={"x": "1"})
    assert response.status_code == 422 and "file" in response.json()["detail"]
