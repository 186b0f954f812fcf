"""The fused GCN propagation kernel (numba) computes torch's ``Â y + b`` and its gradients."""

import pytest
import torch

from picard_cli.models import spmm_kernels
from picard_cli.models.stacked_gnn import Graph, PIGN, StackedGCNConv, propagate, propagate_bias

torch.manual_seed(0)
N, S, H = 25, 3, 5
EDGES = torch.randint(0, N, (2, 70))  # directed: Â is not symmetric, so the backward needs Â^T
GRAPH = Graph.build(EDGES, N)


def test_kernel_is_used_and_matches_torch_forward_and_gradients():
    assert spmm_kernels.enabled(torch.zeros(1))
    assert not torch.equal(GRAPH.gcn_adj.to_dense(), GRAPH.gcn_adj_t.to_dense())
    y = torch.randn(N, S, H, requires_grad=True)
    b = torch.randn(S, H, requires_grad=True)
    g = torch.randn(N, S, H)
    ours = propagate_bias(GRAPH, y, b)
    assert ours.grad_fn.name().startswith("_PropagateBias")
    ref = propagate(GRAPH.gcn_adj, y) + b
    torch.testing.assert_close(ours, ref)
    for x, r in zip(torch.autograd.grad(ours, (y, b), g), torch.autograd.grad(ref, (y, b), g)):
        torch.testing.assert_close(x, r)


def test_double_backward_goes_through_torch_ops():
    y = torch.randn(N, S, H, requires_grad=True)
    b = torch.randn(S, H, requires_grad=True)
    g = torch.randn(N, S, H, requires_grad=True)
    (gy,) = torch.autograd.grad(propagate_bias(GRAPH, y, b), y, g, create_graph=True)
    (gy_ref,) = torch.autograd.grad(propagate(GRAPH.gcn_adj, y) + b, y, g, create_graph=True)
    w = torch.randn_like(gy)
    torch.testing.assert_close(torch.autograd.grad((gy * w).sum(), g)[0], torch.autograd.grad((gy_ref * w).sum(), g)[0])


def test_env_switch_selects_torch_path(monkeypatch):
    monkeypatch.setenv("PICARD_SPMM_KERNEL", "torch")
    y = torch.randn(N, S, H, requires_grad=True)
    assert not propagate_bias(GRAPH, y, torch.zeros(S, H)).grad_fn.name().startswith("_PropagateBias")


@pytest.mark.parametrize("depth", [2, 4])
def test_pign_gcn_trains_the_same_with_either_path(monkeypatch, depth):
    def train(kernel):
        monkeypatch.setenv("PICARD_SPMM_KERNEL", kernel)
        torch.manual_seed(1)
        m = PIGN(
            [torch.Generator().manual_seed(s) for s in range(S)], "gcn", 7, 3, depth, H, 1, 0.0, 0.0, 0.5, "xavier"
        )
        x = torch.randn(N, 7)
        opt = torch.optim.Adam(m.parameters(), lr=0.01)
        for _ in range(5):
            opt.zero_grad()
            m(x, GRAPH)[0].square().mean().backward()
            opt.step()
        return m(x, GRAPH)[0].detach()

    torch.testing.assert_close(train("numba"), train("torch"), rtol=1e-4, atol=1e-5)


def test_conv_output_is_node_major_contiguous():
    conv = StackedGCNConv([torch.Generator().manual_seed(s) for s in range(S)], H, H)
    out = conv(torch.randn(S, N, H).transpose(0, 1), GRAPH)  # a node-major view of seed-major memory
    assert out.shape == (N, S, H) and out.is_contiguous()


def test_kernel_results_do_not_depend_on_the_thread_count():
    y, b = torch.randn(N, S, H), torch.randn(S, H)
    n = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = propagate_bias(GRAPH, y, b)
    finally:
        torch.set_num_threads(n)
    assert torch.equal(one, propagate_bias(GRAPH, y, b))
    assert torch.get_num_threads() == n
