"""The page: a Gradio Blocks UI over the same job store as the REST API.

Every button builds a ``JobRequest`` and submits it to the store (the same checks and the same
``openjukebox.api.sample`` as ``POST /api/jobs``), then follows the job, streaming its progress to
the page. Audio, the karaoke view, the heatmap and downloads are served by the API's file
endpoint; the page holds no paths.
"""

from __future__ import annotations

import html
import json
import os
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: before gradio is imported

import gradio as gr  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from .jobs import FINISHED, MAX_UPLOAD_BYTES, JobRequest, JobStore  # noqa: E402

POLL_S = 0.3
# Highlights the word being sung: each .song block holds an <audio> and word <span>s with their times.
KARAOKE_JS = """() => {
  document.addEventListener('timeupdate', (event) => {
    const audio = event.target, song = audio.closest && audio.closest('.song');
    if (!song) return;
    for (const w of song.querySelectorAll('.word')) {
      const on = audio.currentTime >= +w.dataset.start && audio.currentTime < +w.dataset.end;
      w.classList.toggle('current', on);
    }
  }, true);
}"""
CSS = """.word.current {background: #fde047; border-radius: 3px}
#status .error {color: #b91c1c; font-weight: 600}
.song {margin: 0.5em 0; padding: 0.5em; border: 1px solid #ddd; border-radius: 6px}"""
THEME = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def one_line(error: Exception) -> str:
    """A refused request as one line (a pydantic error names its field)."""
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        return f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
    return " ".join(str(error.args[0] if isinstance(error, LookupError) and error.args else error).split())


def _status(job: dict) -> str:
    lines = [f"job <code>{job['id']}</code>: <b class='state'>{job['status']}</b>"]
    if job.get("error") and job["status"] == "failed":
        lines.append(f"<span class='error'>{html.escape(job['error'])}</span>")
    for level, p in sorted(job["progress"].items(), reverse=True):
        rate = f", {p['tokens_per_s']} tokens/s" if p["tokens_per_s"] else ""
        eta = f", {p['eta_s']:.0f} s left" if p["eta_s"] and p["done"] < p["total"] else ""
        lines.append(f"level {level}: <span class='count'>{p['done']}/{p['total']}</span> tokens{rate}{eta}")
    return "<br>".join(lines)


def _error(message: str) -> str:
    return f"<span class='error'>{html.escape(message)}</span>"


def _karaoke(store: JobStore, job_id: str, sample: int) -> str:
    path = store.folder(job_id) / "out" / "alignment" / f"sample_{sample}.json"
    if not path.is_file():
        return ""
    words = json.loads(path.read_text())["words"]
    spans = " ".join(
        f"<span class='word' data-start='{w['start']:.3f}' data-end='{w['end']:.3f}'>{html.escape(w['word'])}</span>"
        for w in words
    )
    url = f"/api/jobs/{job_id}/files/sample_{sample}"
    return f"<p class='karaoke'>{spans}</p><img class='heatmap' alt='lyric alignment' width='480' src='{url}.png'>"


def _player(store: JobStore, job: dict) -> str:
    """Audio of the lowest level ready per song, with karaoke, heatmap and downloads when done."""
    if not job["files"]:
        return ""
    level = min(int(lv) for lv in job["files"])
    base = f"/api/jobs/{job['id']}/files"
    parts = []
    for i in range(len(job["files"][str(level)])):
        name = f"level_{level}_sample_{i}"
        done = job["status"] == "done"
        kind = "finished" if done and level == 0 else f"level {level}" + ("" if done else " (preview)")
        block = [f"<b>song {i}</b> ({kind})", f"<audio controls preload='auto' src='{base}/{name}.wav'></audio>"]
        if done:
            block.append(_karaoke(store, job["id"], i))
            links = [(f"{name}.wav", "WAV"), (f"{name}.flac", "FLAC"), ("codes.codes", "codes")]
            links.append(("metadata.json", "JSON"))
            if job.get("alignment"):
                links += [(f"sample_{i}.lrc", "LRC"), (f"sample_{i}.json", "alignment JSON")]
            block.append(" ".join(f"<a class='download' href='{base}/{f}' download>{t}</a>" for f, t in links))
        parts.append(f"<div class='song' data-song='{i}'>{'<br>'.join(block)}</div>")
    return "".join(parts)


