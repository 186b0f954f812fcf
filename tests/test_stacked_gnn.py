"""The stacked (many-seed) layers must compute exactly what PyG's layers compute."""

import torch

from picard_cli.models.stacked_gnn import Graph, PIGN, PlainGNN, StackedGATConv, StackedGCNConv

torch.manual_seed(0)
N, FIN, H = 30, 12, 6
EDGES = torch.randint(0, N, (2, 90))
EDGES = torch.cat([EDGES, EDGES.flip(0)], 1)


def _graph():
    return Graph.build(EDGES, N)


def test_gcn_conv_matches_pyg_per_seed():
    from torch_geometric.nn import GCNConv

    gens = [torch.Generator().manual_seed(s) for s in (1, 2, 3)]
    conv = StackedGCNConv(gens, FIN, H)
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(N, FIN)
    out = conv(x, _graph())  # (N, S, H)
    for s in range(3):
        ref = GCNConv(FIN, H)
        with torch.no_grad():
            ref.lin.weight.copy_(conv.weight[s].T)
            ref.bias.copy_(conv.bias[s])
        torch.testing.assert_close(out[:, s], ref(x, EDGES), rtol=1e-5, atol=1e-5)


def test_gat_conv_matches_pyg_per_seed_concat_and_mean():
    from torch_geometric.nn import GATConv

    for concat in (True, False):
        gens = [torch.Generator().manual_seed(s) for s in (4, 5)]
        conv = StackedGATConv(gens, FIN, H, heads=3, concat=concat, attn_dropout=0.0).eval()
        with torch.no_grad():
            conv.bias.normal_()
        x = torch.randn(N, 2, FIN)  # per-seed inputs
        out = conv(x, _graph())
        for s in range(2):
            ref = GATConv(FIN, H, heads=3, concat=concat).eval()
            with torch.no_grad():
                ref.lin.weight.copy_(conv.weight[s].T)
                ref.att_src.copy_(conv.att_src[s].unsqueeze(0))
                ref.att_dst.copy_(conv.att_dst[s].unsqueeze(0))
                ref.bias.copy_(conv.bias[s])
            torch.testing.assert_close(out[:, s], ref(x[:, s], EDGES), rtol=1e-5, atol=1e-5)


def test_seed_slices_do_not_depend_on_stack_mates():
    a = StackedGCNConv([torch.Generator().manual_seed(7), torch.Generator().manual_seed(8)], FIN, H)
    b = StackedGCNConv([torch.Generator().manual_seed(9), torch.Generator().manual_seed(7)], FIN, H)
    torch.testing.assert_close(a.weight[0], b.weight[1])


def test_parameter_counts_match_spec():
    # spec pign.md §4.1: Cora (F 1433, C 7) GCN-2 46,119; GAT-2 92,373; PIGN-GCN H32 47,175; PIGN-GAT H64 126,087
    g = [torch.Generator().manual_seed(0)]

    def count(m):
        return sum(p.numel() for p in m.parameters())

    assert count(PlainGNN(g, "gcn", 1433, 7, 2, 32, 8, 0.5, 0.6)) == 46119
    assert count(PlainGNN(g, "gat", 1433, 7, 2, 8, 8, 0.6, 0.6)) == 92373
    assert count(PlainGNN(g, "gat", 1433, 7, 3, 8, 8, 0.6, 0.6)) == 126229
    assert count(PIGN(g, "gcn", 1433, 7, 2, 32, 8, 0.5, 0.6, 0.6, "xavier")) == 47175
    assert count(PIGN(g, "gat", 1433, 7, 2, 64, 8, 0.6, 0.6, 0.7, "xavier")) == 126087


def test_stacked_gradients_are_per_seed():
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    model = PIGN(gens, "gcn", FIN, 3, 3, H, 1, 0.0, 0.0, 0.5, "xavier")
    x = torch.randn(N, FIN)
    logits, _ = model(x, _graph())
    logits[:, 0].sum().backward()  # loss of seed 0 only
    assert model.conv.weight.grad[0].abs().sum() > 0
    assert model.conv.weight.grad[1].abs().sum() == 0


def test_attention_aggregate_gradcheck():
    from picard_cli.models.stacked_gnn import _AttentionAggregate

    src = torch.tensor([0, 1, 2, 2, 3, 0])
    dst = torch.tensor([1, 1, 0, 3, 3, 2])
    alpha = torch.rand(6, 2, 3, dtype=torch.double, requires_grad=True)
    xp = torch.randn(4, 2, 3, 5, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, x: _AttentionAggregate.apply(a, x, src, dst, 4), (alpha, xp))


