"""The generated clips eval_model.py judges: sampled once into a folder per request, read back by
later runs with the same settings (the bundle's weights, guidance, temperature, length, count)."""

from __future__ import annotations

import json
from pathlib import Path

from openjukebox.api import sample
from openjukebox.checkpoint import model_id
from openjukebox.fileio import atomic_path
from openjukebox.sampling.bundle import Bundle

OLD_TEMPERATURE = {"temperature": 0.99}  # folders written before the temperature was a setting sampled at 0.99


def clip_settings(
    bundle: Path, seconds: float, clips: int, g: float | tuple[float, ...] | None, temperature: float | tuple = 0.99
) -> dict:
    """What identifies a request's clips besides its labels and seed: the bundle's models (by the
    hash of their weights), each level's guidance as sampling resolves it, the temperature, the
    length and count."""
    b = Bundle(bundle)
    return {
        "bundle": str(bundle.resolve()),
        "models": {str(lv): model_id(d) for lv, d in b.prior_dirs.items()} | {"vqvae": model_id(b.vqvae_dir)},
        "guidance_per_level": {str(lv): b.guidance(lv, g) for lv in b.prior_dirs},
        "seconds": seconds,
        "clips": clips,
        "guidance": list(g) if isinstance(g, tuple) else g,  # as clips.json reads back
        "temperature": list(temperature) if isinstance(temperature, tuple) else temperature,
    }


def kept_files(clips_dir: Path, guidance: str, level: int) -> list[Path]:
    """The audio files of ``level`` that ``clips_dir`` (an ``eval_model.py --clips-dir``) keeps for
    the guidance named ``guidance``, request by request."""
    files = []
    for done in sorted((clips_dir / f"guidance_{guidance}").glob("request_*/clips.json")):
        files += [done.parent / f for f in json.loads(done.read_text())["files"][str(level)]]
    return files


def sampled_clips(bundle: Path, folder: Path, settings: dict) -> dict[int, list[Path]]:
    """{level: [audio files]} of the clips ``settings`` (``clip_settings`` with the request's artist,
    genre and seed) describe, sampled into ``folder``; a folder that already holds them (an earlier
    run's, with the same settings) is read back instead of sampled."""
    done = folder / "clips.json"
    if done.exists():
        kept = json.loads(done.read_text())
        if OLD_TEMPERATURE | kept["settings"] != settings:
            raise SystemExit(f"{folder} holds clips of other settings ({kept['settings']}): use another --clips-dir")
        return {int(lv): [folder / f for f in files] for lv, files in kept["files"].items()}
    n, g, seed = settings["clips"], settings["guidance"], settings["seed"]
    meta = sample(
        bundle,
        folder,
        settings["seconds"],
        settings["artist"],
        settings["genre"],
        n,
        seed=seed,
        guidance=g,
        temperature=settings["temperature"],
    )
    files = {lv: [str(Path(f).resolve().relative_to(folder.resolve())) for f in fs] for lv, fs in meta["files"].items()}
    with atomic_path(done) as tmp:
        Path(tmp).write_text(json.dumps({"settings": settings, "files": files}))
    return {int(lv): [folder / f for f in fs] for lv, fs in files.items()}
