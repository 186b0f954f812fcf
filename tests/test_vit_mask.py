"""Table 3 pieces: pixel masks, the masked ViT operator, its Picard wrapper, CIFAR-10 loading."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from picard_cli.data.cifar10 import interleave, load_cifar10
from picard_cli.data.masks import n_dropped, pixel_masks
from picard_cli.data.synthetic import write_cifar10_batches, write_cifar10_npz
from picard_cli.errors import DataError
from picard_cli.models.vit_mask import MaskedViT, PicardImage, damping, patchify, sincos_2d, unpatchify


# ---------------------------------------------------------------- masks
@pytest.mark.parametrize("ratio", [0.75, 0.5, 0.3, 0.0, 1.0])
def test_mask_drops_exactly_floor_ratio_pixels(ratio):
    m = pixel_masks(np.arange(50), 32, ratio, seed=3)
    assert m.shape == (50, 32, 32) and m.dtype == bool
    assert (m.reshape(50, -1).sum(1) == n_dropped(ratio, 32)).all()
    assert n_dropped(0.75, 32) == 768


def test_masks_are_deterministic_per_image_and_independent_of_batching():
    full = pixel_masks(np.arange(100), 32, 0.75, seed=1)
    assert np.array_equal(full, pixel_masks(np.arange(100), 32, 0.75, seed=1))
    assert np.array_equal(full[[7, 42, 99]], pixel_masks([7, 42, 99], 32, 0.75, seed=1))
    # a different image, stream (training epoch) or seed gives another mask
    assert not np.array_equal(full[0], full[1])
    assert not np.array_equal(full[:10], pixel_masks(np.arange(10), 32, 0.75, seed=1, stream=0))
    assert not np.array_equal(full[:10], pixel_masks(np.arange(10), 32, 0.75, seed=2))
    # dropped positions are spread uniformly: every pixel is dropped ~75% of the time over images
    freq = pixel_masks(np.arange(4000), 32, 0.75, seed=0).mean(0)
    assert abs(freq.mean() - 0.75) < 1e-9 and freq.min() > 0.65 and freq.max() < 0.85


# ---------------------------------------------------------------- model
def test_patchify_inverts_and_matches_patch_embed_token_order():
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(unpatchify(patchify(x, 2), 2, 3), x)
    # token j of timm's PatchEmbed sees the pixels of patchify's token j
    vit = MaskedViT(32, 3, patch=4, dim=48, depth=1, heads=3, dec_dim=48, dec_depth=1, dec_heads=3)
    probe = torch.zeros(1, 3, 32, 32)
    probe[0, :, 8:12, 20:24] = 1.0  # patch (row 2, col 5) -> token 2 * 8 + 5
    emb = vit.embed(probe) - vit.embed(torch.zeros_like(probe))
    changed = emb.abs().sum(-1)[0].nonzero().flatten().tolist()
    assert changed == [21] and patchify(probe, 4)[0].abs().sum(-1).nonzero().flatten().tolist() == [21]


def test_without_attention_layers_a_pixel_only_moves_its_own_patch():
    torch.manual_seed(0)
    vit = MaskedViT(32, 3, patch=2, dim=16, depth=0, heads=2, dec_dim=16, dec_depth=0, dec_heads=2).eval()
    x = torch.rand(1, 3, 32, 32)
    x2 = x.clone()
    x2[0, 1, 13, 6] += 1.0  # patch (6, 3)
    diff = (vit(x2) - vit(x)).abs().sum(1)[0] > 1e-6
    assert diff[12:14, 6:8].any() and diff.sum() == diff[12:14, 6:8].sum()


def test_table3_architecture_and_sincos_positions():
    vit = MaskedViT()  # caption: 12 enc + 4 dec layers, 3 heads, dim 192, patch 2
    assert len(vit.encoder) == 12 and len(vit.decoder) == 4 and vit.encoder[0].attn.num_heads == 3
    assert vit.pos.shape == (1, 256, 192)
    out = MaskedViT(32, 3, 4, 32, 1, 4, 32, 1, 4, pos="sincos")(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 3, 32, 32)
    table = sincos_2d(4, 8)
    assert table.shape == (1, 16, 8) and len({tuple(r) for r in table[0].tolist()}) == 16


# ---------------------------------------------------------------- Picard wrapper
def test_lambda_one_returns_the_input():
    T = MaskedViT(32, 3, 4, 32, 1, 4, 32, 1, 4)
    x0 = torch.rand(3, 3, 32, 32)
    x, stats = PicardImage(T, n_iter=3, a=1.0)(x0, trace=True)
    assert torch.equal(x, x0) and stats.steps == 3
    # first_step=plain: x_1 = T(x_0), then a = 1 keeps it
    x, _ = PicardImage(T, n_iter=3, a=1.0, first_step="plain")(x0)
    assert torch.allclose(x, T(x0))


def test_damped_update_is_the_caption_formula():
    torch.manual_seed(0)
    T = MaskedViT(32, 3, 4, 32, 1, 4, 32, 1, 4)
    x0 = torch.rand(2, 3, 32, 32)
    x1 = 0.5 * T(x0) + 0.5 * x0
    x2 = 0.5 * T(x1) + 0.5 * x1
    out, _ = PicardImage(T, n_iter=2, a=0.5)(x0)
    assert torch.allclose(out, x2, atol=1e-6)
    assert damping(0.5, 3, "plain") == [0.0, 0.5, 0.5] and damping(0.3, 2) == [0.3, 0.3]


def test_gradients_flow_through_every_application():
    torch.manual_seed(0)
    T = MaskedViT(32, 3, 4, 32, 1, 4, 32, 1, 4)
    grads = []

    class Hooked(torch.nn.Module):  # T itself, each output's gradient observed
        def __init__(self):
            super().__init__()
            self.T = T

        def forward(self, x):
            y = self.T(x)
            y.register_hook(lambda g: grads.append(g.abs().sum().item()))
            return y

    model = PicardImage(Hooked(), n_iter=3, a=0.5)
    x, _ = model(torch.rand(2, 3, 32, 32))
    x.pow(2).mean().backward()
    assert len(grads) == 3 and all(g > 0 for g in grads)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for n, p in T.named_parameters() if "pos" in n)


# ---------------------------------------------------------------- data
def test_npz_source_reads_the_offline_format(tmp_path):
    write_cifar10_npz(tmp_path, n_train=60, n_test=40)
    tr = load_cifar10(tmp_path, "train", "auto")
    te = load_cifar10(tmp_path, "test", "npz", limit=20)
    assert tr.images.shape == (60, 32, 32, 3) and tr.images.dtype == np.uint8
    assert tr.meta["source"] == "npz" and tr.meta["lossy"] is True
    assert te.images.shape == (20, 32, 32, 3) and te.meta["limit"] == 20
    # the prefix is class-balanced although the file is grouped by class
    assert len(set(te.labels[:10].tolist())) >= 5


def test_interleave_is_round_robin_over_classes():
    labels = np.array([0, 0, 0, 1, 1, 2])
    assert interleave(labels).tolist() == [0, 3, 5, 1, 4, 2]


def test_torchvision_source_reads_python_batches(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    sums = write_cifar10_batches(tmp_path, n_per_batch=6, n_test=5)
    # torchvision checks every file against its md5 list: give it the generated files' sums
    monkeypatch.setattr(CIFAR10, "train_list", [[f"data_batch_{i}", sums[f"data_batch_{i}"]] for i in range(1, 6)])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", sums["test_batch"]]])
    monkeypatch.setattr(
        CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names", "md5": sums["batches.meta"]}
    )
    tr = load_cifar10(tmp_path, "train")  # auto: the batches folder is there
    te = load_cifar10(tmp_path, "test", "torchvision")
    assert tr.images.shape == (30, 32, 32, 3) and te.images.shape == (5, 32, 32, 3)
    assert tr.meta["source"] == "torchvision" and tr.meta["lossy"] is False
    # the HWC uint8 arrays are the images that were written (CHW rows -> HWC)
    from picard_cli.data.synthetic import smooth_images

    images, labels = smooth_images(5, 5)
    assert np.array_equal(te.images, images[interleave(labels)])  # in the class-balanced order


def test_missing_data_offline_is_one_clear_error(tmp_path, monkeypatch):
    import torchvision.datasets.utils as u

    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(u, "download_url", offline)
    monkeypatch.setattr(u, "urlopen", offline, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DataError) as e:
        load_cifar10(tmp_path / "empty", "test")
    msg = str(e.value)
    assert "\n" not in msg and "cifar-10-batches-py" in msg and "cifar10_test.npz" in msg
    with pytest.raises(DataError, match="missing"):
        load_cifar10(tmp_path / "empty", "test", "npz")


def test_real_offline_cifar10_arrays():
    """CI sets PICARD_DATA to the data root: the real arrays must load (fail, not skip, when absent)."""
    root = os.environ.get("PICARD_DATA")
    if not root:
        pytest.skip("PICARD_DATA not set")
    te = load_cifar10(Path(root), "test", "npz")
    tr = load_cifar10(Path(root), "train", "npz", limit=100)
    assert te.images.shape == (10000, 32, 32, 3) and np.bincount(te.labels).tolist() == [1000] * 10
    assert tr.images.shape == (100, 32, 32, 3) and np.bincount(tr.labels).tolist() == [10] * 10
    mean = te.images.reshape(-1, 3).mean(0)
    assert np.allclose(mean, [125.99, 123.69, 114.85], atol=0.05)  # the commonly quoted CIFAR-10 test-set means


# ---------------------------------------------------------------- CLI end to end
def test_sweep_and_report_on_generated_cifar(tmp_path):
    from conftest import picard

    write_cifar10_npz(tmp_path / "data", n_train=240, n_test=80)
    res = tmp_path / "results"
    small = [
        "epochs=2",
        "train_n=160",
        "val_n=40",
        "test_n=64",
        "fid_n=16",
        "batch_size=32",
        "dim=32",
        "dec_dim=32",
        "eval_iters=1:4",
    ]
    out = picard(
        "sweep",
        "vit-mask",
        "--scale",
        "quick",
        "--data-root",
        tmp_path / "data",
        "--results",
        res,
        "--fid-weights",
        "none",
        *small,
    )
    assert out.returncode == 0, out.stderr
    import json

    records = [json.loads(line) for line in (res / "vit-mask.jsonl").read_text().splitlines()]
    assert sorted(r["config"]["n_iter"] for r in records) == [1, 2, 3]
    for r in records:
        m = r["metrics"]
        assert r["status"] == "ok" and 0 < m["test_mse_last"] < 0.2 and m["test_mse_std_last"] > 0
        assert m["fid_last"] is None and r["extra"]["fid_last"]["note"] == "no Inception weights"
        assert r["extra"]["iter_curve"]["k"] == [1, 2, 3, 4] and r["solver"]["steps"] == r["config"]["n_iter"]
        assert r["extra"]["data"]["test"]["source"] == "npz" and r["extra"]["samples"]["train"] == 160
    # the training reduced the loss (smooth images are easy to inpaint)
    assert all(r["extra"]["train_loss"][-1] < r["extra"]["train_loss"][0] for r in records)
    rep = picard("report", "vit-mask", "--results", res)
    assert rep.returncode == 0, rep.stderr
    text = (res / "vit-mask_table_last.md").read_text()
    assert "ViT (MSE)" in text and "std over test images" in text and "paper 0.0126 ± 0.0006" in text
    assert "n/a (no Inception weights)" in text and "paper 20.0433" in text
    # `picard run vit-mask --n-iter 2` picks the N2 cell and resumes (nothing to do)
    again = picard(
        "run",
        "vit-mask",
        "--n-iter",
        "2",
        "--scale",
        "quick",
        "--data-root",
        tmp_path / "data",
        "--results",
        res,
        "--fid-weights",
        "none",
        *small,
    )
    assert again.returncode == 0, again.stderr
    assert len((res / "vit-mask.jsonl").read_text().splitlines()) == 3


def test_bad_vit_mask_input_is_one_line(tmp_path):
    from conftest import picard

    out = picard("run", "vit-mask", "mask_ratio=1.5", "--data-root", tmp_path)
    assert out.returncode == 2 and "mask_ratio" in out.stderr and "Traceback" not in out.stderr
    out = picard("run", "vit-mask", "--data-root", tmp_path / "nothing", "source=npz", "--results", tmp_path / "r")
    assert out.returncode == 2 and "cifar10_train_subset.npz" in out.stderr and "Traceback" not in out.stderr


def test_damping_renamed_from_lam_keeps_run_keys_and_old_checkpoints(tmp_path):
    from picard_cli import checkpoint
    from picard_cli.errors import PicardError
    from picard_cli.experiments.vit_mask import VitMaskConfig
    from picard_cli.recipes import as_config, identity, to_dict

    c = VitMaskConfig(a=0.3)
    old = {("lam" if k == "a" else k): v for k, v in to_dict(c).items()}  # a config stored before the rename
    assert identity(c)["lam"] == 0.3 and "a" not in identity(c)  # run keys use the old name
    assert as_config(VitMaskConfig, old) == c  # archived records' configs still resolve
    path = tmp_path / "checkpoint.pt"
    checkpoint.check_config({"config": old}, c, path)  # the experiment's check (typed config)
    checkpoint.check_config({"config": old}, to_dict(c), path, VitMaskConfig)  # the runner's (config dict)
    checkpoint.check_config({"config": to_dict(c)}, c, path)
    with pytest.raises(PicardError, match="another config"):
        checkpoint.check_config({"config": dict(old, lam=0.5)}, c, path)
