"""FSDP2 (torch.distributed.fsdp.fully_shard) training with fastopt's optimizer over gloo.

FSDP2 shards every parameter across the processes: each holds a DTensor whose
local tensor is its rows of the parameter, and after backward its rows of the
averaged gradient. A ``fastopt.torch`` optimizer steps each process's shard in
place (its state is sharded the same way, as DTensors, as torch.optim keeps
it); for an elementwise rule this is the step of the whole tensor. The script
trains a small model on N processes on this machine and checks the result
against one process running the torch.optim optimizer of the same name on the
whole batch.

    python examples/fsdp2_gloo.py --world-size 2                  # AdamW
    python examples/fsdp2_gloo.py --optimizer NAdam
    torchrun --nproc-per-node 2 examples/fsdp2_gloo.py             # started by torchrun

Optimizers whose step reduces over a whole tensor — Adafactor's row and column
means, Muon's orthogonalization, ``offload_step``'s gradient norm — refuse
DTensor parameters with an error saying so.
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
from torch.distributed.fsdp import fully_shard

import fastopt.torch

STEPS, PER_RANK = 12, 8
KWARGS = {"AdamW": dict(lr=1e-2, weight_decay=0.1), "NAdam": dict(lr=1e-2, weight_decay=0.01),
          "SGD": dict(lr=0.05, momentum=0.9, nesterov=True)}


def make_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 4)).double()


def batches(world_size):
    """The same global batches on every rank: STEPS × (PER_RANK · world_size) rows."""
    g = torch.Generator().manual_seed(1)
    X = torch.randn(STEPS, PER_RANK * world_size, 16, generator=g, dtype=torch.float64)
    y = torch.randn(STEPS, PER_RANK * world_size, 4, generator=g, dtype=torch.float64)
    return X, y


def refusals(model):
    """What a whole-tensor optimizer says to DTensor parameters (no step is taken)."""
    messages = []
    for make in (lambda: fastopt.torch.Adafactor(model.parameters()),
                 lambda: fastopt.torch.Muon([p for p in model.parameters() if p.dim() == 2])):
        try:
            make().step()
        except ValueError as e:
            messages.append(str(e))
    try:
        fastopt.torch.AdamW(model.parameters()).offload_step()
    except ValueError as e:
        messages.append(str(e))
    return messages


def train(rank, world_size, out=None, optimizer="AdamW"):
    """One rank: fully_shard each layer and the model, then a fastopt.torch optimizer.
    Rank 0 saves the full parameters, its optimizer state and the refusals to ``out``."""
    dist.init_process_group("gloo", rank=rank, world_size=world_size, timeout=datetime.timedelta(seconds=120))
    torch.set_num_threads(1)
    model = make_model()
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            fully_shard(layer)
    fully_shard(model)
    opt = getattr(fastopt.torch, optimizer)(model.parameters(), **KWARGS[optimizer])
    X, y = batches(world_size)
    rows = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
    for t in range(STEPS):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(X[t, rows]), y[t, rows]).backward()
        opt.step()
    params = [p.full_tensor().detach().clone() for p in model.parameters()]  # a collective: every rank
    messages = refusals(model)
    if rank == 0 and out is not None:
        state = {i: {k: type(v).__name__ for k, v in opt.state[p].items()} for i, p in enumerate(model.parameters())}
        torch.save({"params": params, "state_types": state, "refusals": messages}, out)
    dist.barrier()
    del model, opt
    gc.collect()
    dist.destroy_process_group()


def _spawned(rank, world_size, port, out, optimizer):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size))
    train(rank, world_size, out, optimizer)


def single_process_reference(world_size, optimizer="AdamW"):
    """torch.optim's optimizer of that name on the whole batch in one process."""
    model = make_model()
    opt = getattr(torch.optim, optimizer)(model.parameters(), **KWARGS[optimizer])
    X, y = batches(world_size)
    for t in range(STEPS):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(X[t]), y[t]).backward()
        opt.step()
    return [p.detach() for p in model.parameters()]


def run(world_size, port=29611, optimizer="AdamW"):
    """Spawn `world_size` ranks on localhost; returns (max |difference| from the single-process
    reference, rank 0's state types per parameter, the refusals' messages)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "rank0.pt")
        ranks = mp.spawn(_spawned, args=(world_size, port, out, optimizer), nprocs=world_size, join=False)
        deadline = time.monotonic() + 300
        while not ranks.join(timeout=5):  # raises if a rank failed
            if time.monotonic() > deadline:
                for process in ranks.processes:
                    process.kill()
                raise TimeoutError(f"{world_size} ranks did not finish in 300 s")
        saved = torch.load(out)
    reference = single_process_reference(world_size, optimizer)
    diff = max(float((a - b).abs().max()) for a, b in zip(saved["params"], reference))
    return diff, saved["state_types"], saved["refusals"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--world-size", type=int, default=2)
    parser.add_argument("--optimizer", choices=sorted(KWARGS), default="AdamW")
    args = parser.parse_args()
    if "RANK" in os.environ:  # started by torchrun
        train(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), optimizer=args.optimizer)
        return
    diff, _, _ = run(args.world_size, optimizer=args.optimizer)
    print(f"{args.world_size} processes with FSDP2: max |difference| from one process with "
          f"torch.optim.{args.optimizer} = {diff:.2e}")


if __name__ == "__main__":
    main()
