"""Run leases: two drivers of one results file never train the same run.

Before a driver trains a group it claims the group's run keys: one file per key in
``<results root>/<experiment>-leases/`` holding the driver's host, pid and start time. Claims are
made under an exclusive ``flock`` on the folder's ``.lock`` file, so checking a lease and taking it
is one step for every driver on the same file system (each driver, even two in one process, has
its own token). A driver refreshes the modification time of
the leases it holds every ``HEARTBEAT_S`` seconds (a daemon thread) and removes them when the group
is recorded, on exit, and on Ctrl-C.

A lease is stale, and taken over, when its driver is gone: on the same host its pid no longer runs,
anywhere its heartbeat is older than ``PICARD_LEASE_S`` seconds (default 600). A ``kill -9``ed
driver therefore blocks nobody for long: at once on its own host, after the lease time elsewhere.
Leases change no record and no run key: they only decide who trains.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

HEARTBEAT_S = 60.0
DEFAULT_LEASE_S = 600.0


def lease_s() -> float:
    try:
        return max(1.0, float(os.environ.get("PICARD_LEASE_S", DEFAULT_LEASE_S)))
    except ValueError:
        return DEFAULT_LEASE_S


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


class Leases:
    """The leases of one results file, as held by this process."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.held: set[str] = set()
        self.me = {"host": socket.gethostname(), "pid": os.getpid(), "token": uuid.uuid4().hex}
        self._beat: threading.Thread | None = None
        self._stop = threading.Event()
        atexit.register(self.release_all)

    @contextmanager
    def _locked(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def holder(self, key: str) -> dict | None:
        """Who holds ``key`` (host, pid, since), None when nobody or the lease is stale."""
        path = self.folder / key
        try:
            info = json.loads(path.read_text() or "{}")
            age = time.time() - path.stat().st_mtime
        except (OSError, ValueError):
            return None
        if not isinstance(info, dict) or age > lease_s():
            return None
        if info.get("host") == self.me["host"] and not _alive(int(info.get("pid", -1))):
            return None
        return info

    def claim(self, keys: list[str]) -> dict | None:
        """Take every key of ``keys`` (all or none); None on success, else the holder of one of them."""
        with self._locked():
            for key in keys:
                if key in self.held:
                    continue
                info = self.holder(key)
                if info is not None and info.get("token") != self.me["token"]:
                    return info
            stamp = json.dumps({**self.me, "since": time.strftime("%Y-%m-%dT%H:%M:%S")})
            for key in keys:
                (self.folder / key).write_text(stamp)
                self.held.add(key)
        self._start_heartbeat()
        return None

    def release(self, keys) -> None:
        for key in list(keys):
            if key in self.held:
                (self.folder / key).unlink(missing_ok=True)
                self.held.discard(key)

    def release_all(self) -> None:
        self._stop.set()
        self.release(set(self.held))

    def _start_heartbeat(self) -> None:
        if self._beat is None or not self._beat.is_alive():
            self._stop.clear()
            self._beat = threading.Thread(target=self._heartbeat, name="picard-leases", daemon=True)
            self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(min(HEARTBEAT_S, lease_s() / 3)):
            for key in list(self.held):
                try:
                    os.utime(self.folder / key)
                except OSError:
                    pass
