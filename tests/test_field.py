"""Receptive-field passes (models/field.py): the field's structure, and that a field pass computes
what the full-size pass computes at the targets (outputs, gradients, dropout masks)."""

import json

import pytest
import torch

from conftest import picard
from picard_cli.models import dropout_kernels
from picard_cli.models.field import Field, restrict
from picard_cli.models.stacked_gnn import PIGN, Graph, PlainGNN, dropout, dropout_rng
from picard_cli.solver import picard as solve_picard

torch.manual_seed(0)
N, F_IN, C = 60, 12, 3
EDGES = torch.randint(0, N, (2, 120))
EDGES = torch.cat([EDGES, EDGES.flip(0)], 1)
GRAPH = Graph.build(EDGES, N)
TARGETS = torch.zeros(N, dtype=torch.bool)
TARGETS[[3, 7, 20, 41]] = True
X = (torch.rand(N, F_IN) < 0.3).float()


def _hops(depth):
    """Hop distance of every node to the targets along edges j -> i (brute force)."""
    dist = torch.full((N,), depth + 1)
    dist[TARGETS] = 0
    adj = torch.zeros(N, N, dtype=torch.bool)
    adj[GRAPH.dst, GRAPH.src] = True
    for d in range(1, depth + 1):
        reach = adj[dist == d - 1].any(0) & (dist > d)
        dist[reach] = d
    return dist


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_field_rows_are_the_receptive_field_in_hop_order(depth):
    f = Field.build(GRAPH, TARGETS, depth)
    dist = _hops(depth)
    assert f.targets.tolist() == TARGETS.nonzero().squeeze(1).tolist()  # ascending: logits[mask]'s rows
    assert f.sizes == [int((dist <= depth - k).sum()) for k in range(depth + 1)]
    assert dist[f.nodes].tolist() == sorted(dist[f.nodes].tolist())
    for k, layer in enumerate(f.layers):  # every edge into the layer's rows, none else, from its inputs
        rows = f.nodes[: f.sizes[k + 1]]
        want = sorted((int(s), int(d)) for s, d in zip(GRAPH.src, GRAPH.dst) if bool((rows == d).any()))
        got = sorted((int(f.nodes[s]), int(f.nodes[d])) for s, d in zip(layer.src, layer.dst))
        assert got == want
        assert layer.num_nodes == f.sizes[k + 1] and layer.num_src == f.sizes[k]
        assert int(layer.src.max()) < f.sizes[k]
        # the GCN rows are the whole graph's normalised rows
        dense = GRAPH.gcn_adj.to_dense()[rows][:, f.nodes[: f.sizes[k]]]
        torch.testing.assert_close(layer.gcn_adj.to_dense(), dense)
        torch.testing.assert_close(layer.gcn_adj_t.to_dense(), dense.t())


def test_restrict_refuses_nodes_that_miss_a_source():
    with pytest.raises(ValueError, match="source"):
        restrict(GRAPH, torch.tensor([3]), 1)  # node 3's in-neighbours are not given


def _model(kind, S, depth):
    gens = [torch.Generator().manual_seed(s) for s in range(S)]
    if kind == "pign-gcn":
        return PIGN(gens, "gcn", F_IN, C, depth, 8, 2, 0.5, 0.6, 0.6, "xavier")
    if kind == "pign-gat":
        return PIGN(gens, "gat", F_IN, C, depth, 8, 4, 0.6, 0.6, 0.7, "xavier")
    if kind == "gcn":
        return PlainGNN(gens, "gcn", F_IN, C, depth, 8, 2, 0.5, 0.6)
    return PlainGNN(gens, "gat", F_IN, C, depth, 4, 2, 0.6, 0.6)


