"""The fused CPU attention kernels (numba) against the torch-ops path they replace."""

import pytest
import torch

from picard_cli.models import gat_kernels
from picard_cli.models.stacked_gnn import Graph, PIGN, _AttentionAggregate, attention_aggregate

pytestmark = pytest.mark.skipif(gat_kernels.numba is None, reason="numba is a declared dependency; absent here")

torch.manual_seed(0)
N = 40
EDGES = torch.randint(0, N, (2, 150))
EDGES = torch.cat([EDGES, EDGES.flip(0)], 1)
GRAPH = Graph.build(EDGES, N)


def _path(out):
    return out.grad_fn.name().removesuffix("Backward")


def _torch_path(alpha, v):
    return _AttentionAggregate.apply(alpha, v, GRAPH.src, GRAPH.dst, 16)


@pytest.mark.parametrize("G", [1, 4])  # one value shared by the heads (PIGN-GAT's conv) / one per head
def test_kernel_matches_torch_forward_and_gradients(G):
    E, S, H, D = GRAPH.src.numel(), 3, 4, 7
    alpha = torch.rand(E, S, H, requires_grad=True)
    v = torch.randn(N, S, G, D, requires_grad=True)
    g = torch.randn(N, S, H, D)
    out = attention_aggregate(alpha, v, GRAPH)
    # the kernels' own layout needs no transposing copy: seed-major for a shared value, node-major per head
    assert _path(attention_aggregate(alpha, v, GRAPH, seed_major=G == 1)) == "_KernelAggregate"
    torch.testing.assert_close(attention_aggregate(alpha, v, GRAPH, seed_major=True), out.transpose(0, 1))
    ga, gv = torch.autograd.grad(out, (alpha, v), g)
    ref = _torch_path(alpha, v)
    ra, rv = torch.autograd.grad(ref, (alpha, v), g)
    for a, b in ((out, ref), (ga, ra), (gv, rv)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("G", [1, 3])
def test_kernel_double_backward_matches_torch(G):
    """The Jacobian penalty differentiates a vector-Jacobian product: that path must be exact too."""
    E, S, H, D = GRAPH.src.numel(), 2, 3, 5
    alpha = torch.rand(E, S, H, requires_grad=True)
    v = torch.randn(N, S, G, D, requires_grad=True)
    g = torch.randn(N, S, H, D, requires_grad=True)

    def plain(a, x):  # autograd through gather, multiply, scatter
        msg = x.index_select(0, GRAPH.src) * a.unsqueeze(-1)
        return torch.zeros(N, S, H, D).index_add(0, GRAPH.dst, msg)

    second = []
    for f in (lambda a, x: attention_aggregate(a, x, GRAPH), plain):
        ga, gv = torch.autograd.grad(f(alpha, v), (alpha, v), g, create_graph=True)
        second.append(torch.autograd.grad((ga.square().sum() + gv.square().sum()), (alpha, v, g)))
    for a, b in zip(*second):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_env_switch_selects_torch_path(monkeypatch):
    monkeypatch.setenv("PICARD_GAT_KERNEL", "torch")
    alpha, v = torch.rand(GRAPH.src.numel(), 1, 2), torch.randn(N, 1, 1, 3, requires_grad=True)
    assert _path(attention_aggregate(alpha, v, GRAPH)) == "_AttentionAggregate"
    assert gat_kernels.name() == "torch"


def test_stacked_pign_gat_trains_the_same_with_either_path(monkeypatch):
    """A few Adam steps of a stacked PIGN-GAT: losses agree between the paths to rounding."""
    x = torch.randn(N, 6)
    y = torch.randint(0, 3, (N,))

    def losses():
        torch.manual_seed(1)
        gens = [torch.Generator().manual_seed(s) for s in (0, 1)]
        model = PIGN(gens, "gat", 6, 3, 3, 8, 4, 0.0, 0.0, 0.5, "xavier")
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        out = []
        for _ in range(5):
            opt.zero_grad()
            logits, _ = model(x, GRAPH)
            loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), y.unsqueeze(1).expand(-1, 2))
            loss.backward()
            opt.step()
            out.append(loss.item())
        return out

    fused = losses()
    monkeypatch.setenv("PICARD_GAT_KERNEL", "torch")
    assert fused == pytest.approx(losses(), rel=1e-5)


def test_fused_softmax_matches_pyg_softmax_with_gradients_and_double_backward():
    from picard_cli.models.stacked_gnn import _edge_softmax, edge_softmax

    S, H = 3, 4
    a_src, a_dst = torch.randn(N, S, H, requires_grad=True), torch.randn(N, S, H, requires_grad=True)
    g = torch.randn(GRAPH.src.numel(), S, H, requires_grad=True)
    fused, ref = edge_softmax(a_src, a_dst, GRAPH), _edge_softmax(a_src, a_dst, GRAPH, 0.2)
    assert _path(fused) == "_KernelSoftmax"
    torch.testing.assert_close(fused, ref, rtol=1e-5, atol=1e-6)
    kernel = torch.autograd.grad(fused, (a_src, a_dst), g, retain_graph=True)  # the kernels' backward
    for a, b in zip(kernel, torch.autograd.grad(ref, (a_src, a_dst), g, retain_graph=True)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    first = [torch.autograd.grad(out, (a_src, a_dst), g, create_graph=True) for out in (fused, ref)]
    for a, b in zip(*first):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    second = [torch.autograd.grad(sum(t.square().sum() for t in grads), (a_src, a_dst, g)) for grads in first]
    for a, b in zip(*second):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_kernels_leave_torch_thread_count_alone():
    """numba's OpenMP pool is torch's: starting it must not resize torch's (a 1-CPU Ray task stays at 1)."""
    import subprocess
    import sys

    code = (
        "import torch; from picard_cli.models.stacked_gnn import Graph, attention_aggregate;"
        "g = Graph.build(torch.randint(0, 9, (2, 30)), 9);"
        "attention_aggregate(torch.rand(g.src.numel(), 2, 2), torch.rand(9, 2, 1, 3), g);"
        "print(torch.get_num_threads())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"
