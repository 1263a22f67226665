"""The REST API on the shipped model: a song end to end, files, cancel, restart, a crashed job."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf
import torch
from fastapi.testclient import TestClient

from openjukebox import api
from openjukebox.codes import CodesFile
from openjukebox.models import default_model
from openjukebox.sampling.bundle import Bundle
from openjukebox.sampling.song import song_lengths
from openjukebox.serve import jobs as jobs_module
from openjukebox.serve.app import create_app
from openjukebox.serve.jobs import JobRequest, JobStore

from .conftest import SONG, finish, wait_for

CONFIGS = Bundle(default_model()).configs
N_AUDIO, TOTALS = song_lengths(CONFIGS, 1.0)


def test_progress_streams_every_level_up_to_its_total(song):
    events = song["events"]
    assert [e["status"] for e in events][:1] in (["queued"], ["running"]) and events[-1]["status"] == "done"
    for level, total in TOTALS.items():
        counts = [e["progress"][str(level)]["done"] for e in events if str(level) in e["progress"]]
        assert counts == sorted(counts) and counts[-1] == total  # it only grows, and ends at the level's codes
        assert song["job"]["progress"][str(level)]["total"] == total
        assert song["job"]["progress"][str(level)]["tokens_per_s"] > 0
    assert song["job"]["files"] == {str(lv): [f"level_{lv}_sample_0.wav"] for lv in (2, 1, 0)}


def test_the_song_files_download_and_agree(client, song):
    base = f"/api/jobs/{song['job']['id']}/files"
    wav = client.get(f"{base}/level_0_sample_0.wav")
    assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav"
    audio, rate = sf.read(io.BytesIO(wav.content))
    assert rate == 22050 and len(audio) == N_AUDIO  # 1 s rounded up to whole top-level codes
    assert 22050 <= len(audio) < 22050 + CONFIGS[2].hop_length
    flac, flac_rate = sf.read(io.BytesIO(client.get(f"{base}/level_0_sample_0.flac").content))
    assert flac_rate == rate and np.allclose(flac, audio, atol=1e-4)
    codes = CodesFile.load(_saved(client.get(f"{base}/codes.codes").content))
    assert {lv: c.shape for lv, c in codes.codes.items()} == {lv: (1, t) for lv, t in TOTALS.items()}
    decoded = api.decode(codes, 0, default_model() / "vqvae", device="cpu")[0]
    assert np.abs(decoded - audio).max() < 1e-3  # the WAV is the decoded codes (16-bit rounding)
    lrc = client.get(f"{base}/sample_0.lrc").text
    assert "danket" in lrc and lrc.startswith("[00:00.")
    words = client.get(f"{base}/sample_0.json").json()["words"]
    assert [w["word"] for w in words] == ["Nun", "danket", "alle", "Gott"]
    assert client.get(f"{base}/metadata.json").json()["seed"] == SONG["seed"]
    assert client.get(f"{base}/sample_0.png").content[:4] == b"\x89PNG"


def _saved(data: bytes):
    import tempfile

    path = tempfile.NamedTemporaryFile(suffix=".codes", delete=False).name
    with open(path, "wb") as f:
        f.write(data)
    return path


def test_listing_model_and_openapi(client, song):
    listed = client.get("/api/jobs").json()
    assert song["job"]["id"] in [j["id"] for j in listed]
    model = client.get("/api/model").json()
    assert "joseph_haydn" in model["artists"] and "piano" in model["genres"]
    timing = CONFIGS[2].labels  # the song lengths the shipped top prior can time
    assert (model["min_seconds"], model["max_seconds"]) == (timing.min_duration, timing.max_duration)
    assert JobRequest(seconds=model["max_seconds"] - 1).seconds == model["max_seconds"] - 1  # the API takes them
    assert "a" in model["lyric_characters"]
    paths = client.get("/api/openapi.json").json()["paths"]
    assert {"/api/jobs", "/api/jobs/{job_id}", "/api/jobs/{job_id}/cancel", "/api/uploads"} <= set(paths)


def test_cancel_a_queued_and_a_running_job(client):
    running = client.post("/api/jobs", json={**SONG, "seconds": 4}).json()
    queued = client.post("/api/jobs", json={**SONG, "top_only": True}).json()
    assert client.post(f"/api/jobs/{queued['id']}/cancel").json()["status"] == "cancelled"
    wait_for(lambda: client.get(f"/api/jobs/{running['id']}").json()["progress"], "the first tokens")
    client.post(f"/api/jobs/{running['id']}/cancel")
    job = finish(client, running["id"])
    assert job["status"] == "cancelled" and job["error"] == "cancelled" and "0" not in job["files"]
    assert finish(client, queued["id"])["status"] == "cancelled"  # the worker skipped it
    after = client.post("/api/jobs", json={**SONG, "top_only": True}).json()
    assert finish(client, after["id"])["status"] == "done"  # and the queue goes on


def test_a_job_resumes_after_a_restart_with_the_codes_of_an_unbroken_run(tmp_path, song, client):
    first = JobStore(default_model(), tmp_path)
    job = first.submit(jobs_module.JobRequest(**SONG))
    window = CONFIGS[1].n_ctx  # level 1's first window
    wait_for(lambda: first.progress.get(job["id"], {}).get("1", {}).get("done", 0) >= window, "a level-1 window")
    first.close()  # the server stops after that window, before the song is finished
    stopped = first.get(job["id"])
    assert stopped["status"] == "queued" and "0" not in stopped["files"] and "2" in stopped["files"]
    saved = CodesFile.load(tmp_path / "jobs" / job["id"] / "out" / "codes.codes").codes
    assert saved[2].shape[1] == TOTALS[2] and saved[1].shape[1] >= window
    assert 0 not in saved or saved[0].shape[1] < TOTALS[0]
    second = JobStore(default_model(), tmp_path)  # restart: the job is queued again and resumes
    try:
        resumed = finish(TestClient(create_app(second)), job["id"])
    finally:
        second.close()
    assert resumed["status"] == "done"
    unbroken = CodesFile.load(_saved(client.get(f"/api/jobs/{song['job']['id']}/files/codes.codes").content))
    again = CodesFile.load(tmp_path / "jobs" / job["id"] / "out" / "codes.codes")
    for level in TOTALS:
        assert torch.equal(again.codes[level], unbroken.codes[level])


def test_a_crashed_job_is_failed_with_its_reason_and_the_server_goes_on(client, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("the sampler broke\nhere")

    monkeypatch.setattr(jobs_module.api, "sample", crash)
    job = finish(client, client.post("/api/jobs", json={**SONG, "top_only": True}).json()["id"])
    assert job["status"] == "failed" and job["error"] == "the sampler broke here"
    monkeypatch.undo()
    job = finish(client, client.post("/api/jobs", json={**SONG, "top_only": True}).json()["id"])
    assert job["status"] == "done" and job["files"] == {"2": ["level_2_sample_0.wav"]}


def test_primed_on_an_uploaded_song(client, song):
    wav = client.get(f"/api/jobs/{song['job']['id']}/files/level_0_sample_0.wav").content
    upload = client.post("/api/uploads", files={"file": ("prompt.wav", wav, "audio/wav")})
    assert upload.status_code == 201, upload.text
    request = {**SONG, "top_only": True, "prompt_upload": upload.json()["upload"], "prompt_seconds": 0.5}
    job = finish(client, client.post("/api/jobs", json=request).json()["id"])
    assert job["status"] == "done", job["error"]
    codes = CodesFile.load(_saved(client.get(f"/api/jobs/{job['id']}/files/codes.codes").content)).codes[2]
    prompt = api.encode(_saved_wav(wav), default_model() / "vqvae", levels=[2], device="cpu").codes[2]
    kept = int(0.5 * 22050) // CONFIGS[2].hop_length
    assert torch.equal(codes[0, :kept], prompt[0, :kept])  # the song continues after the prompt's codes


def _saved_wav(data: bytes):
    import tempfile

    path = tempfile.NamedTemporaryFile(suffix=".wav", delete=False).name
    with open(path, "wb") as f:
        f.write(data)
    return path


def test_co_composer_keep_and_extend(client):
    round_1 = {**SONG, "top_only": True, "n_samples": 2, "label_seconds": 2}
    candidates = finish(client, client.post("/api/jobs", json=round_1).json()["id"])
    assert candidates["files"] == {"2": ["level_2_sample_0.wav", "level_2_sample_1.wav"]}
    extend = {**round_1, "seconds": 2, "source_job": candidates["id"], "source_sample": 1, "seed": 8}
    longer = finish(client, client.post("/api/jobs", json=extend).json()["id"])
    assert longer["status"] == "done", longer["error"]
    first = CodesFile.load(_saved(client.get(f"/api/jobs/{candidates['id']}/files/codes.codes").content)).codes[2]
    second = CodesFile.load(_saved(client.get(f"/api/jobs/{longer['id']}/files/codes.codes").content)).codes[2]
    n1, n2 = TOTALS[2], song_lengths(CONFIGS, 2.0)[1][2]
    assert second.shape == (2, n2)
    assert torch.equal(second[:, :n1], first[1:2].expand(2, -1))  # both candidates continue the kept one
    assert not torch.equal(second[0, n1:], second[1, n1:])


def test_re_render_a_finished_song_with_another_artist(client, song):
    request = {"source_job": song["job"]["id"], "artist": "johann_sebastian_bach", "genre": "organ", "seed": 9}
    job = finish(client, client.post("/api/jobs", json=request).json()["id"])
    assert job["status"] == "done", job["error"]
    meta = client.get(f"/api/jobs/{job['id']}/files/metadata.json").json()
    assert meta["mode"] == "upsample" and meta["seconds"] == N_AUDIO / 22050
    assert meta["labels"]["1"][0][3] != song_labels(client, song)["1"][0][3]  # level 1 sampled for another artist
    before = CodesFile.load(_saved(client.get(f"/api/jobs/{song['job']['id']}/files/codes.codes").content)).codes
    after = CodesFile.load(_saved(client.get(f"/api/jobs/{job['id']}/files/codes.codes").content)).codes
    assert torch.equal(after[2], before[2])  # the same top level
    assert after[1].shape == before[1].shape and not torch.equal(after[1], before[1])  # new levels below it


def song_labels(client, song) -> dict:
    return client.get(f"/api/jobs/{song['job']['id']}/files/metadata.json").json()["labels"]


def test_a_job_samples_the_upsampled_levels_in_segments(client, song):
    request = {k: SONG[k] for k in ("artist", "genre", "seed")} | {"source_job": song["job"]["id"], "segments": 4}
    request["guidance"] = [3, 1.5, 1]  # one per level from the top down
    request["temperature"] = [0.99, 0.9, 0.8]
    job = finish(client, client.post("/api/jobs", json=request).json()["id"])
    assert job["status"] == "done", job["error"]
    meta = client.get(f"/api/jobs/{job['id']}/files/metadata.json").json()
    assert {lv: meta["settings"][lv]["segments"] for lv in ("1", "0")} == {"1": 4, "0": 4}
    assert {lv: meta["settings"][lv]["guidance"] for lv in ("1", "0")} == {"1": 1.5, "0": 1.0}
    assert {lv: meta["settings"][lv]["temperature"] for lv in ("1", "0")} == {"1": 0.9, "0": 0.8}
    before = CodesFile.load(_saved(client.get(f"/api/jobs/{song['job']['id']}/files/codes.codes").content)).codes
    after = CodesFile.load(_saved(client.get(f"/api/jobs/{job['id']}/files/codes.codes").content)).codes
    assert torch.equal(after[2], before[2])
    # the same seed and labels, level 0 (2,756 codes) in stretches side by side: other codes
    assert after[0].shape == before[0].shape and not torch.equal(after[0], before[0])
