import json

import pytest

from openjukebox.codec.config import PRESETS, VQVAEConfig, get_preset
from openjukebox.codec.vqvae import VQVAE

from ..conftest import FIXTURES


def test_official_preset_hops_and_downsamples():
    cfg = get_preset("vqvae")
    assert cfg.sample_rate == 44100
    assert cfg.downsamples == (8, 4, 4)
    assert cfg.hop_lengths == (8, 32, 128)
    assert (cfg.l_bins, cfg.emb_width) == (2048, 64)


def test_official_preset_matches_the_original_state_dict_layout():
    """Same keys, shapes and parameter count as the official vqvae.pth.tar (meta device)."""
    import torch

    layout = json.loads((FIXTURES / "openai" / "vqvae_keys.json").read_text())
    summary = json.loads((FIXTURES / "openai" / "keys_summary.json").read_text())["vqvae"]
    with torch.device("meta"):
        model = VQVAE(get_preset("vqvae"))
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert ours == {k: v[0] for k, v in layout.items()}
    assert sum(p.numel() for p in model.parameters()) == summary["n_params"]
    assert len(ours) == summary["n_state_dict_keys"]


def test_official_preset_code_counts_are_length_over_hop():
    import torch

    model = VQVAE(get_preset("vqvae")).eval()
    x = torch.randn(1, 1, 128 * 20) * 0.1
    for level, hop in enumerate((8, 32, 128)):
        assert model.encode(x, level).shape == (1, 128 * 20 // hop)


def test_config_round_trips_through_dict():
    for cfg in PRESETS.values():
        assert VQVAEConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_unknown_preset_and_bad_shapes_are_clear_errors():
    with pytest.raises(ValueError, match="give one of: vqvae, music, small, tiny"):
        get_preset("huge")
    with pytest.raises(ValueError, match="one entry per level"):
        VQVAEConfig(levels=2)
    with pytest.raises(ValueError, match="unknown VQ-VAE config fields"):
        VQVAEConfig.from_dict({"widht": 3})


def test_our_presets_have_the_sizes_the_readme_gives():
    millions = {name: sum(p.numel() for p in VQVAE(get_preset(name)).parameters()) / 1e6 for name in PRESETS}
    assert {k: round(v, 2) for k, v in millions.items() if k != "vqvae"} == {"music": 2.58, "small": 0.52, "tiny": 0.10}
    assert get_preset("music").l_bins == 2048 and get_preset("music").hop_lengths == (8, 32, 128)
