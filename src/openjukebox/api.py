"""The Python API behind the command line: everything the CLI does can be called from here."""

from __future__ import annotations

import json
import math
import numbers
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from . import __version__
from .audio.io import load_audio, save_audio
from .checkpoint import load_vqvae, model_id
from .codec.vqvae import VQVAE, decode_chunked, encode_chunked
from .codes import CodesFile
from .errors import UserError
from .fileio import atomic_path, remove_stale_temporaries

DEFAULT_CHUNK_SECONDS = 10.0


@dataclass(frozen=True)
class Progress:
    """How far one level's sampling is: tokens (summed over the songs) done of total, this call's
    rate in tokens per second and the estimated seconds left on the level (None before any rate)."""

    level: int
    done: int
    total: int
    tokens_per_s: float | None
    eta_s: float | None


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _bar(total: int, desc: str, show: bool) -> tqdm:
    return tqdm(total=total, desc=desc, unit="sample", unit_scale=True, disable=not show, leave=False)


def encode(
    audio_path: str | os.PathLike,
    model_dir: str | os.PathLike,
    levels: list[int] | None = None,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> CodesFile:
    """Encode an audio file to codes at ``levels`` (default all) with the VQ-VAE in ``model_dir``.

    The audio is resampled to the model's rate, mixed to mono, zero-padded to a multiple of the
    top hop, and encoded in chunks at constant memory.
    """
    device = torch.device(device) if device else default_device()
    model = load_vqvae(model_dir, device)
    cfg = model.config
    levels = list(range(cfg.levels)) if levels is None else levels
    for lv in levels:
        if not 0 <= lv < cfg.levels:
            raise UserError(f"level {lv} does not exist in {model_dir}; give --levels from 0 to {cfg.levels - 1}")
    audio = load_audio(audio_path, cfg.sample_rate, allow_silent=True)
    n = audio.shape[0]
    top_hop = max(cfg.hop_lengths[lv] for lv in levels)
    padded = np.zeros(-(-n // top_hop) * top_hop, dtype=np.float32)
    padded[:n] = audio
    x = torch.from_numpy(padded).to(device).view(1, 1, -1)
    chunk = int(chunk_seconds * cfg.sample_rate)
    codes = {}
    for lv in levels:
        with _bar(x.shape[-1], f"encode level {lv}", progress) as bar:
            codes[lv] = encode_chunked(model, x, lv, chunk, bar.update).cpu()
    return CodesFile(
        codes=codes,
        sample_rate=cfg.sample_rate,
        n_samples=n,
        hop_lengths=cfg.hop_lengths,
        model={"kind": "vqvae", "path": str(Path(model_dir).resolve()), "id": model_id(model_dir)},
        extra={"source": str(audio_path)},
    )


def resolve_codec(codes: CodesFile, model_dir: str | os.PathLike | None) -> Path:
    """The VQ-VAE folder to decode ``codes`` with: ``model_dir``, else the one the codes record.

    Fails when the chosen model is not the one that made the codes (their weights differ).
    """
    recorded = codes.model.get("path")
    path = Path(model_dir) if model_dir else (Path(recorded) if recorded else None)
    if path is None:
        raise ValueError("these codes record no model; pass --model with the VQ-VAE that made them")
    if not path.exists():
        raise ValueError(f"the VQ-VAE {path} is not there; pass --model with the VQ-VAE that made these codes")
    if codes.model.get("id") and model_id(path) != codes.model["id"]:
        raise ValueError(
            f"{path} is not the VQ-VAE that made these codes (weights id {model_id(path)} vs "
            f"{codes.model['id']}); pass --model with the right one"
        )
    return path


def decode(
    codes: CodesFile,
    level: int,
    model_dir: str | os.PathLike | None = None,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    device: str | torch.device | None = None,
    progress: bool = False,
    model: VQVAE | None = None,
) -> np.ndarray:
    """Decode one level of a codes file to audio: float32 (N, T) at ``codes.sample_rate``."""
    if level not in codes.codes:
        levels = ", ".join(map(str, sorted(codes.codes)))
        raise UserError(f"the codes file has levels {levels}, not level {level}; give one of them")
    device = torch.device(device) if device else default_device()
    model = model or load_vqvae(resolve_codec(codes, model_dir), device)
    z = codes.codes[level].to(device)
    chunk = int(chunk_seconds * codes.sample_rate)
    with _bar(z.shape[1] * codes.hop_lengths[level], f"decode level {level}", progress) as bar:
        audio = decode_chunked(model, z, level, chunk, bar.update)
    return audio[:, 0, : codes.n_samples].cpu().numpy()


def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> list[Path]:
    """Write (N, T) audio: one file, or ``name_{i}.ext`` per item when N > 1."""
    path = Path(path)
    if audio.shape[0] == 1:
        return [save_audio(path, audio[0], sample_rate)]
    return [save_audio(path.with_stem(f"{path.stem}_{i}"), a, sample_rate) for i, a in enumerate(audio)]


def sample(
    model_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    seconds: float | None,
    artist: str | None = None,
    genre: str | None = None,
    n_samples: int = 1,
    lowest: int | None = None,
    temperature: float | Sequence[float] = 0.99,
    top_k: int = 0,
    top_p: float = 0.0,
    seed: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
    prompt_audio: str | os.PathLike | None = None,
    prompt_seconds: float = 2.0,
    codes_file: str | os.PathLike | None = None,
    keep_down_to: int | None = None,
    lyrics: str | None = None,
    label_seconds: float | None = None,
    lyrics_file: str | os.PathLike | None = None,
    alignment_head: tuple[int, int] | None = None,
    guidance: float | Sequence[float] | None = None,
    quantize: str = "none",
    fast: bool = True,
    on_progress: Callable[[Progress], None] | None = None,
    on_level: Callable[[int, list[str]], None] | None = None,
    adapter: str | os.PathLike | None = None,
    segments: int = 1,
) -> dict:
    """Sample ``n_samples`` songs with a model bundle, decode every sampled level, write the outputs.

    Modes: ancestral (default); primed (``prompt_audio``: its first ``prompt_seconds`` are encoded
    and the songs continue after them); continue or upsample (``codes_file``: its codes are kept,
    the songs extended to ``seconds``; complete upper levels are only upsampled, e.g. with another
    artist or genre; ``keep_down_to`` keeps the given codes from the top down to that level too).

    ``lyrics`` (text) or ``lyrics_file`` (``.txt``, or ``.lrc`` for timed lyrics) need a top prior
    trained with lyrics; the songs' lyric alignment is then written to ``alignment/sample_{i}``
    (JSON, LRC and a PNG heatmap), read from ``alignment_head`` (layer, head) or the model's own,
    else from the most monotonic head.

    ``guidance`` > 1 strengthens artist and genre (classifier-free guidance: each token's logits
    are pushed away from those under unknown labels; twice the work on those levels): one value for
    every level, or one per level from the top down. Default: 3 on every level whose prior was
    trained with label dropout, else 1 (none).

    ``temperature`` divides the logits: one value for every level, or one per level from the top
    down (``(0.99, 0.9, 0.9)`` samples the upsamplers cooler).

    ``quantize="int8"`` samples with int8 weights in the priors' transformers (CPU only; faster for
    priors of width 512 and more, slower for small ones). ``fast=False`` takes the reference
    per-token path instead of the fast decode step (the same codes up to float rounding; slower).

    ``adapter``: a LoRA adapter folder made by fine-tuning one of the bundle's priors; it is merged
    into that prior, and its artists and genres (old and new) are the ones that level takes.

    ``segments`` > 1 samples each upsampled level in up to that many stretches side by side (see
    ``sampling.engine``): each stretch is run in before its seam, and the level takes about
    1/segments of the sequential steps; the codes are not those of window-after-window sampling.

    ``out_dir`` gets ``codes.codes`` (the resumable state: calling again with the same settings
    resumes, and a later call with a lower ``lowest`` continues a preview down), one WAV per sample
    and level in ``level_{L}/``, ``spectrogram.png`` and ``metadata.json``. Returns the metadata.

    A level's WAVs are written as soon as that level is sampled (the top level's can be heard while
    the upsamplers run); ``on_level(level, wav_paths)`` is then called. ``on_progress(Progress)`` is
    called as tokens are drawn; an exception raised by either callback stops sampling (the state
    saved after the last window stays resumable).
    """
    from .audio.plot import save_spectrogram
    from .sampling.bundle import Bundle
    from .sampling.engine import HOP_FRACTIONS, LevelSettings
    from .sampling.song import check_duration, sample_song, song_lengths

    device = torch.device(device) if device else default_device()
    bundle = Bundle(model_dir, adapter)
    bundle.check()  # every model, before any work: a damaged file is found now, not after a level
    bundle.check_level(lowest)
    check_sampling(n_samples, top_k, top_p, seconds, prompt_seconds)
    temperatures = {lv: bundle.temperature(lv, temperature) for lv in bundle.configs}
    guidances = {lv: bundle.guidance(lv, guidance) for lv in bundle.configs}
    check_quantize(quantize, device)
    if isinstance(segments, bool) or not isinstance(segments, numbers.Integral) or not 1 <= segments <= 64:
        raise UserError(f"--segments must be a whole number from 1 to 64, not {segments!r}")
    segments = int(segments)
    out = Path(out_dir)
    check_output_folder(out)
    if prompt_audio and codes_file:
        raise UserError("give either --prompt (an audio file) or --codes (a codes file), not both")
    if seconds is None:
        if not codes_file:
            raise UserError("say how long the song should be (--seconds)")
        head = CodesFile.load(codes_file)
        seconds = head.n_samples / head.sample_rate
    check_duration(bundle.configs, seconds if label_seconds is None else label_seconds)
    songs = bundle.lyrics(n_samples, lyrics, lyrics_file, seconds if label_seconds is None else label_seconds)
    bundle.check_alignment_head(alignment_head)
    labels = bundle.labels(n_samples, artist, genre)
    given, mode = _given_codes(
        bundle, n_samples, seconds, prompt_audio, prompt_seconds, codes_file, device, keep_down_to
    )
    state = out / "codes.codes"
    seed = _seed(seed, state)
    settings = {
        lv: LevelSettings(
            temperatures[lv],
            top_k,
            top_p,
            HOP_FRACTIONS.get(lv, 0.5),
            guidances[lv],
            quantize=quantize,
            segments=segments if bundle.configs[lv].conditioner is not None else 1,  # upsamplers only
        )
        for lv in bundle.configs
    }
    _, totals = song_lengths(bundle.configs, seconds)
    done = CodesFile.load(state).extra.get("done", {}) if state.exists() else {}
    done = {str(lv): c.shape[1] for lv, c in given.items()} | done  # codes kept or resumed count as done
    bars: dict[int, tqdm] = {}
    last_token: dict[int, float] = {}  # per level: when its last token was drawn
    counts: dict[int, list] = {}  # per level: [tokens done, tokens at this call's first report, its time]

    def tokens(level: int, k: int) -> None:  # one bar per level: tokens/s and ETA
        last_token[level] = time.time()
        if on_progress is not None:
            count = counts.setdefault(level, [n_samples * done.get(str(level), 0), None, None])
            if count[1] is None:
                count[1:] = [count[0], time.time()]
            count[0] += k
            total, elapsed = n_samples * totals[level], time.time() - count[2]
            rate = (count[0] - count[1]) / elapsed if elapsed > 0 else None
            eta = (total - count[0]) / rate if rate else None
            on_progress(Progress(level, count[0], total, rate, eta))
        if level not in bars:
            for bar in bars.values():  # the level above is done: its rate and time stay as they were
                bar.close()
            initial = n_samples * done.get(str(level), 0)
            bars[level] = tqdm(
                total=n_samples * totals[level],
                initial=initial,
                desc=f"level {level}",
                unit="tok",
                disable=not progress,
            )
        bars[level].update(k)

    bottom = min(bundle.configs) if lowest is None else lowest  # given codes below it (a prompt) stay codes
    files: dict[int, list[str]] = {}
    codec: list[VQVAE] = []  # loaded when the first level is decoded

    def write_level(level: int, codes: CodesFile) -> None:
        if not codec:
            codec.append(bundle.load_vqvae(device))
        audio = decode(codes, level, model=codec[0], device=device)
        files[level] = [
            str(save_audio(out / f"level_{level}" / f"sample_{i}.wav", a, codes.sample_rate))
            for i, a in enumerate(audio)
        ]
        if on_level is not None:
            on_level(level, files[level])

    def window_done(level: int, window, total: int) -> None:  # a finished level is heard at once
        if window.end == total and level >= bottom:
            write_level(level, CodesFile.load(state))

    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out, recursive=True)
    started = time.time()
    codes = sample_song(
        bundle.configs,
        lambda lv: bundle.load_prior(lv, device),
        n_samples,
        labels,
        seconds,
        seed,
        state,
        settings,
        lowest,
        codec={"kind": "vqvae", "path": str(bundle.vqvae_dir.resolve()), "id": bundle.codec_id},
        on_window=window_done,
        on_tokens=tokens,
        given=given,
        identity=bundle.identity,
        label_seconds=label_seconds,
        lyrics=songs,
        fast=fast,
        hop_lengths=bundle.hop_lengths,
    )
    for bar in bars.values():
        bar.close()
    alignment = None
    if songs is not None and bundle.top in codes.codes:
        alignment = _write_alignment(bundle, codes, songs, settings, alignment_head, out / "alignment", device)
    for level in [lv for lv in sorted(codes.codes, reverse=True) if lv >= bottom and lv not in files]:
        write_level(level, codes)  # the levels not sampled in this call (given, or resumed complete)
    level = min(files)
    audio = load_audio(files[level][0], codes.sample_rate, allow_silent=True)
    save_spectrogram(out / "spectrogram.png", audio, codes.sample_rate, f"sample 0, level {level}")
    meta = {
        "openjukebox": __version__,
        "model": str(Path(model_dir).resolve()),
        "adapter": str(Path(adapter).resolve()) if adapter else None,
        "mode": mode,
        "prompt": str(prompt_audio or codes_file or ""),
        "artist": artist,
        "genre": genre,
        "seconds": seconds,
        "n_samples": n_samples,
        "seed": seed,
        "levels": sorted(files, reverse=True),
        "settings": codes.extra["sampling"]["settings"],
        "labels": codes.extra["sampling"]["labels"],
        "lyrics": str(lyrics_file) if lyrics_file else lyrics,
        "alignment": alignment,
        "files": {lv: files[lv] for lv in sorted(files, reverse=True)},
        "elapsed_s": round(time.time() - started, 2),
        "sampling_s": _level_seconds(last_token, started),
    }
    with atomic_path(out / "metadata.json") as tmp:
        Path(tmp).write_text(json.dumps(meta, indent=2))
    return meta


def _level_seconds(last_token: dict[int, float], started: float) -> dict[str, float]:
    """Seconds each level sampled in this call: from the previous level's last token (or the
    start) to its own last token, so loading its prior is included."""
    seconds, since = {}, started
    for level in sorted(last_token, reverse=True):
        seconds[str(level)] = round(last_token[level] - since, 2)
        since = last_token[level]
    return seconds


def _write_alignment(bundle, codes: CodesFile, songs, settings, head, out: Path, device) -> dict:
    """Align the lyrics to the sampled top-level codes; write JSON, LRC and PNG per song."""
    from .sampling.alignment import align_songs

    top = bundle.top
    prior = bundle.load_prior(top, device)
    y = torch.tensor(codes.extra["sampling"]["labels"][str(top)])
    results, used = align_songs(
        prior, codes.codes[top], y, songs, bundle.tokenizers[top], settings[top].hop_fraction, head
    )
    out.mkdir(parents=True, exist_ok=True)
    used["files"] = [
        align.save(out / f"sample_{i}", matrix, used["frame_seconds"]) for i, (align, matrix) in enumerate(results)
    ]
    return used


def _given_codes(bundle, n: int, seconds: float, prompt_audio, prompt_seconds: float, codes_file, device, down_to=None):
    """({level: (n, P_L) codes to continue after}, mode name) for the sampling modes."""
    if down_to is not None and not codes_file:
        raise UserError("--keep-down-to keeps levels of a codes file: give one with --codes")
    if codes_file:
        from .sampling.song import codes_to_keep

        codes = CodesFile.load(codes_file)
        if codes.model.get("id") and codes.model["id"] != bundle.codec_id:
            raise ValueError(f"{codes_file} was made with another VQ-VAE than the bundle's {bundle.vqvae_dir}")
        return codes_to_keep(bundle.configs, codes, str(codes_file), n, seconds, down_to)
    if prompt_audio:
        codes = encode(prompt_audio, bundle.vqvae_dir, device=device)
        top_hop = bundle.configs[bundle.top].hop_length
        keep = int(min(prompt_seconds, seconds) * codes.sample_rate) // top_hop * top_hop
        if keep == 0 or keep > codes.n_samples:
            length = codes.n_samples / codes.sample_rate
            raise UserError(
                f"{prompt_audio}: cannot prime on {prompt_seconds:g} s of a {length:.2f} s file; give a shorter "
                "--prompt-seconds or a longer prompt"
            )
        hops = dict(enumerate(codes.hop_lengths))
        return {
            lv: c[:1, : keep // hops[lv]].expand(n, -1) for lv, c in codes.codes.items() if lv in bundle.configs
        }, "primed"
    return {}, "ancestral"


def _seed(seed: int | None, state: Path) -> int:
    """``seed``; without one, the seed of the run saved in ``state`` (so that running the same
    command again resumes it), else a new random seed, printed so that the song can be made again."""
    if seed is not None:
        return seed
    if state.is_file():
        saved = CodesFile.load(state).extra.get("sampling", {}).get("seed")
        if isinstance(saved, int):
            print(f"seed {saved} (the saved run's; resuming it)", file=sys.stderr)
            return saved
    seed = secrets.randbelow(2**31)
    print(f"seed {seed} (to make the same song again, pass --seed {seed})", file=sys.stderr)
    return seed


def check_sampling(
    n_samples: int,
    top_k: int,
    top_p: float,
    seconds: float | None,
    prompt_seconds: float,
) -> None:
    """Refuse sampling settings that would fail late or sample something other than asked."""
    checks = [
        (isinstance(n_samples, int) and n_samples >= 1, f"--n-samples must be 1 or more, not {n_samples}"),
        (isinstance(top_k, int) and top_k >= 0, f"--top-k must be 0 (off) or more, not {top_k}"),
        (0.0 <= top_p <= 1.0, f"--top-p must be from 0 (off) to 1, not {top_p}"),
        (seconds is None or (math.isfinite(seconds) and seconds > 0), f"--seconds must be above 0, not {seconds}"),
        (math.isfinite(prompt_seconds) and prompt_seconds > 0, f"--prompt-seconds must be above 0: {prompt_seconds}"),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(message)


def check_quantize(quantize: str, device: torch.device) -> None:
    """int8 weights are a CPU feature (PyTorch's dynamic quantization)."""
    from .sampling.fast import QUANTIZE

    if quantize not in QUANTIZE:
        raise UserError(f"--quantize must be one of {', '.join(QUANTIZE)}, not {quantize!r}")
    if quantize != "none" and device.type != "cpu":
        raise UserError(f"--quantize {quantize} runs on the CPU, not on {device}: drop it, or pass --device cpu")


def check_output_folder(out: Path) -> None:
    """Refuse an output folder that is a file, or where nothing can be written, before any work."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: is a file, not a folder; give --out a new or existing folder")
    probe_writable(out)


def probe_writable(folder: Path) -> None:
    """Check that files can be created in ``folder`` (or in its nearest existing parent), by creating
    one: permissions alone do not tell (root, read-only mounts, immutable folders)."""
    target = folder
    while not target.exists():
        if target.parent == target:
            break
        target = target.parent
    if not target.is_dir():
        raise UserError(f"{folder}: {target} is a file, so no folder can be made there; choose another path")
    try:
        times = os.stat(target)
        fd, probe = tempfile.mkstemp(dir=target, prefix=".openjukebox-write-test.")
        os.close(fd)
        os.unlink(probe)
        os.utime(target, ns=(times.st_atime_ns, times.st_mtime_ns))  # the folder looks untouched
    except OSError as e:
        raise UserError(f"{folder}: cannot write in {target} ({e.strerror}); choose another folder") from None
