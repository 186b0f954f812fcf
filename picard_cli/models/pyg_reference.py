"""The straightforward per-seed PyG models and training loop (one model, one seed,
PyG's own GCNConv / GATConv): the yardstick that the stacked models are checked
against in tests and timed against in benchmarks/pign_throughput.py."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RefGNN(nn.Module):
    def __init__(self, model, backbone, F_in, C, depth, hidden, heads, dropout, attn_dropout, a):
        from torch_geometric.nn import GATConv, GCNConv

        super().__init__()
        self.model, self.backbone, self.p, self.a, self.K = model, backbone, dropout, a, depth
        if model == "pign":
            self.enc, self.dec = nn.Linear(F_in, hidden), nn.Linear(hidden, C)
            for lin in (self.enc, self.dec):
                nn.init.xavier_normal_(lin.weight)
                nn.init.zeros_(lin.bias)
            self.conv = (
                GCNConv(hidden, hidden)
                if backbone == "gcn"
                else GATConv(hidden, hidden, heads=heads, concat=False, dropout=attn_dropout)
            )
        elif backbone == "gcn":
            dims = [F_in] + [hidden] * (depth - 1) + [C]
            self.convs = nn.ModuleList(GCNConv(dims[i], dims[i + 1]) for i in range(depth))
        else:
            wide = hidden * heads
            convs = [GATConv(F_in, hidden, heads=heads, dropout=attn_dropout)]
            convs += [GATConv(wide, wide, heads=heads, concat=False, dropout=attn_dropout) for _ in range(depth - 2)]
            convs.append(GATConv(wide, C, heads=1, concat=False, dropout=attn_dropout))
            self.convs = nn.ModuleList(convs)

    def forward(self, x, edge_index):
        if self.model == "pign":
            h = F.dropout(F.relu(self.enc(x)), self.p, self.training)
            for _ in range(self.K):  # Alg. 1: x_{k+1} = a x_k + (1 - a) T(x_k)
                z = F.dropout(F.relu(self.conv(h, edge_index)), self.p, self.training)
                h = self.a * h + (1 - self.a) * z
            return self.dec(h)
        act = F.relu if self.backbone == "gcn" else F.elu
        h = x
        for conv in self.convs[:-1]:
            h = F.dropout(act(conv(h, edge_index)), self.p, self.training)
        return self.convs[-1](h, edge_index)


def train_one(cfg: dict, x, data, device="cpu") -> dict:
    """One seed, 200 full-batch epochs, validation every epoch (as the authors' loop)."""
    torch.manual_seed(cfg["seed"])
    C = int(data.y.max()) + 1
    model = RefGNN(
        cfg["model"],
        cfg["backbone"],
        x.shape[1],
        C,
        cfg["depth"],
        cfg["hidden"],
        cfg["heads"],
        cfg["dropout"],
        cfg["attn_dropout"],
        cfg["a"],
    ).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    x, ei, y = x.to(device), data.edge_index.to(device), data.y.to(device)
    tr, va, te = data.train_mask.to(device), data.val_mask.to(device), data.test_mask.to(device)
    for _ in range(cfg["epochs"]):
        model.train()
        opt.zero_grad()
        F.cross_entropy(model(x, ei)[tr], y[tr]).backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            pred = model(x, ei).argmax(-1)
            val = (pred[va] == y[va]).float().mean().item()
            test = (pred[te] == y[te]).float().mean().item()
    return {"test_acc_last": test, "val_acc_last": val}
