"""ZeRO-sharded training with fastopt's optimizer over torch.distributed (gloo).

Each process holds the whole model (DistributedDataParallel averages the
gradients) but only its shard of the optimizer state: ZeroRedundancyOptimizer
builds a ``fastopt.torch.AdamW`` over its shard and broadcasts the updated
parameters. The script trains a small model on N processes on this machine and
checks the result against one process running ``torch.optim.AdamW`` on the
whole batch.

    python examples/zero_gloo.py --world-size 2            # processes on this machine
    torchrun --nproc-per-node 2 examples/zero_gloo.py       # the same, started by torchrun
    python examples/zero_gloo.py --optimizer muon           # Muon for the weights, AdamW for the biases
    python examples/zero_gloo.py --optimizer adamw-int8     # AdamW with 8-bit state (float32 model)

With ``--optimizer muon`` each rank's shard is a ``fastopt.torch.Muon`` over
whole matrices (ZeroRedundancyOptimizer shards tensors, never splits one), so
each weight is orthogonalized on the rank that holds it; the reference is one
process running the same optimizer on the whole batch. With ``--optimizer
adamw-int8`` the model is float32 and the state 8-bit (uint8 codes and their
absmax, sharded and consolidated like any state); the reference is float32
``torch.optim.AdamW``, which it follows to within the quantization.

Across machines, start one process per rank with torchrun
(``--nnodes 2 --node-rank i --master-addr HOST --master-port PORT``): the
worker reads RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT from the
environment ("env://"), so the code does not change.
"""
import argparse
import datetime
import gc
import os
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.distributed.optim import ZeroRedundancyOptimizer
from torch.nn.parallel import DistributedDataParallel as DDP

import fastopt.torch

STEPS, PER_RANK = 12, 8


def dtype_of(optimizer):
    """float32 for 8-bit state (which float64 parameters do not keep), else float64."""
    return torch.float32 if optimizer == "adamw-int8" else torch.float64


def make_model(dtype=torch.float64):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 4)).to(dtype)


def batches(world_size, dtype=torch.float64):
    """The same global batches on every rank: STEPS × (PER_RANK · world_size) rows."""
    g = torch.Generator().manual_seed(1)
    X = torch.randn(STEPS, PER_RANK * world_size, 16, generator=g, dtype=torch.float64).to(dtype)
    y = torch.randn(STEPS, PER_RANK * world_size, 4, generator=g, dtype=torch.float64).to(dtype)
    return X, y


def optimizer_setup(model, optimizer):
    """(parameter groups, fastopt.torch class, its arguments) of ``optimizer``: "adamw",
    "adamw-int8" (8-bit state, every tensor), or "muon" (Muon for the weight matrices,
    AdamW for the biases; the Newton–Schulz iteration in float64 so that the runs agree
    to rounding)."""
    if optimizer == "adamw":
        return list(model.parameters()), fastopt.torch.AdamW, dict(lr=1e-2, weight_decay=0.1)
    if optimizer == "adamw-int8":
        return (list(model.parameters()), fastopt.torch.AdamW,
                dict(lr=1e-2, weight_decay=0.1, state_dtype="int8", min_8bit_size=0))
    weights = [p for p in model.parameters() if p.dim() >= 2]
    biases = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": weights}, {"params": biases, "use_muon": False, "lr": 1e-2}]
    return groups, fastopt.torch.Muon, dict(lr=2e-2, weight_decay=0.1, ns_dtype=torch.float64)


def train(rank, world_size, out=None, shard=True, optimizer="adamw"):
    """One rank: DDP + ZeroRedundancyOptimizer(fastopt.torch.AdamW or Muon) (or the
    optimizer on every rank, ``shard=False``). Rank 0 saves the parameters and the
    consolidated optimizer state to ``out``."""
    # A rank that fails makes the others time out after two minutes instead of gloo's thirty.
    dist.init_process_group("gloo", rank=rank, world_size=world_size, timeout=datetime.timedelta(seconds=120))
    torch.set_num_threads(1)
    model = DDP(make_model(dtype_of(optimizer)))
    groups, cls, kwargs = optimizer_setup(model.module, optimizer)
    if shard:
        opt = ZeroRedundancyOptimizer(groups, optimizer_class=cls, **kwargs)
    else:
        opt = cls(groups, **kwargs)
    X, y = batches(world_size, dtype_of(optimizer))
    rows = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
    for t in range(STEPS):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(X[t, rows]), y[t, rows]).backward()
        opt.step()
    if shard:
        opt.consolidate_state_dict(to=0)
    if rank == 0 and out is not None:
        torch.save({"params": [p.detach().clone() for p in model.parameters()], "state_dict": opt.state_dict()},
                   out)
    # Every rank is done before any tears the group down (rank 0 serves the
    # rendezvous store; a rank still using it when rank 0 exits would wait).
    dist.barrier()
    # DDP and the optimizer go before the group does. DDP's reducer frees its
    # reference to the group with the GIL held; if it were the last one, the
    # group's destructor would wait, GIL held, for a worker thread that needs the
    # GIL to free the barrier's work: a deadlock at exit (1 run in 8 here, torch
    # 2.13). destroy_process_group() drops the last reference without the GIL.
    del model, opt
    gc.collect()  # DDP's reference cycles, if any, now rather than at a later collection
    dist.destroy_process_group()


def _spawned(rank, world_size, port, out, shard, optimizer):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size))
    train(rank, world_size, out, shard, optimizer)


def single_process_reference(world_size, optimizer="adamw"):
    """torch.optim.AdamW (or fastopt's Muon) on the whole batch in one process."""
    model = make_model(dtype_of(optimizer))
    if optimizer in ("adamw", "adamw-int8"):
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    else:
        groups, cls, kwargs = optimizer_setup(model, optimizer)
        opt = cls(groups, **kwargs)
    X, y = batches(world_size, dtype_of(optimizer))
    for t in range(STEPS):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(X[t]), y[t]).backward()
        opt.step()
    return [p.detach() for p in model.parameters()]


def run(world_size, port=29511, shard=True, optimizer="adamw"):
    """Spawn `world_size` ranks on localhost; returns (max |difference| from the single-process
    reference, the consolidated state_dict)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "rank0.pt")
        ranks = mp.spawn(_spawned, args=(world_size, port, out, shard, optimizer), nprocs=world_size, join=False)
        deadline = time.monotonic() + 300
        while not ranks.join(timeout=5):  # raises if a rank failed
            if time.monotonic() > deadline:
                for process in ranks.processes:
                    process.kill()
                raise TimeoutError(f"{world_size} ranks did not finish in 300 s")
        saved = torch.load(out)
    reference = single_process_reference(world_size, optimizer)
    diff = max(float((a - b).abs().max()) for a, b in zip(saved["params"], reference))
    return diff, saved["state_dict"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--world-size", type=int, default=2)
    parser.add_argument("--optimizer", choices=["adamw", "adamw-int8", "muon"], default="adamw")
    args = parser.parse_args()
    if "RANK" in os.environ:  # started by torchrun
        train(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), optimizer=args.optimizer)
        return
    diff, state_dict = run(args.world_size, optimizer=args.optimizer)
    reference = "fastopt.torch.Muon" if args.optimizer == "muon" else "torch.optim.AdamW"
    print(f"{args.world_size} processes: max |difference| from one process with {reference} = {diff:.2e}; "
          f"consolidated state for {len(state_dict['state'])} parameters")


if __name__ == "__main__":
    main()
