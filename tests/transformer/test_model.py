import torch

from openjukebox.transformer.decode import _activation
from openjukebox.transformer.model import GELU_SCALE, MLP, quick_gelu


def test_folding_the_gelu_scale_keeps_the_mlp_and_happens_once():
    torch.manual_seed(0)
    mlp = MLP(16, 32).double()
    x = torch.randn(5, 16).double()
    with torch.no_grad():
        ref = mlp(x)
        fc = mlp.fc.weight.clone()
        mlp.fold_gelu_scale()
        assert mlp.folded
        torch.testing.assert_close(mlp.fc.weight, fc * GELU_SCALE)
        torch.testing.assert_close(mlp(x), ref)
        mlp.fold_gelu_scale()  # a second call changes nothing
        torch.testing.assert_close(mlp.fc.weight, fc * GELU_SCALE)
        torch.testing.assert_close(mlp(x), ref)


def test_the_float32_decode_activation_is_the_modules_quick_gelu_exactly():
    mlp = MLP(16, 32)
    h = torch.randn(3, 1, 32) * 4
    act = _activation(mlp, torch.device("cpu"), torch.float32)
    assert torch.equal(act(h.clone()), quick_gelu(h))
