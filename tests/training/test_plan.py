"""``train prior --plan``: memory per rank worked out on the meta device."""

import json
import math

import pytest

from openjukebox.cli.main import main
from openjukebox.prior.config import get_preset
from openjukebox.training.plan import BF16, FP32, measure_activations, memory_plan

from ..conftest import FIXTURES


def _block_params(w: int) -> int:
    """One residual block of width W by hand: two layer norms, qkv and proj (W/4 wide), the MLP (W wide)."""
    a = w // 4
    return 2 * 2 * w + (w * 3 * a + 3 * a) + (a * w + w) + 2 * (w * w + w)


def test_the_5b_plan_on_8_ranks_is_the_tested_parameter_count_times_bytes():
    n = json.loads((FIXTURES / "openai" / "keys_summary.json").read_text())["prior_5b"]["n_params"]
    cfg = get_preset("prior_5b")
    plan = memory_plan("prior_5b", cfg, 8, 8)
    assert plan.n_params == n == 5_060_452_800
    assert plan.batch_per_rank == 1 and plan.tokens == 8192
    rows = {(r.strategy, r.checkpointing): r for r in plan.rows}
    block = _block_params(cfg.width)
    root = n - cfg.depth * block  # embeddings, positions, labels, output layer
    for ckpt in (False, True):
        ddp, fsdp = rows["ddp", ckpt], rows["fsdp", ckpt]
        assert (ddp.params, ddp.bf16_weights, ddp.grads, ddp.optimizer) == (4 * n, 2 * n, 4 * n, 8 * n)
        shard = math.ceil(n / 8)
        assert (fsdp.params, fsdp.grads, fsdp.optimizer) == (FP32 * shard, FP32 * shard, 2 * FP32 * shard)
        assert fsdp.bf16_weights == BF16 * (root + 2 * block)
        assert ddp.activations == fsdp.activations
    act = measure_activations(cfg, 1)
    assert len(act.blocks) == 72 and act.block_input == 8192 * 4800 * 2
    assert rows["fsdp", True].activations == act.rest + 72 * act.block_input + max(act.blocks)
    assert rows["fsdp", False].activations == act.rest + sum(act.blocks)
    # what the README states: FSDP with checkpointing fits an 80 GB card, DDP does not
    assert rows["fsdp", True].total < 20 * 2**30 < 80 * 2**30 < rows["ddp", True].total


def test_saved_activations_grow_with_the_batch_and_checkpointing_keeps_less():
    cfg = get_preset("small")
    one, two = measure_activations(cfg, 1), measure_activations(cfg, 2)
    assert [2 * b for b in one.blocks] == pytest.approx(two.blocks, rel=1e-3)  # masks do not grow
    assert 2 * one.rest == pytest.approx(two.rest, rel=1e-3)
    assert min(one.blocks) > 4 * one.block_input  # a block saves far more than its input
    plan = memory_plan("small", cfg, 4, 8)
    ddp, ddp_ckpt = plan.rows[0], plan.rows[1]
    assert ddp_ckpt.activations < ddp.activations and plan.batch_per_rank == 2


def test_the_command_prints_the_plan(capsys):
    assert main(["train", "prior", "--preset", "prior_5b", "--plan", "--world-size", "8"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == memory_plan("prior_5b", get_preset("prior_5b"), 8, 8).table()
    assert "5,060,452,800 parameters; 8 ranks" in out


@pytest.mark.parametrize("size", ["0", "-1"])
def test_a_world_size_below_one_is_refused(size):
    with pytest.raises(ValueError, match="world size"):
        memory_plan("tiny_top", get_preset("tiny_top"), int(size), 8)
