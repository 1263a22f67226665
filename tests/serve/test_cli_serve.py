"""``openjukebox serve`` as a user starts it: the shipped model, a loopback port, Ctrl-C to stop."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from openjukebox.cli.main import main

pytest.importorskip("gradio", reason="openjukebox serve needs openjukebox[serve]")


def test_serve_starts_on_the_shipped_model_answers_and_stops_on_ctrl_c(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "openjukebox", "serve", "--port", str(port), "--work", str(tmp_path / "jobs")]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        model = None
        deadline = time.monotonic() + 300  # a bound on a stuck start, not a timing
        while model is None and server.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/model") as response:
                    model = json.load(response)
            except OSError:
                time.sleep(0.2)
        assert model is not None, server.communicate(timeout=30)
        assert Path(model["path"]).name == "default" and "piano" in model["genres"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as response:
            assert "gradio" in response.read().decode().lower()
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=60)
    assert server.returncode == 0, err
    assert f"http://127.0.0.1:{port}/" in out and (tmp_path / "jobs" / "jobs").is_dir()


@pytest.mark.parametrize("port", ["0", "70000", "http"])
def test_serve_refuses_a_bad_port(port, capsys):
    assert main(["serve", "--port", port]) == 2
    assert "--port" in capsys.readouterr().err
