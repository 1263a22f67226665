import torch

from openjukebox.codec.bottleneck import BottleneckBlock


def _block(l_bins=8, emb=4, mu=0.99):
    torch.manual_seed(0)
    block = BottleneckBlock(l_bins, emb, mu=mu, threshold=1.0).train()
    return block


def test_codebook_initialises_from_encoder_outputs_on_first_training_forward():
    block = _block()
    rows = torch.randn(32, 4)
    block.init_k(rows)
    assert all(torch.isclose(k, rows).all(dim=1).any() for k in block.k)
    fresh = _block()
    assert not fresh.k.any()
    fresh(torch.randn(2, 4, 16))
    assert bool(fresh.initialised) and fresh.k.abs().sum() > 0


def test_unused_code_is_restarted_to_an_encoder_output_within_one_update():
    block = _block()
    block.init_k(torch.randn(64, 4))
    block.k[3] = 1e3  # far from every input: receives no assignment
    block.k_sum[3] = 1e3
    x = torch.randn(2, 4, 32)
    codes, *_ = block(x)
    assert not (codes == 3).any()
    rows = x.permute(0, 2, 1).reshape(-1, 4)
    # k_elem of code 3 decayed to 0.99 < threshold 1.0, so it was replaced by an actual input row
    assert torch.isclose(block.k[3].unsqueeze(0), rows).all(dim=1).any()


def test_used_codes_follow_the_ema_of_their_assignments():
    block = _block(mu=0.9)
    block.init_k(torch.randn(64, 4))
    k_sum, k_elem = block.k_sum.clone(), block.k_elem.clone()
    x = torch.randn(1, 4, 40)
    codes, *_ = block(x)
    rows = x.permute(0, 2, 1).reshape(-1, 4)
    used = codes.unique()
    assert len(used) > 3
    for c in used:  # k_elem = 0.9 * 1 + 0.1 * count >= 1: every used code keeps its EMA mean
        sel = rows[codes.flatten() == c]
        expect = (0.9 * k_sum[c] + 0.1 * sel.sum(0)) / (0.9 * k_elem[c] + 0.1 * len(sel))
        torch.testing.assert_close(block.k[c], expect)


def test_straight_through_gradient_and_commit_loss():
    block = _block()
    block.init_k(torch.randn(64, 4))
    x = torch.randn(2, 4, 10, requires_grad=True)
    codes, x_q, commit, _ = block(x)
    x_q.sum().backward()
    torch.testing.assert_close(x.grad, torch.ones_like(x))
    # as in the original, the commit loss uses the codebook after this step's EMA update
    expect = ((block.dequantise(codes) - x.detach()) ** 2).mean()
    torch.testing.assert_close(commit.detach(), expect)
    assert commit.item() > 0


def test_eval_mode_never_changes_the_codebook_and_matches_nearest_neighbour():
    block = _block()
    block.init_k(torch.randn(64, 4))
    block.eval()
    k = block.k.clone()
    x = torch.randn(2, 4, 16)
    codes, x_q, _, _ = block(x)
    assert torch.equal(block.k, k)
    rows = x.permute(0, 2, 1).reshape(-1, 4)
    assert torch.equal(codes.flatten(), torch.cdist(rows, k).argmin(1))
    torch.testing.assert_close(x_q, k[codes].permute(0, 2, 1))