def build_ui(store: JobStore) -> gr.Blocks:
    """The page's components and their events."""
    info = store.info
    limits = f"{info['min_seconds']:g} s to under {info['max_seconds']:g} s" if info["min_seconds"] else "any length"
    with gr.Blocks(title="openjukebox") as page:
        gr.Markdown(
            f"# openjukebox\nModel `{Path(info['path']).name}`: {info['sample_rate']} Hz, levels "
            f"{', '.join(map(str, info['levels']))}; songs from {limits}; "
            f"{len(info['artists'])} artists, {len(info['genres'])} genres."
            + (f"\n\nLyric characters: `{info['lyric_characters']}`" if info["lyric_characters"] else "")
        )
        with gr.Row():
            artist = gr.Dropdown(info["artists"], value=None, label="artist", elem_id="artist")
            genre = gr.Dropdown(info["genres"], value=None, label="genre", elem_id="genre")
        lyrics = gr.Textbox(lines=4, label="lyrics (plain text, or LRC with [mm:ss.xx] lines)", elem_id="lyrics")
        with gr.Row():
            seconds = gr.Number(value=info["min_seconds"] or 1.0, label="seconds", elem_id="seconds")
            seed = gr.Textbox(value="", label="seed (empty: random)", elem_id="seed")
            temperature = gr.Slider(0.5, 1.5, value=0.99, step=0.01, label="temperature")
            guidance = gr.Number(value=0, label="guidance (0: the model's default)", elem_id="guidance")
            n_samples = gr.Slider(1, 4, value=1, step=1, label="songs")
            segments = gr.Slider(
                1, 16, value=1, step=1, elem_id="segments", label="segments (more: faster lower levels, with seams)"
            )
        prompt = gr.File(file_types=[".wav", ".flac", ".ogg", ".mp3"], label="prompt audio (optional)")
        prompt_seconds = gr.Number(value=2.0, label="seconds of the prompt to keep")
        with gr.Row():
            generate = gr.Button("Generate", variant="primary", elem_id="generate", scale=3)
            cancel_btn = gr.Button("Cancel", elem_id="cancel", scale=1)
        with gr.Accordion("Co-composer: candidates of the next seconds", open=True):
            with gr.Row():
                step = gr.Number(value=1.0, label="seconds per step", elem_id="step")
                count = gr.Slider(1, 4, value=2, step=1, label="candidates")
                pick = gr.Number(value=0, precision=0, label="keep candidate", elem_id="pick")
            with gr.Row():
                candidates_btn = gr.Button("Candidates (new or extending the kept song)", elem_id="candidates")
                keep_btn = gr.Button("Keep", elem_id="keep")
                upsample_btn = gr.Button("Upsample the kept song", elem_id="upsample")
            kept_md = gr.Markdown("nothing kept yet", elem_id="kept")
        rerender_btn = gr.Button("Re-render the last song's lower levels with the artist and genre above")
        status = gr.HTML("", elem_id="status")
        player = gr.HTML("", elem_id="player")
        last = gr.State({})  # {"job": id, "seconds": length} of the last job followed
        kept = gr.State(None)  # {"job": id, "sample": i, "seconds": length}
        rounds = gr.State(0)  # candidate rounds so far: a fixed seed still gives new candidates each round

        form = [artist, genre, lyrics, seconds, seed, temperature, guidance, n_samples, segments]

        def base(a, g, ly, secs, sd, temp, guide, n, segs) -> dict:
            """The request the form describes (the buttons below change parts of it)."""
            sd = (sd or "").strip()
            if sd and not sd.isdigit():
                raise ValueError(f"seed must be a whole number of 0 or more (or empty for a random one), not {sd!r}")
            return {
                "artist": a or None,
                "genre": g or None,
                "lyrics": (ly or "").strip() or None,
                "seconds": secs,
                "seed": int(sd) if sd else None,
                "temperature": temp,
                "guidance": guide or None,
                "n_samples": int(n),
                "segments": int(segs),
            }

        def follow(make):
            """Submit the request ``make()`` returns, then stream the job's progress and audio to the page."""
            try:
                job = store.submit(JobRequest(**make()))
            except (ValueError, LookupError, ValidationError) as e:
                yield _error(one_line(e)), gr.skip(), gr.skip()
                return
            shown = None
            while True:
                job = store.get(job["id"])
                ready = (job["status"] in FINISHED, bool(job["files"]))  # the preview stays until the end
                html_player = _player(store, job) if ready != shown else gr.skip()
                shown = ready
                yield _status(job), html_player, {"job": job["id"], "seconds": job["request"]["seconds"]}
                if job["status"] in FINISHED:
                    return
                time.sleep(POLL_S)

        def on_generate(prompt_file, prompt_secs, *values):
            def make() -> dict:
                request = base(*values)
                if prompt_file:  # checked and kept like an upload to /api/uploads
                    upload = store.save_upload(Path(prompt_file).read_bytes(), Path(prompt_file).name)
                    request.update(prompt_upload=upload, prompt_seconds=prompt_secs)
                return request

            yield from follow(make)

        def on_candidates(k, done_rounds, step_s, n, *values):
            def make() -> dict:
                request = {**base(*values), "n_samples": int(n), "top_only": True}
                if request["seed"] is not None:  # each round new candidates, the same ones for the same seed
                    request["seed"] = (request["seed"] + done_rounds) % 2**31
                total = request["seconds"] or 0
                request.update(seconds=min(total, (k or {}).get("seconds", 0.0) + (step_s or 0)), label_seconds=total)
                if k:
                    request.update(source_job=k["job"], source_sample=k["sample"])
                return request

            yield from follow(make)

        def on_keep(previous, index):
            job = previous.get("job") and store.get(previous["job"])
            if not job or job["status"] != "done" or not job["request"]["top_only"]:
                return gr.skip(), "make candidates first, and wait until they are done"
            if not 0 <= int(index or 0) < job["request"]["n_samples"]:
                return gr.skip(), f"keep one of the candidates 0 to {job['request']['n_samples'] - 1}"
            secs = job["request"]["seconds"]
            label = job["request"]["label_seconds"] or secs
            return {"job": job["id"], "sample": int(index), "seconds": secs}, f"kept {secs:g} s of {label:g} s"

        def on_upsample(k, *values):
            def make() -> dict:
                if not k:
                    raise ValueError("keep a candidate first")
                request = {**base(*values), "n_samples": 1}
                total = max(request["seconds"] or 0, k["seconds"])  # the song's length, as the rounds announced
                return {
                    **request,
                    "seconds": None,
                    "source_job": k["job"],
                    "source_sample": k["sample"],
                    "label_seconds": total,
                }

            yield from follow(make)

        def on_rerender(previous, *values):
            def make() -> dict:
                if not previous.get("job"):
                    raise ValueError("generate a song first")
                request = {**base(*values), "n_samples": 1, "seconds": None}
                return {**request, "source_job": previous["job"], "source_sample": 0}

            yield from follow(make)

        def on_cancel(previous) -> None:
            if previous.get("job"):
                store.cancel(previous["job"])

        outputs = [status, player, last]
        generate.click(on_generate, [prompt, prompt_seconds, *form], outputs)
        candidates_btn.click(on_candidates, [kept, rounds, step, count, *form], outputs).then(
            lambda r: r + 1, rounds, rounds
        )
        keep_btn.click(on_keep, [last, pick], [kept, kept_md])
        upsample_btn.click(on_upsample, [kept, *form], outputs)
        rerender_btn.click(on_rerender, [last, *form], outputs)
        cancel_btn.click(on_cancel, last, None)
    return page


def mount(app, store: JobStore):
    """Mount the page at ``/`` of the API's app (offline: system fonts, no analytics)."""
    return gr.mount_gradio_app(
        app,
        build_ui(store),
        path="",
        theme=THEME,
        css=CSS,
        js=KARAOKE_JS,
        footer_links=[],
        max_file_size=MAX_UPLOAD_BYTES,
    )
