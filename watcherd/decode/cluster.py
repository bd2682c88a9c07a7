"""``scan --cluster``: decoding on a dask.distributed cluster while the writer stays here.

The only module that imports ``distributed`` (lazily: it is an optional extra). Paths,
never bytes, go to the workers, in batches (a task costs about a millisecond; a batch
of 32 pictures costs seconds), at most ``lookahead`` files ahead of the writer, so
memory stays flat however large the backlog. Workers read, hash and render each file
in watcherd's own sandbox (``remote.decode_batch``); the writer checks each answer
against the file at its turn and does every publish, move and catalog write in order.

Faults: a worker that dies mid-batch has its batch run again elsewhere by the
scheduler. A batch that keeps killing workers (``KilledWorker``) is split in halves
until the file doing it is alone, which then becomes an error record ("killed
cluster workers"), so it is never retried forever. A scheduler that cannot be reached
is a ``ClusterError`` (exit 2); one lost mid-scan is a ``StopError``: the writer stops
after the files already done, which stay done.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from concurrent.futures import CancelledError
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from watcherd.core.config import Config
from watcherd.core.errors import ClusterError, StopError
from watcherd.core.naming import shown
from watcherd.decode import remote
from watcherd.decode.newimage import Fetched, spec_for
from watcherd.decode.remote import Answer

log = logging.getLogger("watcherd")

INSTALL = "install the cluster extra: pip install 'watcherd[cluster]'"
CONNECT_TIMEOUT = 10.0  # seconds to reach the scheduler, and to wait for a first worker
KILLED = "killed cluster workers"


def _distributed() -> ModuleType:
    try:
        import distributed
    except ImportError:
        raise ClusterError(f"--cluster needs dask.distributed; {INSTALL}") from None
    return distributed


def quiet() -> None:
    """Keep distributed's own log lines out of watcherd's stderr (problems are watcherd's lines)."""
    # Worker processes started here inherit the environment, and with it the setting.
    os.environ["DASK_LOGGING__DISTRIBUTED"] = "critical"
    # dask gives several of its loggers a stderr handler of their own when imported.
    tops = ("distributed", "tornado", "bokeh")
    names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] in tops]
    for name in {*tops, *names}:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        # A handler of its own, or logging's last resort would still print warnings.
        logger.addHandler(logging.NullHandler())
        logger.propagate = False


@dataclass
class Connection:
    """A client, and the local cluster it started (``local``), closed together."""

    client: Any
    cluster: Any = None

    def threads(self) -> int:
        """Worker threads the scheduler knows now."""
        threads: dict[str, int] = self.client.nthreads()
        return max(1, sum(threads.values()))

    def close(self) -> None:
        """Let go of the client (and stop a local cluster)."""
        with contextlib.suppress(Exception):
            self.client.close(timeout=5)
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close(timeout=10)


def connect(address: str, workers: int) -> Connection:
    """A client of the scheduler at ``address``, or of a new loopback cluster of ``workers`` processes."""
    distributed = _distributed()
    quiet()
    cluster = None
    try:
        if address == "local":
            cluster = distributed.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,  # no dashboard unless asked for; nothing listens beyond loopback
                silence_logs=logging.CRITICAL,
            )
            client = distributed.Client(cluster, timeout=CONNECT_TIMEOUT)
        else:
            client = distributed.Client(address, timeout=CONNECT_TIMEOUT)
    except Exception as exc:
        if cluster is not None:
            cluster.close()
        raise ClusterError(f"cannot reach the cluster scheduler at {address}: {_said(exc)}") from None
    conn = Connection(client, cluster)
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        client.submit(remote.probe, pure=False).result(timeout=60)
    except Exception as exc:
        conn.close()
        if isinstance(exc, (TimeoutError, distributed.TimeoutError)):
            raise ClusterError(f"the cluster at {address} has no workers") from None
        raise ClusterError(f"the cluster's workers cannot run watcherd ({_said(exc)}); install it on each") from None
    return conn