@pytest.mark.parametrize("rng", ["torch", "counter"])
@pytest.mark.parametrize("kind,depth", [("pign-gcn", 3), ("pign-gat", 2), ("gcn", 2), ("gat", 3)])
def test_field_pass_equals_full_pass_at_the_targets(kind, depth, rng):
    if rng == "counter" and dropout_kernels.numba is None:
        pytest.skip("numba is a declared dependency; absent here")
    model = _model(kind, 3, depth)
    field = Field.build(GRAPH, TARGETS, depth)
    assert field.sizes[0] < N  # the test exercises a real restriction
    out = {}
    for name, kw in (("full", {}), ("field", {"field": field})):
        model.zero_grad()
        torch.manual_seed(5)
        with dropout_rng(rng):
            logits, _ = model(X, GRAPH, **kw)
        logits = logits[TARGETS] if name == "full" else logits
        (logits * torch.linspace(-1, 1, logits.numel()).view(logits.shape)).sum().backward()
        out[name] = (logits.detach(), [p.grad.clone() for p in model.parameters()])
    torch.testing.assert_close(out["field"][0], out["full"][0], rtol=1e-5, atol=1e-6)
    for a, b in zip(out["field"][1], out["full"][1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    # and dropout acted: another draw gives other logits
    torch.manual_seed(6)
    with dropout_rng(rng):
        assert not torch.allclose(model(X, GRAPH, field=field)[0], out["field"][0])


@pytest.mark.parametrize("rng", ["torch", "counter"])
def test_dropout_rows_draw_the_full_tensors_masks(rng):
    if rng == "counter" and dropout_kernels.numba is None:
        pytest.skip("numba is a declared dependency; absent here")
    x = torch.randn(50, 4, 6)
    ids = torch.tensor([4, 9, 10, 31, 49])
    with dropout_rng(rng):
        torch.manual_seed(1)
        full = dropout(x, 0.5, True, "relu")
        torch.manual_seed(1)
        part = dropout(x[ids], 0.5, True, "relu", rows=(ids, 50))
    torch.testing.assert_close(part, full[ids])
    assert (part == 0).any() and (part != 0).any()


def test_counter_dropout_rows_backward_and_double_backward():
    if dropout_kernels.numba is None:
        pytest.skip("numba is a declared dependency; absent here")
    ids = torch.tensor([2, 5, 7])
    z = torch.randn(3, 40, dtype=torch.float32, requires_grad=True)
    with dropout_rng("counter"):
        torch.manual_seed(3)
        out = dropout(z, 0.6, True, "none", rows=(ids, 8))
    torch.manual_seed(3)
    m = dropout_kernels.mask((8, 40), int(torch.randint(0, 2**62, (1,))), 0.6)[ids]
    torch.testing.assert_close(out, z * m)
    g = torch.randn(3, 40)
    (gz,) = torch.autograd.grad(out, z, g, create_graph=True)
    torch.testing.assert_close(gz, g * m)


def test_picard_leading_rows_update_uses_the_leading_rows():
    x0 = torch.arange(6.0)
    sizes = iter([4, 2])

    def T(x):  # an operator whose later steps need fewer rows
        return 0.5 * x[: next(sizes)] + 1.0

    x, stats = solve_picard(T, x0, torch.ones(6), a=0.25, max_iter=2, trace=False, leading_rows=True)
    x1 = 0.25 * x0[:4] + 0.75 * (0.5 * x0[:4] + 2.0)
    torch.testing.assert_close(x, 0.25 * x1[:2] + 0.75 * (0.5 * x1[:2] + 2.0))
    assert stats.steps == 2
    with pytest.raises(ValueError, match="trace"):
        solve_picard(T, x0, a=0.5, max_iter=1, trace=True, leading_rows=True)


def test_runs_record_field_passes_and_match_full_passes(synth_root, tmp_path):
    """End to end: records say which rows ran; with PICARD_FIELD=all the first epoch's loss is the
    same (same weights, same masks, same numbers at the train nodes)."""
    recs = {}
    for mode in ("field", "all"):
        res = tmp_path / mode
        out = picard(
            "run",
            "pign",
            "--backbone",
            "gat",
            "--seeds",
            2,
            "--data-root",
            synth_root,
            "--results",
            res,
            "epochs=3",
            "hidden=8",
            "heads=2",
            env={"PICARD_FIELD": mode},
        )
        assert out.returncode == 0, out.stderr
        recs[mode] = [json.loads(line) for line in (res / "pign.jsonl").read_text().splitlines()]
    assert {r["extra"]["rows"] for r in recs["field"]} == {"field"}
    assert {r["extra"]["rows"] for r in recs["all"]} == {"all"}
    for a, b in zip(recs["field"], recs["all"]):
        assert a["key"] == b["key"]  # the same runs (config hash), computed two ways
        assert a["extra"]["train_loss_every_10"][0] == pytest.approx(b["extra"]["train_loss_every_10"][0], rel=1e-5)
