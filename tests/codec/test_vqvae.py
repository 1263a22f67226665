import json

import numpy as np
import pytest
import torch

from openjukebox.checkpoint import load_state_strict
from openjukebox.codec.config import VQVAEConfig, get_preset
from openjukebox.codec.layers import context_radius, convs_in_order
from openjukebox.codec.losses import Bandwidth
from openjukebox.codec.vqvae import VQVAE, decode_chunked, encode_chunked

from ..conftest import FIXTURES

OPENAI = FIXTURES / "openai"


@pytest.fixture(scope="module")
def original():
    """The original code's tiny VQ-VAE checkpoint and its recorded inputs/outputs."""
    hp = json.loads((OPENAI / "vqvae_hparams.json").read_text())
    o = hp["overrides"]
    cfg = VQVAEConfig(
        sample_rate=o["sr"], emb_width=o["emb_width"], l_bins=o["l_bins"], width=o["width"], depth=o["depth"]
    )
    model = VQVAE(cfg).eval()
    ckpt = torch.load(OPENAI / "vqvae.pth.tar", map_location="cpu", weights_only=True)
    load_state_strict(model, ckpt["model"], "vqvae.pth.tar")
    return model, dict(np.load(OPENAI / "vqvae_ref.npz")), hp["bandwidth"]


def test_matches_the_original_encoder_codes_and_decoders(original):
    model, ref, _ = original
    x = torch.from_numpy(ref["x"]).permute(0, 2, 1)
    for level in range(3):
        enc = model.encoders[level](x)
        torch.testing.assert_close(enc, torch.from_numpy(ref[f"enc_out_l{level}"]), atol=1e-4, rtol=1e-4)
        codes = model.encode(x, level)
        sure = torch.from_numpy(ref[f"quant_gap_l{level}"]) > 1e-3
        assert torch.equal(codes[sure], torch.from_numpy(ref[f"z_l{level}"])[sure])
        x_hat = model.decode(torch.from_numpy(ref[f"z_l{level}"]), level).permute(0, 2, 1)
        torch.testing.assert_close(x_hat, torch.from_numpy(ref[f"x_hat_from_l{level}"]), atol=1e-4, rtol=1e-4)


def test_matches_the_original_losses(original):
    model, ref, bw = original
    x = torch.from_numpy(ref["x"]).permute(0, 2, 1)
    loss, m = model(x, Bandwidth(l1=bw["l1"], l2=bw["l2"], spec=bw["spec"]))
    assert loss.item() == pytest.approx(float(ref["forward_loss"]), rel=1e-5)
    for level in range(3):  # the original names levels 1..3
        assert m[f"recons_l{level}"].item() == pytest.approx(float(ref[f"metric_recons_loss_l{level + 1}"]), rel=1e-5)
        assert m[f"multispectral_l{level}"].item() == pytest.approx(
            float(ref[f"metric_multispectral_loss_l{level + 1}"]), rel=1e-5
        )


def _tiny_model(seed=0):
    torch.manual_seed(seed)
    model = VQVAE(get_preset("tiny")).eval()
    x = torch.randn(1, 1, 8192) * 0.3
    for level, block in enumerate(model.bottleneck.level_blocks):  # distinct codes at the latents' scale
        block.k.copy_(torch.randn_like(block.k) * model.encoders[level](x).std())
    return model


def test_context_radius_bounds_the_measured_receptive_field():
    model = _tiny_model()
    for level in range(3):
        enc = model.encoders[level]
        x = torch.zeros(1, 1, 8192, requires_grad=True)
        out = enc(x)
        centre = out.shape[-1] // 2
        out[0, :, centre].sum().backward()
        touched = (x.grad[0, 0] != 0).nonzero().flatten()
        centre_sample = centre * model.hop_lengths[level]
        reach = max(centre_sample - touched.min().item(), touched.max().item() - centre_sample)
        assert 0 < reach <= context_radius(convs_in_order(enc))


def _tie_gap(model, x, level):
    """Per code position: distance to the second-nearest code minus distance to the nearest."""
    latents = model.encoders[level](x)
    flat = latents.permute(0, 2, 1).reshape(-1, latents.shape[1])
    d = torch.cdist(flat, model.bottleneck.level_blocks[level].k) ** 2
    best2 = d.topk(2, largest=False).values
    return (best2[:, 1] - best2[:, 0]).view(x.shape[0], -1)


def test_chunked_encode_and_decode_equal_one_shot():
    model = _tiny_model()
    t = 22050 * 6 // 128 * 128
    x = torch.from_numpy(np.sin(np.linspace(0, 2000, t)) * np.linspace(0, 0.5, t)).float().view(1, 1, -1)
    x = x + 0.05 * torch.randn_like(x)
    for level in range(3):
        whole = model.encode(x, level)
        chunked = encode_chunked(model, x, level, chunk=22050)
        sure = _tie_gap(model, x, level) > 1e-6  # float noise (~1e-7) may flip near-ties only
        assert sure.float().mean() > 0.99
        assert torch.equal(whole[sure], chunked[sure])
        audio = model.decode(whole, level)
        torch.testing.assert_close(decode_chunked(model, whole, level, chunk=22050), audio, atol=1e-5, rtol=1e-5)


def test_chunking_without_overlap_would_differ():
    """Guards the test above: chunks need their context, so the overlap is doing real work."""
    model = _tiny_model()
    codes = torch.randint(0, 64, (1, 22050 * 4 // 128))
    whole = model.decode(codes, 2)
    pieces = torch.cat([model.decode(c, 2) for c in codes.split(22050 // 128, dim=1)], dim=-1)
    assert (whole - pieces).abs().max() > 1e-3


def test_length_must_be_a_multiple_of_the_hop():
    model = _tiny_model()
    with pytest.raises(ValueError, match="not a multiple of level 2's hop 128"):
        model.encode(torch.zeros(1, 1, 1000), 2)
