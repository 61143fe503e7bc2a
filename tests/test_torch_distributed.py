"""fastopt.torch under torch.distributed (gloo, processes on localhost): DDP,
ZeroRedundancyOptimizer and FSDP2 give the parameters of a single-process
torch.optim run, and consolidate_state_dict works. Skipped when torch is absent."""
import importlib
import pathlib
import sys

import pytest

torch = pytest.importorskip("torch")
if not torch.distributed.is_available():
    pytest.skip("torch.distributed is not available", allow_module_level=True)

# torch.distributed.optim scripts some of its functions when imported.
pytestmark = [pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:`torch.jit.interface` is deprecated:DeprecationWarning")]

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def example():
    """examples/zero_gloo.py, importable by name (the spawned ranks unpickle its functions)."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module("zero_gloo")


@pytest.mark.parametrize("world_size", [2, 3])
def test_zero_redundancy_optimizer_matches_one_process(world_size):
    diff, state_dict = example().run(world_size, port=29520 + world_size)
    assert diff < 1e-12
    assert len(state_dict["state"]) == 4  # every parameter's state, gathered from the shards
    assert all(set(s) == {"step", "exp_avg", "exp_avg_sq"} for s in state_dict["state"].values())


def test_ddp_with_a_fastopt_optimizer_matches_one_process():
    diff, state_dict = example().run(2, port=29530, shard=False)
    assert diff < 1e-12 and len(state_dict["state"]) == 4


def test_zero_redundancy_optimizer_with_muon_matches_one_process():
    """Muon for the weight matrices, AdamW for the biases, sharded by whole tensors."""
    diff, state_dict = example().run(2, port=29540, optimizer="muon")
    assert diff < 1e-12
    assert len(state_dict["state"]) == 4
    kinds = sorted(tuple(sorted(s)) for s in state_dict["state"].values())
    assert kinds == [("exp_avg", "exp_avg_sq", "step")] * 2 + [("momentum_buffer",)] * 2


def test_zero_redundancy_optimizer_with_8bit_state_is_the_unsharded_optimizer():
    """8-bit state sharded by whole tensors: the same codes and parameters as without sharding."""
    sharded_diff, sharded = example().run(2, port=29550, optimizer="adamw-int8")
    whole_diff, whole = example().run(2, port=29551, shard=False, optimizer="adamw-int8")
    assert sharded_diff == whole_diff < 0.05  # the same parameters, near float32 AdamW's
    for i, entry in whole["state"].items():
        assert entry["exp_avg"].dtype == torch.uint8 and entry["exp_avg_absmax"].dtype == torch.float32
        for key, value in entry.items():
            assert torch.equal(sharded["state"][i][key], value), (i, key)


def fsdp2_example():
    """examples/fsdp2_gloo.py, importable by name (the spawned ranks unpickle its functions)."""
    pytest.importorskip("torch.distributed.fsdp")
    if not hasattr(importlib.import_module("torch.distributed.fsdp"), "fully_shard"):
        pytest.skip("this torch has no FSDP2 (torch.distributed.fsdp.fully_shard)")
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module("fsdp2_gloo")


@pytest.mark.parametrize("world_size, optimizer", [(2, "AdamW"), (3, "NAdam")])
def test_fsdp2_sharded_parameters_match_one_process(world_size, optimizer):
    """Each process steps its shard (with 3 processes the shards are uneven: 32 rows as 11, 11, 10,
    4 as 2, 2, 0); the state is DTensors as torch.optim keeps it; whole-tensor optimizers refuse."""
    diff, state_types, refusals = fsdp2_example().run(world_size, port=29550 + world_size, optimizer=optimizer)
    assert diff < 1e-12
    assert state_types[0]["exp_avg"] == "DTensor" and state_types[0]["step"] == "Tensor"
    assert len(refusals) == 3
    assert "Adafactor" in refusals[0] and "Muon" in refusals[1] and "offload_step" in refusals[2]
