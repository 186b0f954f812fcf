"""GCN, GAT and PIGN as *stacked* models: S independent networks (one per seed)
trained as one, with weights stacked on a seed dimension.

Why: Table 5 is 100 runs per cell of small full-batch models. Stacking turns
100 skinny ``X @ W`` products into one wide one and one sparse propagation
``Â @ [Y_1 ... Y_S]``. The loss is the sum of the per-seed losses, so each
seed's gradient is exactly its own; Adam and its L2 weight decay act elementwise,
so stacked training is the same optimisation as S separate trainings.

Layout: activations are node-major ``(N, S, H)`` so a propagation over the graph
is one sparse-dense product on the ``(N, S*H)`` view.

Modules, in import order (each imports only those before it):
* :mod:`.graph`: :class:`Graph`, the normalised adjacency and edge lists, built once per dataset.
* :mod:`.ops`: dropout and :func:`dropout_rng`, the per-seed / shared products, GCN's propagation.
* :mod:`.attention`: GAT's edge softmax and attention-weighted aggregation.
* :mod:`.layers`: per-seed initialisation and the stacked GCNConv / GATConv / Linear layers.
* :mod:`.models`: :class:`PlainGNN`, :class:`PIGN` (the paper's Alg. 1) and :class:`IterGNN`.

Switches are module globals of the module that reads them: ``ops.REUSE_PRODUCTS`` (patch it there).
"""

from .attention import _AttentionAggregate, _edge_softmax, attention_aggregate, edge_softmax
from .graph import Graph
from .layers import StackedGATConv, StackedGCNConv, StackedLinear
from .models import PIGN, IterGNN, PlainGNN
from .ops import dropout, dropout_rng, linear, propagate, propagate_bias, seed_linear, seed_matmul, shared_linear

__all__ = [
    "Graph",
    "dropout",
    "dropout_rng",
    "shared_linear",
    "seed_matmul",
    "seed_linear",
    "linear",
    "propagate",
    "propagate_bias",
    "_AttentionAggregate",
    "_edge_softmax",
    "edge_softmax",
    "attention_aggregate",
    "StackedGCNConv",
    "StackedGATConv",
    "StackedLinear",
    "PlainGNN",
    "PIGN",
    "IterGNN",
]
