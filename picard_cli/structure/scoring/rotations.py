"""Optimal rotations of batches of 3x3 correlation matrices H = sum w (x - mx)(y - my)^T, float64:
the SVD (Kabsch) solution with the reflection fix, and Horn's unit-quaternion solution written entry by
entry on (c,) vectors, so thousands of 3x3 problems cost a few hundred vector operations."""

from __future__ import annotations


def svd_rotation(H):
    """Kabsch: R (c, 3, 3) maximising sum w (R x).y from the SVD H = U S V^T, with the reflection fixed
    by the sign d of det(U) det(V) (0 counts as +1). Returns R, the singular values S and d."""
    import torch

    U, S, Vh = torch.linalg.svd(H)
    d = torch.sign(torch.linalg.det(U) * torch.linalg.det(Vh))
    d = torch.where(d == 0, torch.ones_like(d), d)
    D = torch.ones_like(S)
    D[:, 2] = d
    return Vh.transpose(1, 2) @ (D.unsqueeze(-1) * U.transpose(1, 2)), S, d


def quaternion_rotation(H, upper=None):
    """Optimal rotations for a batch of correlation matrices H = sum w (x - mx)(y - my)^T (c, 3, 3),
    float64: R (c, 3, 3) maximising sum w (R x).y, i.e. the Kabsch rotation with the reflection fix.
    Horn's unit-quaternion form: the eigenvector of the largest eigenvalue of the symmetric 4x4 key
    matrix K; that eigenvalue by Newton's method on det(K - lam I) (a quartic, monotone from an upper
    bound: sqrt(3) |H|_F, or ``upper`` = (G_x + G_y) / 2 when smaller, which is tight for good fits),
    the eigenvector as a column of adj(K - lam I). Written entry by entry on (c,) vectors, so thousands
    of 3x3 problems cost a few hundred vector operations; rows whose eigenvalue is degenerate (every
    cofactor vanishes) fall back to SVD."""
    k = _key_matrix(H)
    lam = _largest_eigenvalue(H, k, upper)
    q, qn, scale = _eigenvector(k, lam)
    bad = ~(qn > 1e-8 * scale)
    R = _quaternion_to_rotation(q / qn.clamp_min(1e-300)[:, None])
    if bool(bad.any()):
        R[bad] = svd_rotation(H[bad])[0]
    return R


def _key_matrix(H):
    """Horn's symmetric 4x4 key matrix K of each H, entry-wise: {(i, j): (c,) tensor}."""
    Sxx, Sxy, Sxz = H[:, 0, 0], H[:, 0, 1], H[:, 0, 2]
    Syx, Syy, Syz = H[:, 1, 0], H[:, 1, 1], H[:, 1, 2]
    Szx, Szy, Szz = H[:, 2, 0], H[:, 2, 1], H[:, 2, 2]
    k = {
        (0, 0): Sxx + Syy + Szz,
        (0, 1): Syz - Szy,
        (0, 2): Szx - Sxz,
        (0, 3): Sxy - Syx,
        (1, 1): Sxx - Syy - Szz,
        (1, 2): Sxy + Syx,
        (1, 3): Szx + Sxz,
        (2, 2): Syy - Sxx - Szz,
        (2, 3): Syz + Szy,
        (3, 3): Szz - Sxx - Syy,
    }
    for i, j in list(k):
        k[(j, i)] = k[(i, j)]
    return k


def _largest_eigenvalue(H, k, upper):
    """The largest eigenvalue of K: Newton's method on det(K - lam I) = lam^4 + c2 lam^2 + c1 lam + c0
    (c2 = -2 |H|_F^2, c1 = -8 det H, c0 = det K) from the upper bound sqrt(3) |H|_F (or ``upper``)."""
    import torch

    Sxx, Sxy, Sxz = H[:, 0, 0], H[:, 0, 1], H[:, 0, 2]
    Syx, Syy, Syz = H[:, 1, 0], H[:, 1, 1], H[:, 1, 2]
    Szx, Szy, Szz = H[:, 2, 0], H[:, 2, 1], H[:, 2, 2]
    fro2 = (H * H).sum((1, 2))
    c2 = -2.0 * fro2
    detH = Sxx * (Syy * Szz - Syz * Szy) - Sxy * (Syx * Szz - Syz * Szx) + Sxz * (Syx * Szy - Syy * Szx)
    c1 = -8.0 * detH
    c0 = _det4(k)
    lam = torch.sqrt(3.0 * fro2)
    if upper is not None:
        lam = torch.minimum(lam, upper * (1 + 1e-6) + 1e-9)
    for _ in range(60):
        lam2 = lam * lam
        p = (lam2 + c2) * lam2 + c1 * lam + c0
        dp = 4.0 * lam2 * lam + 2.0 * c2 * lam + c1
        step = torch.where(dp.abs() > 1e-300, p / dp, torch.zeros_like(p))
        lam = lam - step
        if bool((step.abs() <= 1e-11 * (1.0 + lam.abs())).all()):
            break
    return lam


