"""Counter-based dropout (recipe field dropout_rng=counter): its law, its gradients against torch
ops with the same mask, its determinism, and the runs that use it."""

from dataclasses import asdict

import pytest
import torch
import torch.nn.functional as F

from picard_cli.models import dropout_kernels
from picard_cli.models.stacked_gnn import dropout, dropout_rng

pytestmark = pytest.mark.skipif(dropout_kernels.numba is None, reason="numba is a declared dependency; absent here")
ACTS = {"none": lambda t: t, "relu": F.relu, "elu": F.elu}


def _draw(z, act, p, seed):
    torch.manual_seed(seed)
    out = dropout_kernels.act_dropout(z, act, p)
    torch.manual_seed(seed)  # the key the call drew from torch's generator
    return out, dropout_kernels.mask(z.shape, int(torch.randint(0, 2**62, (1,))), p)


@pytest.mark.parametrize("p", [0.5, 0.6])
def test_mask_law_keep_fraction_and_scale(p):
    m = dropout_kernels.mask((400_000,), 12345, p)
    values = m.unique().tolist()
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(1 / (1 - p))
    keep = (m > 0).float()
    assert abs(keep.mean().item() - (1 - p)) < 4 * (p * (1 - p) / m.numel()) ** 0.5  # 4 sigma
    # neighbouring elements and halves are not correlated (a counter hash, not a short period)
    assert abs(torch.corrcoef(torch.stack([keep[:-1], keep[1:]]))[0, 1].item()) < 0.01
    assert not torch.equal(keep[:200_000], keep[200_000:])
    assert not torch.equal(m, dropout_kernels.mask((400_000,), 12346, p))


@pytest.mark.parametrize("act", ["none", "relu", "elu"])
def test_forward_and_gradients_equal_torch_ops_with_the_same_mask(act):
    z = torch.randn(50, 3, 8, requires_grad=True)
    g = torch.randn(50, 3, 8)
    out, m = _draw(z, act, 0.6, seed=3)
    ref = ACTS[act](z) * m
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)
    (gz,) = torch.autograd.grad(out, z, g, retain_graph=True)
    (gr,) = torch.autograd.grad(ref, z, g, retain_graph=True)
    torch.testing.assert_close(gz, gr, rtol=0, atol=1e-6)
    # double backward (the Jacobian penalty differentiates a vector-Jacobian product)
    g2 = g.clone().requires_grad_()
    second = []
    for y in (out, ref):
        (v,) = torch.autograd.grad(y, z, g2, create_graph=True)
        second.append(torch.autograd.grad(v.square().sum(), (z, g2), allow_unused=True))
    for a, b in zip(*second):
        if a is None or b is None:
            assert (a is None or not a.any()) and (b is None or not b.any())
        else:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_masks_do_not_depend_on_the_thread_count():
    z = torch.randn(300_000)
    n = torch.get_num_threads()
    outs = []
    for threads in (1, max(2, n)):
        torch.set_num_threads(threads)
        outs.append(_draw(z, "relu", 0.5, seed=7)[0])
    torch.set_num_threads(n)
    assert torch.equal(*outs)


def test_dropout_switch_only_inside_the_context_and_only_in_training():
    x = torch.randn(20, 4)
    torch.manual_seed(0)
    plain = dropout(x, 0.5, True, "relu")  # torch stream: the same numbers as before this option
    torch.manual_seed(0)
    assert torch.equal(plain, F.relu(x) * torch.rand_like(x).ge_(0.5).mul_(2.0))
    with dropout_rng("counter"):
        torch.manual_seed(0)
        counter = dropout(x, 0.5, True, "relu")
        assert torch.equal(dropout(x, 0.5, False, "relu"), F.relu(x))  # evaluation: no mask
    assert counter.grad_fn is None or "ActDropout" in counter.grad_fn.name()
    assert not torch.equal(counter, plain)
    torch.testing.assert_close(counter, _draw(x, "relu", 0.5, seed=0)[0])


def test_frozen_noise_replays_counter_masks():
    """fixed_masks: one mask per solve; the counter key is drawn from torch's generator, so the
    replayed generator state gives the same key."""
    from picard_cli.fixedpoint.noise import frozen_noise

    x = torch.randn(30, 2, 5)
    with dropout_rng("counter"):
        T = frozen_noise(lambda h: dropout(h, 0.5, True, "relu"), x)
        assert torch.equal(T(x), T(x))
        assert not torch.equal(dropout(x, 0.5, True, "relu"), dropout(x, 0.5, True, "relu"))


def test_counter_runs_are_deterministic_recorded_and_distinct(synth_root):
    from picard_cli.experiments.pign import Pign, PignConfig
    from picard_cli.recipes import config_hash, identity
    from picard_cli.runner import Context

    ctx = Context("cpu", synth_root)
    for cell in (dict(model="pign", backbone="gcn"), dict(model="plain", backbone="gat", heads=2)):
        torch_cfg = asdict(PignConfig(epochs=4, hidden=8, **cell))
        counter_cfg = dict(torch_cfg, dropout_rng="counter")

        def run(cfg):
            return Pign().run_group([dict(cfg, seed=s) for s in (0, 1)], ctx)

        a, b, t = run(counter_cfg), run(counter_cfg), run(torch_cfg)
        assert [r.metrics for r in a] == [r.metrics for r in b]
        assert a[0].extra["dropout_kernel"] == "counter" and "dropout_kernel" not in t[0].extra
        assert [r.extra["train_loss_every_10"] for r in a] != [r.extra["train_loss_every_10"] for r in t]
    # the default keeps the identity (config hash) of every run recorded before the option existed
    default = PignConfig()
    assert "dropout_rng" not in identity(default)
    assert config_hash(identity(PignConfig(dropout_rng="counter"))) != config_hash(identity(default))
