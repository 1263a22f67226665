import pytest
import torch

from openjukebox.models import default_model
from openjukebox.prior.conditioning import forget_labels
from openjukebox.sampling.bundle import Bundle
from openjukebox.sampling.engine import LevelSettings, sample_level
from openjukebox.sampling.fast import prepare_prior
from openjukebox.sampling.sampler import draw, sample_window


@pytest.fixture(scope="module")
def bundle():
    return Bundle(default_model())


def _window_inputs(bundle, level):
    """The shipped prior of ``level`` with a window's conditioning (labels, lyrics, the level above)."""
    prior = bundle.load_prior(level).eval()
    cfg = prior.cfg
    y = bundle.labels(2, "johann_sebastian_bach", "sung_chorale")[level]
    y[:, 0] = 10 * cfg.sample_rate
    if cfg.lyrics is not None:  # some lyric tokens, not only padding
        y[:, -cfg.lyrics.n_tokens :] = torch.randint(
            1, 20, (2, cfg.lyrics.n_tokens), generator=torch.Generator().manual_seed(0)
        )
    above = None
    if cfg.conditioner is not None:
        above = torch.randint(
            0, cfg.l_bins, (2, cfg.n_ctx // cfg.conditioner.upsample), generator=torch.Generator().manual_seed(1)
        )
    return prior, y, above


@pytest.mark.parametrize("level", [2, 1, 0])
def test_fast_path_samples_the_reference_tokens_on_the_shipped_model(bundle, level):
    """Greedy tokens and every logit of the fast decode step equal the reference per-token path,
    from scratch and after a prompt, with guidance on the top level (a batch of 2 x 2)."""
    prior, y, above = _window_inputs(bundle, level)
    with torch.no_grad():
        cond = prior.condition(y, above)
        guide = {}
        if level == bundle.top:
            guide = {
                "uncond": prior.condition(forget_labels(y, prior.cfg.labels.max_bow_genre_size), above),
                "guidance": 3.0,
            }
        prompt = torch.randint(0, prior.cfg.l_bins, (2, 37), generator=torch.Generator().manual_seed(2))
        for given in (None, prompt):
            logits, tokens = {}, {}
            for fast in (True, False):
                seen = []
                tokens[fast] = sample_window(
                    prior,
                    cond,
                    120,
                    prompt=given,
                    top_k=1,
                    fast=fast,
                    on_logits=lambda t, lg, s=seen: s.append(lg.clone()),
                    **guide,
                )
                logits[fast] = torch.stack(seen)
            torch.testing.assert_close(logits[True], logits[False], rtol=1e-4, atol=1e-4)  # float rounding
            assert torch.equal(tokens[True], tokens[False])


def test_sampling_with_a_seed_is_reproducible_and_the_same_on_both_paths(bundle):
    prior, y, above = _window_inputs(bundle, 0)
    with torch.no_grad():
        cond = prior.condition(y, above)
        run = lambda fast: sample_window(prior, cond, 80, generator=torch.Generator().manual_seed(7), fast=fast)  # noqa: E731
        a, b, c = run(True), run(True), run(False)
    assert torch.equal(a, b) and torch.equal(a, c)
    assert len(a.unique()) > 5  # sampled, not constant


def test_sampled_codes_are_ordinary_tensors_for_training(bundle):
    """The token loop runs in inference mode; what it returns can still be edited in place and
    trained on (an inference tensor could not be)."""
    prior, y, above = _window_inputs(bundle, 0)
    codes = sample_window(prior, prior.condition(y, above), prior.cfg.n_ctx, generator=torch.Generator().manual_seed(7))
    assert not codes.is_inference()
    codes[:, 0] = 3
    loss = prior.losses(codes, prior.condition(y, above))["gen"]
    loss.backward()
    assert prior.x_emb.weight.grad is not None and prior.x_emb.weight.grad.abs().sum() > 0


def test_draw_follows_the_distribution_and_never_draws_impossible_tokens():
    logits = torch.tensor([[0.0, 1.0, 2.0, float("-inf"), 0.5], [float("-inf"), 3.0, float("-inf"), 0.0, 0.0]])
    gen = torch.Generator().manual_seed(0)
    n = 40_000
    for row in range(2):
        drawn = draw(logits[row].expand(n, -1), gen)  # n independent draws in one call
        freq = torch.bincount(drawn, minlength=5).double() / n
        expected = logits[row].softmax(-1).double()
        assert freq[expected == 0].sum() == 0
        assert (freq - expected).abs().max() < 0.01  # 4 standard errors at n = 40,000


def test_int8_prepare_prior_keeps_quality_on_the_shipped_model(bundle):
    """Teacher-forced bits per token on windows of held-out codes move by less than 0.02 with int8
    weights, most argmax predictions stay, and the float32 prior is left as it was."""
    prior, y, above = _window_inputs(bundle, 1)
    before = {k: v.clone() for k, v in prior.state_dict().items()}
    int8 = prepare_prior(prior, quantize="int8")
    assert prior.state_dict().keys() == before.keys()
    assert all(torch.equal(v, before[k]) for k, v in prior.state_dict().items())
    mlps = lambda m: [layer.mlp for layer in m.transformer.layers]  # noqa: E731
    assert not any(mlp.folded for mlp in mlps(prior)) and all(mlp.folded for mlp in mlps(int8))
    codes = torch.randint(0, prior.cfg.l_bins, (2, prior.cfg.n_ctx), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        # codes the prior itself finds likely: its own greedy continuation of a short random prompt
        cond = prior.condition(y, above)
        codes = sample_window(
            prior, cond, prior.cfg.n_ctx, prompt=codes[:, :16], top_k=4, generator=torch.Generator().manual_seed(4)
        )
        bits = {
            name: m.losses(codes, m.condition(y, above))["gen"].item() for name, m in (("fp32", prior), ("int8", int8))
        }
        agree = (prior(codes, cond).argmax(-1) == int8(codes, int8.condition(y, above)).argmax(-1)).float().mean()
    assert abs(bits["int8"] - bits["fp32"]) < 0.02
    assert agree > 0.9


def test_prepare_prior_refuses_what_it_cannot_do(bundle):
    prior = bundle.load_prior(0)
    assert prepare_prior(prior) is prior and prepare_prior(prior, "none") is prior
    with pytest.raises(ValueError, match="quantize must be one of none, int8"):
        prepare_prior(prior, "int4")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_cuda_graph_replay_equals_the_eager_step(bundle):
    prior, y, above = _window_inputs(bundle, 0)
    prior = prior.cuda()
    with torch.no_grad():
        cond = prior.condition(y.cuda(), above.cuda())
        run = lambda graph: sample_window(prior, cond, 200, top_k=1, graph=graph)  # noqa: E731
        assert torch.equal(run(True), run(False))


def test_level_settings_quantize_samples_with_the_int8_prior(bundle):
    """``LevelSettings(quantize="int8")`` (what --quantize records) makes sample_level sample the
    int8 copy: the same codes as sampling a prior quantized beforehand, not the float32 ones."""
    prior, y, above = _window_inputs(bundle, 0)
    total = prior.cfg.n_ctx
    run = lambda p, q: sample_level(p, 2, total, y, above, LevelSettings(top_k=1, quantize=q), seed=3)  # noqa: E731
    via_settings = run(prior, "int8")
    assert torch.equal(via_settings, run(prepare_prior(prior, "int8"), "none"))
    assert not torch.equal(via_settings, run(prior, "none"))
