"""Table 1 models on LRGB PascalVOC-SP (spec pign.md §1.4, §1.6, §4.2, §4.3), as the
authors' fork builds them: VOC node encoder -> framework -> inductive node head.

Frameworks (the rows of Table 1):
* ``plain``   "w/o iterations" (the fork's DeepGNN): L convs with separate weights,
              each Conv -> [BN_l] -> [ReLU]; no dropout, no residual.
* ``itergnn`` one shared linear conv mixed by confidences (models/itergnn.py), one
              confidence per graph from a readout over its nodes.
* ``pign``    Alg. 1 through the solver core: x_{k+1} = a x_k + (1-a) T(x_k),
              T(x) = Drop(ReLU?(BN?(Conv(x)))), then dropout and the head.
Backbones (the columns): GCNConv, GATConv (PyG default: one head, no attention
dropout), SAGEConv (max aggregation, L2-normalised output).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..solver import picard
from .itergnn import iterate

N_FEATS, N_CLASSES = 14, 21  # PascalVOC-SP node features and classes (spec §5)


def make_conv(backbone: str, H: int) -> nn.Module:
    from torch_geometric.nn import GATConv, GCNConv, SAGEConv

    if backbone == "gcn":
        return GCNConv(H, H)
    if backbone == "gat":
        return GATConv(H, H)
    return SAGEConv(H, H, aggr="max", normalize=True, root_weight=True, project=False)


class NodeHead(nn.Module):
    """GNNInductiveNodeHead(H, H, 21, L) (spec §1.6): L = 1 is one Linear; L > 1 is PyG's
    MLP(H, H, H, L-1) (Linear -> BN -> ReLU ... plain last layer) then Linear(H, 21)."""

    def __init__(self, H: int, layers: int):
        super().__init__()
        from torch_geometric.nn import MLP

        self.mlp = MLP(in_channels=H, hidden_channels=H, out_channels=H, num_layers=layers - 1) if layers > 1 else None
        self.out = nn.Linear(H, N_CLASSES)

    def forward(self, h):
        return self.out(self.mlp(h) if self.mlp is not None else h)


class VocGNN(nn.Module):
    def __init__(
        self,
        framework: str,
        backbone: str,
        hidden: int,
        depth: int,
        a: float = 0.7,
        head_layers: int = 3,
        use_bn: bool = False,
        use_relu: bool = True,
        gnn_dropout: float = 0.0,
        mlp_dropout: float = 0.0,
        itergnn_variant: str = "fork",
        readout: str = "max",
        stop_mass: float = 1e-7,
        fk_unused_params: bool = True,
    ):
        super().__init__()
        H = hidden
        self.framework, self.depth, self.a = framework, depth, a
        self.use_bn, self.use_relu = use_bn, use_relu
        self.gnn_dropout, self.mlp_dropout = gnn_dropout, mlp_dropout
        self.variant, self.readout, self.stop_mass = itergnn_variant, readout, stop_mass
        self.enc = nn.Linear(N_FEATS, H)  # VOCNodeEncoder: Linear(14, H), no activation
        if framework == "plain":
            self.convs = nn.ModuleList(make_conv(backbone, H) for _ in range(depth))
            self.bns = nn.ModuleList(nn.BatchNorm1d(H) for _ in range(depth)) if use_bn else None
        else:
            self.conv = make_conv(backbone, H)
        # The fork always builds PIGN's shared BN and DeepGNN's (unused) confidence Linear,
        # so its parameter counts include them; fk_unused_params keeps that accounting.
        if framework == "pign" and (use_bn or fk_unused_params):
            self.bn = nn.BatchNorm1d(H)
        if framework == "itergnn" or (framework == "plain" and fk_unused_params):
            self.conf = nn.Linear(H, 1)  # LobsterEncoder(H, 1): Linear + sigmoid
        self.head = NodeHead(H, head_layers)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def forward(self, x, edge_index, batch, trace: bool = False, iters: int | None = None):
        h = self.enc(x)
        stats = None
        if self.framework == "plain":
            for i, conv in enumerate(self.convs):
                h = conv(h, edge_index)
                h = self.bns[i](h) if self.bns is not None else h
                h = F.relu(h) if self.use_relu else h
        elif self.framework == "itergnn":
            from torch_geometric.nn import global_max_pool, global_mean_pool
            from torch_geometric.nn.pool import global_add_pool

            pool = {"max": global_max_pool, "mean": global_mean_pool, "sum": global_add_pool}[self.readout]

            def confidence(z):  # one scalar per graph, gathered to its nodes
                return torch.sigmoid(self.conf(pool(z, batch)))[batch]

            h, stats = iterate(
                lambda z: self.conv(z, edge_index),
                confidence,
                h,
                iters or self.depth,
                stop_mass=self.stop_mass,
                variant=self.variant,
            )
        else:

            def T(z):  # Alg. 1 line 4: z = Drop(ReLU?(BN?(Conv(G, x_k))))
                z = self.conv(z, edge_index)
                z = self.bn(z) if self.use_bn else z
                z = F.relu(z) if self.use_relu else z
                return F.dropout(z, self.gnn_dropout, self.training)

            # Alg. 1 line 5: x_{k+1} = a x_k + (1 - a) T(x_k), exactly K steps.
            h, stats = picard(T, h, a=self.a, max_iter=iters or self.depth, trace=trace, divergence=None)
            h = F.dropout(h, self.mlp_dropout, self.training)
        return self.head(h), stats
