"""Navier-Stokes vorticity datasets on disk (spec navier-stokes.md §2.1, §4).

Two sources feed the same experiments through :func:`load_ns`:

* picard's own files, written by ``picard data navier-stokes``
  (picard_cli/pde/navier_stokes.py): HDF5 with ``w`` (N, T, S, S) float32
  vorticity, ``t`` (T,) times, and attributes ``picard_format``, ``params``
  (JSON: every generation parameter, seed, code version) and ``n_done`` (how many
  leading samples are complete; generation appends and resumes from there).
* the published FNO file ``NavierStokes_V1e-3_N5000_T50.mat`` (MATLAB v7.3 =
  HDF5): ``a`` (N, 64, 64) = w at t = 0 and ``u`` (N, 64, 64, 50) at t = 1..50,
  stored by MATLAB column-major, i.e. with every axis order reversed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError

FORMAT = 1
ANIE_TIMES = (0, 5, 11, 16, 22, 27, 33, 38, 44, 50)  # np.linspace(0, 50, 10, dtype=int64), spec §2.1


@dataclass
class NSData:
    w: np.ndarray  # (N, T, S, S) float32 vorticity, axis 2 = x1, axis 3 = x2
    t: np.ndarray  # (T,) float64 record times
    meta: dict = field(default_factory=dict)

    def at_times(self, times) -> np.ndarray:
        """The frames at ``times`` (each must be recorded, within 1e-6): (N, len(times), S, S)."""
        idx = []
        for want in times:
            hit = np.flatnonzero(np.abs(self.t - want) < 1e-6)
            if not hit.size:
                raise DataError(
                    f"time {want:g} is not in the dataset (recorded: {_fmt_times(self.t)}); "
                    f"regenerate with --times covering it"
                )
            idx.append(int(hit[0]))
        return self.w[:, idx]


def default_file(nu: float, resolution: int) -> str:
    """Data-root-relative name of a generated file: navier-stokes/ns_V1e-3_S64.h5 for nu 1e-3, 64x64."""
    mant, exp = f"{nu:e}".split("e")
    return f"navier-stokes/ns_V{mant.rstrip('0').rstrip('.')}e{int(exp)}_S{resolution}.h5"


def _fmt_times(t) -> str:
    t = list(t)
    return ", ".join(f"{v:g}" for v in t) if len(t) <= 12 else f"{t[0]:g}, {t[1]:g}, ..., {t[-1]:g} ({len(t)} times)"


def create_h5(path: Path, n: int, times, size: int, params: dict):
    """Create a picard NS file for ``n`` samples (nothing complete yet); returns the open h5py File."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    f = h5py.File(path, "w")
    f.create_dataset("w", shape=(n, len(times), size, size), dtype="float32", chunks=(1, len(times), size, size))
    f.create_dataset("t", data=np.asarray(times, dtype=np.float64))
    f.attrs["picard_format"] = FORMAT
    f.attrs["params"] = json.dumps(params, sort_keys=True)
    f.attrs["n_done"] = 0
    f.flush()
    return f


def write_h5(path: Path, w: np.ndarray, times, params: dict) -> Path:
    """Write complete data at once (tests and conversions)."""
    f = create_h5(Path(path), w.shape[0], times, w.shape[-1], params)
    with f:
        f["w"][...] = w.astype(np.float32)
        f.attrs["n_done"] = w.shape[0]
    return Path(path)