def test_seed_matmul_gradients_and_double_backward():
    from picard_cli.models.stacked_gnn import seed_matmul

    a = torch.randn(3, 7, 5, dtype=torch.double, requires_grad=True)
    w = torch.randn(3, 5, 4, dtype=torch.double, requires_grad=True)
    assert torch.equal(seed_matmul(a, w), torch.bmm(a, w))
    assert torch.autograd.gradcheck(seed_matmul, (a, w))
    assert torch.autograd.gradgradcheck(seed_matmul, (a, w))
    # the weight gradient, taken in the other order, equals autograd's through bmm
    g = torch.randn(3, 7, 4, dtype=torch.double)
    ours = torch.autograd.grad(seed_matmul(a, w), (a, w), g)
    ref = torch.autograd.grad(torch.bmm(a, w), (a, w), g)
    for x, y in zip(ours, ref):
        torch.testing.assert_close(x, y)
    # node-major output with a bias, narrow and wide (the two ways it is written)
    for width in (5, 200):
        a = torch.randn(7, 3, width, dtype=torch.double).transpose(0, 1).requires_grad_()  # node-major memory
        w = torch.randn(3, width, 4, dtype=torch.double, requires_grad=True)
        b = torch.randn(3, 4, dtype=torch.double, requires_grad=True)
        out = seed_matmul(a, w, node_major=True, bias=b)
        assert out.shape == (7, 3, 4) and out.is_contiguous()
        torch.testing.assert_close(out, (torch.bmm(a, w) + b.unsqueeze(1)).transpose(0, 1))
        assert torch.autograd.gradcheck(lambda a, w, b: seed_matmul(a, w, True, b), (a, w, b))
        assert torch.autograd.gradgradcheck(lambda a, w, b: seed_matmul(a, w, True, b), (a, w, b))


def test_shared_product_is_reused_only_at_the_same_weights():
    from picard_cli.models.stacked_gnn import shared_linear

    x = torch.randn(N, FIN)
    w = torch.nn.Parameter(torch.randn(3, FIN, H))
    y_train = shared_linear(x, w)  # with gradients: computed, remembered
    with torch.no_grad():
        y_eval = shared_linear(x, w)
        assert y_eval is w._picard_memo[2] and torch.equal(y_eval, y_train)
        assert shared_linear(x.clone(), w) is not y_eval  # another input: computed
        w.add_(1.0)  # an optimiser step bumps the version: computed again
        torch.testing.assert_close(shared_linear(x, w), torch.einsum("nf,sfh->nsh", x, w))
    assert shared_linear(x, w).grad_fn is not None  # training passes always build their graph


def test_reusing_products_and_evaluating_late_change_no_number(synth_root, monkeypatch):
    """The training loop evaluates epoch t after epoch t+1's forward pass, reusing its first-layer
    product; records must equal those of a run that recomputes everything."""
    from dataclasses import asdict

    from picard_cli.experiments.pign import Pign, PignConfig
    from picard_cli.models import stacked_gnn
    from picard_cli.runner import Context

    ctx = Context("cpu", synth_root)
    cells = [
        dict(model="plain", backbone="gcn", noise=0.0, features="sparse"),
        dict(model="pign", backbone="gat", noise=0.5, heads=2),
        dict(model="plain", backbone="gat", noise=0.5, heads=2, depth=3),
    ]
    feature_products = []  # sparse products with the feature matrix (clean cells), to see the reuse happen
    sparse_mm = torch.sparse.mm
    monkeypatch.setattr(
        torch.sparse, "mm", lambda a, b: (feature_products.append(b.shape[0] != a.shape[0]), sparse_mm(a, b))[1]
    )
    for cell in cells:
        cfg = asdict(PignConfig(epochs=6, hidden=8, **cell))

        def runs():
            return [r.metrics for r in Pign().run_group([dict(cfg, seed=s) for s in (0, 1)], ctx)]

        feature_products.clear()
        reused, n_reused = runs(), sum(feature_products)
        monkeypatch.setattr(stacked_gnn.ops, "REUSE_PRODUCTS", False)
        feature_products.clear()
        assert runs() == reused, cell
        if cell["noise"] == 0.0:  # 6 training passes + the evaluation after the last step; recomputing: 6 + 6 + 1
            assert (n_reused, sum(feature_products)) == (7, 13)
        monkeypatch.setattr(stacked_gnn.ops, "REUSE_PRODUCTS", True)
