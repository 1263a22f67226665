import json

import numpy as np
import pytest
import soundfile as sf
import torch

from openjukebox.audio.dataset import CropSampler, fixed_crops, held_out_pieces, prepare_audio, read_sources

SR = 8000


@pytest.fixture()
def folder(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    for i in range(6):
        sf.write(data / "sub" / f"song{i}.flac", (rng.standard_normal(SR * (i + 2)) * 0.1).astype(np.float32), SR)
    (data / "broken.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)
    (data / "empty.ogg").write_bytes(b"")
    sf.write(data / "tiny.wav", np.full(100, 0.1, np.float32), SR)
    (data / "readme.txt").write_text("not audio, ignored by extension")
    return data


def test_bad_files_are_skipped_counted_and_explained(folder, tmp_path):
    audio = prepare_audio(folder, SR, tmp_path / "cache", min_samples=SR, val_fraction=0.34)
    reasons = dict((p.split("/")[-1], r) for p, r in audio.skipped)
    assert set(reasons) == {"broken.wav", "empty.ogg", "tiny.wav"}
    assert "empty" in reasons["empty.ogg"] and "too short" in reasons["tiny.wav"]
    assert len(audio.train) + len(audio.val) == 6 and 1 <= len(audio.val) <= 5
    assert not {t.path for t in audio.train} & {t.path for t in audio.val}  # whole files held out
    assert audio.summary() == f"{len(audio.train)} train files, {len(audio.val)} validation files, 3 skipped"


def test_cache_is_reused_and_holds_the_decoded_audio(folder, tmp_path):
    first = prepare_audio(folder, SR, tmp_path / "cache", min_samples=SR)
    mtimes = {t.cache: (tmp_path / "cache" / t.cache).stat().st_mtime_ns for t in first.train}
    again = prepare_audio(folder, SR, tmp_path / "cache", min_samples=SR)
    assert {t.cache: (tmp_path / "cache" / t.cache).stat().st_mtime_ns for t in again.train} == mtimes
    track = first.train[0]
    original, _ = sf.read(track.path, dtype="float32")
    np.testing.assert_array_equal(np.load(track.cache), original)


def test_crops_depend_only_on_seed_step_and_rank(folder, tmp_path):
    audio = prepare_audio(folder, SR, tmp_path / "cache", min_samples=SR)
    a, b = CropSampler(audio.train, 4000, seed=1), CropSampler(audio.train, 4000, seed=1)
    assert torch.equal(a.batch(3, step=7), b.batch(3, step=7))
    assert not torch.equal(a.batch(3, step=7), a.batch(3, step=8))
    assert not torch.equal(a.batch(3, step=7, rank=0), a.batch(3, step=7, rank=1))
    batch = a.batch(5, step=0)
    assert batch.shape == (5, 1, 4000)
    sources = [np.load(t.cache) for t in audio.train]  # every crop is a real slice of some file
    for crop in batch[:, 0].numpy():
        assert any(np.array_equal(s[i : i + 4000], crop) for s in sources for i in np.flatnonzero(s == crop[0]))
    val = fixed_crops(audio.val, 4000, per_file=3)
    assert val.shape == (3 * len(audio.val), 1, 4000) and torch.equal(val, fixed_crops(audio.val, 4000, 3))


def test_manifest_paths_are_relative_to_it_and_keep_labels(folder, tmp_path):
    manifest = folder / "train.jsonl"
    manifest.write_text(
        json.dumps({"path": "sub/song0.flac", "artist": "A", "genre": "g"})
        + "\n\n"
        + json.dumps({"path": str(folder / "sub" / "song1.flac")})
        + "\n"
    )
    entries = read_sources(manifest)
    assert entries[0] == {
        "path": str(folder / "sub" / "song0.flac"),
        "piece": "sub/song0.flac",
        "artist": "A",
        "genre": "g",
    }
    assert entries[1]["path"] == str(folder / "sub" / "song1.flac")
    audio = prepare_audio(manifest, SR, tmp_path / "c", min_samples=SR, val_fraction=0)
    assert {t.meta.get("artist") for t in audio.train} == {"A", None}
    manifest.write_text('{"file": "x.wav"}\n')
    with pytest.raises(ValueError, match=r"train.jsonl:1: each manifest line must be a JSON object with a 'path'"):
        read_sources(manifest)


def test_folder_without_usable_audio_is_an_error(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(ValueError, match="no audio files found"):
        read_sources(tmp_path / "d")
    (tmp_path / "d" / "bad.wav").write_bytes(b"xx")
    with pytest.raises(ValueError, match="no usable audio.*1 files skipped"):
        prepare_audio(tmp_path / "d", SR, tmp_path / "c", min_samples=10)


def test_the_split_holds_out_whole_pieces_and_ignores_where_the_data_lives(folder, tmp_path):
    # 6 songs, each rendered twice (two files of one piece), one file listed twice
    lines = [{"path": f"sub/song{i}.flac", "piece": f"piece{i}", "genre": "a"} for i in range(6)]
    for i in range(6):
        copy = folder / "sub" / f"song{i}_b.flac"
        copy.write_bytes((folder / "sub" / f"song{i}.flac").read_bytes())
        lines.append({"path": f"sub/song{i}_b.flac", "piece": f"piece{i}", "genre": "b"})
    lines.append(lines[0])
    manifest = folder / "m.jsonl"
    manifest.write_text("".join(json.dumps(e) + "\n" for e in lines))
    audio = prepare_audio(manifest, SR, tmp_path / "c", min_samples=SR, val_fraction=0.4, seed=3)
    assert [r for _, r in audio.skipped] == ["listed more than once in the data; used once"]
    piece = {t.path: t.meta["piece"] for t in audio.train + audio.val}
    train, val = {piece[t.path] for t in audio.train}, {piece[t.path] for t in audio.val}
    assert not train & val and train | val == {f"piece{i}" for i in range(6)} and val
    assert len(audio.val) == 2 * len(val)  # both renderings of a held-out piece are held out
    assert val == held_out_pieces([f"piece{i}" for i in range(6)], 0.4, seed=3)
    # the same data elsewhere, without the manifest's pieces: files are their own pieces, named relative
    # to the folder, so the split is the same wherever the folder is
    moved = tmp_path / "elsewhere"
    (folder / "m.jsonl").unlink()
    folder.rename(moved)
    a = prepare_audio(moved, SR, tmp_path / "c2", min_samples=SR, val_fraction=0.4, seed=3)
    b_dir = tmp_path / "again"
    moved.rename(b_dir)
    b = prepare_audio(b_dir, SR, tmp_path / "c3", min_samples=SR, val_fraction=0.4, seed=3)
    assert [t.meta["piece"] for t in a.val] == [t.meta["piece"] for t in b.val] and a.val


def test_a_pieces_side_depends_only_on_its_name_and_the_seed():
    pieces = [f"p{i}" for i in range(200)]
    held = held_out_pieces(pieces, 0.1, seed=0)
    assert 8 <= len(held) <= 35  # about 10 % of 200
    assert held_out_pieces(pieces[:120], 0.1, seed=0) == held & set(pieces[:120])  # other files don't move it
    assert held_out_pieces(pieces, 0.1, seed=1) != held
    assert held_out_pieces(["a", "b"], 0.001) and len(held_out_pieces(["a", "b"], 0.999)) == 1  # one, never all
    assert held_out_pieces(["a", "a"], 0.5) == set() and held_out_pieces(pieces, 0.0) == set()