def load_ns(path: str | Path, limit: int | None = None) -> NSData:
    """Read a picard NS file or the published FNO ``.mat`` (v7.3); ``limit``: first n samples."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise DataError(
            f"no Navier-Stokes data at {path}: generate it with `picard data navier-stokes "
            f"--out {path}` or point at the published NavierStokes_V1e-3_N5000_T50.mat"
        )
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DataError(
            f"{path} is not an HDF5 file (MATLAB v7.3 .mat files are; older .mat files must be "
            f"re-saved with -v7.3): {e}"
        ) from None
    with f:
        if "picard_format" in f.attrs:
            n = int(f.attrs["n_done"])
            if n == 0:
                raise DataError(
                    f"{path} holds no complete sample yet (generation was interrupted at the start); "
                    f"re-run the same `picard data navier-stokes` command to resume"
                )
            n = n if limit is None else min(n, limit)
            meta = json.loads(f.attrs["params"]) | {
                "source": "picard",
                "n_total": int(f["w"].shape[0]),
                "n_done": int(f.attrs["n_done"]),
            }
            return NSData(f["w"][:n], f["t"][()], meta)
        if "a" in f and "u" in f:  # FNO's MATLAB file: h5py sees the axes reversed
            n = f["a"].shape[-1] if limit is None else min(f["a"].shape[-1], limit)
            a = np.asarray(f["a"][..., :n]).transpose(2, 1, 0)  # (N, S, S)
            u = np.asarray(f["u"][..., :n]).transpose(3, 2, 1, 0)  # (N, S, S, T)
            w = np.concatenate([a[:, None], u.transpose(0, 3, 1, 2)], axis=1).astype(np.float32)
            t = np.asarray(f["t"][()]).ravel() if "t" in f else np.arange(1, u.shape[-1] + 1, dtype=np.float64)
            return NSData(w, np.concatenate([[0.0], t.astype(np.float64)]), {"source": "fno-mat", "file": path.name})
    raise DataError(f"{path}: neither a picard Navier-Stokes file nor an FNO .mat (no 'w' or 'a'/'u' arrays)")


# The paper's data (FNO's NavierStokes_V1e-3_N5000_T50): 5,000 trajectories, 64x64, nu 1e-3, initial fields
# drawn on 256x256 (alpha 2.5, tau 7), forcing 0.1(sin 2pi(x+y) + cos 2pi(x+y)); dt 1e-3 reproduces dt 1e-4.
PAPER = {
    "samples": 5000,
    "resolution": 64,
    "nu": 1e-3,
    "ic_resolution": 256,
    "variance": "original",
    "alpha": 2.5,
    "tau": 7.0,
}


def facts(path: Path, split: dict[str, int]):
    """:class:`~picard_cli.datacheck.DataFacts` of a Navier-Stokes file (reads its header only);
    ``split``: samples per split as the run takes them."""
    import h5py

    from ..datacheck import DataFacts

    path = Path(path)
    if not path.exists():
        load_ns(path)  # the one-line DataError naming `picard data navier-stokes`
    try:
        with h5py.File(path, "r") as f:
            if "picard_format" in f.attrs:
                params, n, size = json.loads(f.attrs["params"]), int(f.attrs["n_done"]), int(f["w"].shape[-1])
                source, generated = "picard", True
            elif "a" in f and "u" in f:
                n, size, generated, source = int(f["a"].shape[-1]), int(f["a"].shape[0]), False, "fno-mat"
                params = dict(PAPER, samples=n, resolution=size)
            else:
                raise DataError(f"{path}: neither a picard Navier-Stokes file nor an FNO .mat")
    except OSError as e:
        raise DataError(f"{path} is not an HDF5 file: {e}") from None
    differs = [] if n >= PAPER["samples"] else [f"{n:,} trajectories (paper: {PAPER['samples']:,})"]
    differs += [
        f"{k} {params.get(k)!r} (paper: {v!r})"
        for k, v in PAPER.items()
        if k not in ("samples", "resolution") and params.get(k) != v
    ]
    if size != PAPER["resolution"]:
        differs.append(f"resolution {size}x{size} (paper: 64x64)")
    if float(params.get("dt", 1e-3)) > 1e-3:
        differs.append(f"dt {params['dt']!r} (paper: 1e-4; 1e-3 reproduces it)")
    origin = "picard-generated" if generated else "published FNO file"
    label = f"Navier-Stokes: {origin}, {n:,} trajectories at {size}x{size}"
    return DataFacts(
        "Navier-Stokes",
        source,
        dict(split),
        generated=generated,
        label=label,
        differs=[f"Navier-Stokes file {path.name}: {d}" for d in differs],
        file=str(path),
        remedy="generate the paper's data with `picard data navier-stokes` (its defaults) or use "
        "the published NavierStokes_V1e-3_N5000_T50.mat",
    )


# ----------------------------------------------------------------------------- generation
TIME_PRESETS = {"anie": list(ANIE_TIMES), "all": list(range(51))}


def parse_times(spec: str) -> list[float]:
    """'anie' (t = 0 and the ANIE stamps 5, 11, ..., 50), 'all' (0..50) or a comma list."""
    if spec in TIME_PRESETS:
        return [float(t) for t in TIME_PRESETS[spec]]
    try:
        times = sorted({float(v) for v in spec.split(",")})
    except ValueError:
        raise DataError(f"--times {spec!r}: use 'anie', 'all' or a comma list of times") from None
    if not all(math.isfinite(t) for t in times):
        raise DataError(f"--times {spec!r}: times must be finite numbers")
    if times[0] < 0:
        raise DataError(f"--times {spec!r}: times must be >= 0")
    return times


MAX_RESOLUTION = 4096  # a 4096^2 grid per trajectory is already ~64 MiB of float32
MAX_SOLVER_STEPS = 10**8  # steps to the last record time (max(times) / dt)


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise DataError(message)


def check_params(p: dict, batch: int) -> None:
    """Every generation parameter (as :func:`generate` takes them), before anything is solved or
    written: a one-line DataError for the first that is out of range."""
    res, solve, ic, top = p["resolution"], p["solve_resolution"], p["ic_resolution"], MAX_RESOLUTION
    _need(1 <= p["samples"] <= 10**7, f"--samples must lie in 1..10000000, got {p['samples']}")
    _need(8 <= res <= top and res % 2 == 0, f"--resolution must be even and in 8..{top}, got {res}")
    _need(
        res <= solve <= top and solve % res == 0,
        f"--solve-resolution must be a positive multiple of --resolution {res} (at most {top}), got {solve}",
    )
    _need(
        solve <= ic <= top and ic % solve == 0,
        f"--ic-resolution must be a positive multiple of the solve resolution {solve} (at most {top}), got {ic}",
    )
    for flag in ("dt", "nu"):
        _need(math.isfinite(p[flag]) and p[flag] > 0, f"--{flag} must be a finite number > 0, got {p[flag]}")
    _need(1 <= batch <= 10**6, f"--batch must lie in 1..1000000, got {batch}")
    _need(p["variance"] in ("original", "ported"), f"--variance must be original or ported, got {p['variance']!r}")
    _need(p["precision"] in ("float32", "float64"), f"--precision must be float32 or float64, got {p['precision']!r}")
    _need(0 <= p["seed"] <= 2**32 - 1, f"--seed must lie in 0..4294967295, got {p['seed']}")
    _check_time_grid(p["times"], p["dt"])


def _check_time_grid(times: list[float], dt: float) -> None:
    """Every record time a multiple of dt (as the solver needs), and a bounded number of steps."""
    _need(
        max(times) / dt <= MAX_SOLVER_STEPS,
        f"--dt {dt:g}: {max(times) / dt:.3g} solver steps to t = "
        f"{max(times):g} (at most {MAX_SOLVER_STEPS:.0e}); use a larger --dt",
    )
    for t in times:
        n = round(t / dt)
        _need(abs(n * dt - t) <= 1e-9 * max(1.0, t), f"--times: record time {t:g} is not a multiple of --dt {dt:g}")


def check_out(path: Path) -> None:
    """The output file can be created: not a directory, under a folder (or a path that can become one)."""
    _need(not path.is_dir(), f"--out {path}: is a directory; give a file name, e.g. {path / 'ns.h5'}")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    _need(parent.is_dir(), f"--out {path}: {parent} is not a directory")


def generate(
    out: Path, params: dict, device: str, batch: int, overwrite: bool = False, progress=None
) -> tuple[int, int]:
    """Generate ``params['samples']`` trajectories into ``out`` (spec §4), batch by batch,
    resuming after the last complete sample of an earlier run with the same parameters.
    Returns (samples generated now, samples already there). ``progress(done, total)`` (done
    fractional within a batch) is called every 100 solver steps and as batches complete."""
    import h5py
    import torch

    from ..pde.navier_stokes import sample_ics, simulate

    out = Path(out)
    n, res, solve = params["samples"], params["resolution"], params["solve_resolution"]
    if solve % res or params["ic_resolution"] % solve:
        raise DataError(
            f"resolutions must nest: resolution {res} | solve_resolution {solve} | "
            f"ic_resolution {params['ic_resolution']}"
        )
    if out.exists() and not overwrite:
        try:
            f = h5py.File(out, "r+")
        except OSError as e:
            raise DataError(f"{out} exists and is not a picard Navier-Stokes file ({e}); use --overwrite") from None
        old = json.loads(f.attrs.get("params", "{}"))
        differs = sorted(k for k in set(old) | set(params) if old.get(k) != params.get(k))
        if differs:
            f.close()
            raise DataError(
                f"{out} exists with other parameters (differ: {', '.join(differs)}); use --overwrite or another --out"
            )
    else:
        from .. import env

        f = create_h5(out, n, params["times"], res, params)
        f.attrs["provenance"] = json.dumps(
            {"git_sha": env.git_sha(), "versions": env.versions(), "device": env.device_name(device)}
        )
    dtype = torch.float64 if params["precision"] == "float64" else torch.float32
    stride = solve // res
    with f:
        start = int(f.attrs["n_done"])
        if progress:
            progress(start, n)
        steps_total = round(max(params["times"]) / params["dt"])
        for lo in range(start, n, batch):
            idx = range(lo, min(n, lo + batch))
            w0 = torch.tensor(
                sample_ics(idx, params["seed"], solve, params["ic_resolution"], params["variance"]),
                dtype=dtype,
                device=device,
            )
            cb = (lambda k, lo=lo, m=len(idx): progress(lo + m * k / steps_total, n)) if progress else None
            w = simulate(w0, params["times"], params["dt"], params["nu"], on_step=cb)
            f["w"][lo : lo + len(idx)] = w[..., ::stride, ::stride].float().cpu().numpy()
            f.attrs["n_done"] = lo + len(idx)  # the samples before this mark are complete
            f.flush()
            if progress:
                progress(lo + len(idx), n)
    return n - start, start