def _eigenvector(k, lam):
    """The (unnormalised) eigenvector q of K for ``lam``, its norm and the scale |lam|^3 it is judged by."""
    import torch

    a = dict(k)
    for i in range(4):
        a[(i, i)] = k[(i, i)] - lam
    # eigenvector: column 0 of adj(A), A = K - lam I (singular, rank 3 for a simple eigenvalue); the
    # other columns only for the rows where it vanishes
    scale = lam.abs().clamp_min(1e-12) ** 3
    q = _adj_column0(a)
    qn = q.norm(dim=1)
    weak = ~(qn > 1e-4 * scale)
    if bool(weak.any()):
        idx = torch.nonzero(weak).squeeze(1)
        A = torch.stack([torch.stack([a[(i, j)][idx] for j in range(4)], -1) for i in range(4)], -2)
        for j in (1, 2, 3):
            qj = _adj_column(A, j)
            nj = qj.norm(dim=1)
            better = nj > qn[idx]
            q[idx[better]], qn[idx[better]] = qj[better], nj[better]
    return q, qn, scale


def _quaternion_to_rotation(q):
    """Rotation matrices (c, 3, 3) of unit quaternions q = (w, x, y, z) (c, 4)."""
    import torch

    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    return torch.stack(
        [
            torch.stack([w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            torch.stack([2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x)], -1),
            torch.stack([2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z], -1),
        ],
        -2,
    )


# ------------------------------------------------------------------------------ 4x4 cofactors
def _minors2(a, r, s_):
    """2x2 minors of rows r and s_ of a 4x4 given entry-wise: {(i, j): a_ri a_sj - a_rj a_si}, i < j."""
    return {(i, j): a[(r, i)] * a[(s_, j)] - a[(r, j)] * a[(s_, i)] for i in range(4) for j in range(i + 1, 4)}


def _det4(a):
    """Determinant of 4x4 matrices given entry-wise (Laplace expansion along rows 0-1 / 2-3)."""
    s, m = _minors2(a, 0, 1), _minors2(a, 2, 3)
    return (
        s[(0, 1)] * m[(2, 3)]
        - s[(0, 2)] * m[(1, 3)]
        + s[(0, 3)] * m[(1, 2)]
        + s[(1, 2)] * m[(0, 3)]
        - s[(1, 3)] * m[(0, 2)]
        + s[(2, 3)] * m[(0, 1)]
    )


def _adj_column0(a):
    """Column 0 of adj(A) (cofactors C_0i) for 4x4 matrices given entry-wise, from the 2x2 minors of rows 2-3."""
    import torch

    m = _minors2(a, 2, 3)
    a10, a11, a12, a13 = a[(1, 0)], a[(1, 1)], a[(1, 2)], a[(1, 3)]
    c0 = a11 * m[(2, 3)] - a12 * m[(1, 3)] + a13 * m[(1, 2)]
    c1 = -(a10 * m[(2, 3)] - a12 * m[(0, 3)] + a13 * m[(0, 2)])
    c2 = a10 * m[(1, 3)] - a11 * m[(0, 3)] + a13 * m[(0, 1)]
    c3 = -(a10 * m[(1, 2)] - a11 * m[(0, 2)] + a12 * m[(0, 1)])
    return torch.stack([c0, c1, c2, c3], 1)


def _adj_column(A, j: int):
    """Column j of the adjugate of a batch of 4x4 matrices (c, 4, 4): cofactors C_{j,i}, i = 0..3
    (valid for singular matrices, unlike det(A) inv(A))."""
    import torch

    rows = [r for r in range(4) if r != j]
    cols = []
    for i in range(4):
        c = [k for k in range(4) if k != i]
        M = A[:, rows][:, :, c]  # minor: remove row j, column i
        det = (
            M[:, 0, 0] * (M[:, 1, 1] * M[:, 2, 2] - M[:, 1, 2] * M[:, 2, 1])
            - M[:, 0, 1] * (M[:, 1, 0] * M[:, 2, 2] - M[:, 1, 2] * M[:, 2, 0])
            + M[:, 0, 2] * (M[:, 1, 0] * M[:, 2, 1] - M[:, 1, 1] * M[:, 2, 0])
        )
        cols.append(det if (i + j) % 2 == 0 else -det)
    return torch.stack(cols, 1)