def _said(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@dataclass
class _Batch:
    """Paths sent to one task, and, once it is done, their answers."""

    paths: list[str] = field(default_factory=list)
    future: Any = None
    answers: list[Answer] | None = None
    wanted: int = 0


class _Handle:
    """One file of a batch, as ``newimage.Pending``."""

    def __init__(self, owner: ClusterDecoder, batch: _Batch, index: int) -> None:
        self.owner, self.batch, self.index = owner, batch, index

    def result(self) -> Fetched:
        stamp, sha, rendered, error = self.owner.answers(self.batch)[self.index]
        return Fetched(stamp, sha, rendered, error)

    def cancel(self) -> None:
        self.batch.wanted -= 1
        if self.batch.wanted <= 0:
            self.owner.drop(self.batch)


class ClusterDecoder:
    """Sends files to the cluster in batches and hands back their answers (``newimage.Remote``)."""

    def __init__(self, conn: Connection, cfg: Config, task: Any = remote.decode_batch) -> None:
        self.conn, self.cfg, self.task = conn, cfg, task
        self.spec = spec_for(cfg)
        self.limits = remote.Limits(cfg.max_file_size, cfg.decode_timeout, cfg.decode_memory)
        self.batch_files = cfg.cluster.batch_files
        in_flight = cfg.cluster.in_flight or 2 * conn.threads()
        self.lookahead = self.batch_files * in_flight
        self._open: _Batch | None = None
        self._warned = False
        self.killed = 0  # files recorded as killing workers
        self.split = 0  # batches split to find such a file

    def _where(self, path: Path) -> str:
        """The path as the workers see it (``cluster.root`` stands for the library root)."""
        if self.cfg.cluster.root is None or self.cfg.root is None:
            return str(path)
        return os.path.join(self.cfg.cluster.root, os.path.relpath(path, self.cfg.root))

    def submit(self, path: Path) -> _Handle:
        """Add ``path`` to the open batch; a full batch is sent at once."""
        batch = self._open
        if batch is None:
            batch = self._open = _Batch()
        batch.paths.append(self._where(path))
        batch.wanted += 1
        if len(batch.paths) >= self.batch_files:
            self._send(batch)
        return _Handle(self, batch, len(batch.paths) - 1)

    def _send(self, batch: _Batch) -> None:
        if self._open is batch:
            self._open = None
        batch.future = self._submit(batch.paths)

    def _submit(self, paths: list[str]) -> Any:
        try:
            return self.conn.client.submit(self.task, paths, self.spec, self.limits, time.time(), pure=False)
        except Exception as exc:
            raise StopError(self._lost(exc)) from None

    def drop(self, batch: _Batch) -> None:
        """No file of ``batch`` is wanted any more."""
        if self._open is batch:
            self._open = None
        if batch.future is not None:
            with contextlib.suppress(Exception):
                batch.future.cancel()

    def answers(self, batch: _Batch) -> list[Answer]:
        """The batch's answers, sending it first if it is still filling up."""
        if batch.answers is None:
            if batch.future is None:
                self._send(batch)
            batch.answers = self._resolve(batch.paths, batch.future)
            batch.future = None
            self._check(batch.answers)
        return batch.answers

    def _resolve(self, paths: list[str], future: Any) -> list[Answer]:
        """A task's answers; a task that kept killing workers is split until the culprit is alone.

        That file is not sent again: the writer decodes it in its own sandbox, which records
        it as an error if it is hostile. (A file can also be there by bad luck: a batch
        waiting on a worker that another batch killed counts against that batch too.)
        """
        distributed = _distributed()
        try:
            answers: list[Answer] = future.result()
            return answers
        except distributed.KilledWorker:
            if len(paths) == 1:
                self.killed += 1
                log.warning("%s: %s; decoding it here, in the sandbox", shown(paths[0]), KILLED)
                return [(None, "", None, (KILLED, True))]
            self.split += 1
            half = len(paths) // 2
            first, second = self._submit(paths[:half]), self._submit(paths[half:])
            return self._resolve(paths[:half], first) + self._resolve(paths[half:], second)
        except (CancelledError, OSError, distributed.TimeoutError) as exc:
            raise StopError(self._lost(exc)) from None
        except Exception as exc:
            # The task itself failed (not a file: every file is answered): decode here instead.
            log.warning("a cluster task failed (%s); decoding its %d files here", _said(exc), len(paths))
            return [(None, "", None, (f"cluster task failed: {_said(exc)}", True)) for _ in paths]

    def _check(self, answers: list[Answer]) -> None:
        """Say once when the workers cannot read files this writer can (a wrong ``cluster.root``)."""
        for stamp, _, _, error in answers:
            if stamp is None and error is not None and error[1] and error[0] != KILLED and not self._warned:
                self._warned = True
                log.warning("cluster workers cannot read files (%s); decoding them here (check cluster.root)", error[0])

    def _lost(self, exc: BaseException) -> str:
        where = getattr(getattr(self.conn.client, "scheduler", None), "address", None) or "its scheduler"
        why = "" if isinstance(exc, CancelledError) else f" ({_said(exc)})"
        return f"lost the cluster at {where}{why}; everything done so far is kept: scan again to continue"
