"""Classification metrics, written to match the definitions the authors used."""

from __future__ import annotations

import torch


def macro_f1(y_true: torch.Tensor, y_pred: torch.Tensor) -> float:
    """Macro-averaged F1 as ``sklearn.metrics.f1_score(average="macro")`` computes it
    (spec pign.md §5): the mean over every label present in ``y_true`` or ``y_pred``
    of F1_c = 2 TP / (2 TP + FP + FN); a label never predicted (or never true) scores 0."""
    y_true, y_pred = y_true.long().flatten(), y_pred.long().flatten()
    n = int(torch.maximum(y_true.max(), y_pred.max())) + 1 if y_true.numel() else 0
    tp = torch.bincount(y_true[y_true == y_pred], minlength=n).double()
    true = torch.bincount(y_true, minlength=n).double()
    pred = torch.bincount(y_pred, minlength=n).double()
    present = (true + pred) > 0
    if not bool(present.any()):
        return 0.0
    f1 = 2 * tp[present] / (true[present] + pred[present])  # 2TP + FP + FN = |true| + |pred|
    return float(f1.mean())


def class_weights(y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """The authors' per-batch weights (spec §5): w_c = (V - n_c) / V if class c occurs in
    the batch (V nodes, n_c of class c), else 0."""
    V = y.numel()
    n_c = torch.bincount(y, minlength=n_classes).to(torch.float32)
    return torch.where(n_c > 0, (V - n_c) / V, torch.zeros_like(n_c))
