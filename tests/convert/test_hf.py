import json

import pytest
import torch

from openjukebox.checkpoint import load_vqvae
from openjukebox.cli.main import main
from openjukebox.convert.hf import PRIOR_RULES, VQVAE_RULES, to_original
from openjukebox.convert.openai import ConversionError

from ..conftest import FIXTURES

# Key layouts of transformers 4.57.6's Jukebox port for the official shapes, built on the meta device
# by tests/fixtures/hf/make_layouts.py (run where that package is installed).
HF = json.loads((FIXTURES / "hf" / "hf_layouts.json").read_text())


@pytest.mark.parametrize("name", ["vqvae", "upsampler_level_1", "prior_5b_lyrics", "prior_1b_lyrics"])
def test_every_key_of_the_port_maps_onto_the_original_layout(name):
    official = json.loads((FIXTURES / "openai" / f"{name}_keys.json").read_text())
    state = {k: torch.empty(shape, device="meta") for k, (shape, _) in HF[name].items()}
    renamed = to_original(state, VQVAE_RULES if name == "vqvae" else PRIOR_RULES)
    assert set(renamed) == set(official)
    assert {k: list(v.shape) for k, v in renamed.items()} == {k: shape for k, (shape, _) in official.items()}


def test_the_port_format_imports_through_the_command(tmp_path):
    gen = torch.Generator().manual_seed(0)
    state = {f"vqvae.{k}": torch.randn(shape, generator=gen) * 0.05 for k, (shape, _) in HF["vqvae"].items()}
    folder = tmp_path / "jukebox-hf"
    folder.mkdir()
    torch.save(state, folder / "pytorch_model-00001-of-00001.bin")
    assert main(["-q", "import-openai", "--hf", str(folder), "--out", str(tmp_path / "bundle")]) == 0
    ours = load_vqvae(tmp_path / "bundle" / "vqvae").state_dict()
    pairs = {
        "encoders.1.level_blocks.0.downsample_block.2.weight": "encoders.1.level_blocks.0.model.1.0.weight",
        "encoders.0.level_blocks.0.proj_out.bias": "encoders.0.level_blocks.0.model.3.bias",
        "encoders.2.level_blocks.2.proj_out.weight": "encoders.2.level_blocks.2.model.2.weight",
        "decoders.2.level_blocks.1.upsample_block.1.weight": "decoders.2.level_blocks.1.model.1.1.weight",
        "decoders.0.level_blocks.0.upsample_block.4.resnet_block.3.conv1d_2.weight": (
            "decoders.0.level_blocks.0.model.3.0.model.3.model.3.weight"
        ),
        "bottleneck.level_blocks.1.codebook": "bottleneck.level_blocks.1.k",
    }
    for hf_key, our_key in pairs.items():
        assert torch.equal(ours[our_key], state[f"vqvae.{hf_key}"]), hf_key


def test_unknown_port_keys_are_named():
    with pytest.raises(ConversionError, match="prior.mystery"):
        to_original({"prior.mystery.weight": torch.zeros(1)}, PRIOR_RULES)
