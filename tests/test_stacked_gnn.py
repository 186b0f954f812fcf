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
    count = lambda m: sum(p.numel() for p in m.parameters())
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
