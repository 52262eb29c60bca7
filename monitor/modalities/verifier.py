r"""The user's own verifier of reasoning and code answers, run in a subprocess with a timeout and resource limits.

``--verifier module:function`` names a function the user wrote, importable from the directory the monitor runs
in or from its ``sys.path``::

    def verify(answer: str, gold: str, question_id) -> bool: ...

It gets each record's final answer, the reference's gold answer of its question (for code, whatever the user put
there: a canonical solution, tests, an expected output) and the question id, and returns ``True`` when the answer
passes. Its verdicts become the round's ``pass_rate`` and the correct flags behind ``pass_at_1``/``pass_at_k``,
exactly as the ``passed`` field of the user's own harness would.

**Why this is off by default.** A verifier of generated code usually executes it, and generated code is
untrusted: it can loop forever, exhaust memory, fill the disk, or read and write the user's files. The monitor
never runs anything unless the user names a verifier; when they do, it runs it

* in a separate Python process (``python -I``: no user site-packages, no ``PYTHON*`` environment) with a minimal
  environment, each record in a fresh empty working directory (removed after it), so a crash cannot take the
  audit down and one record's files cannot reach the next;
* with resource limits set in that process before the verifier is imported (``RLIMIT_AS`` address space,
  ``RLIMIT_FSIZE`` largest file it may write, ``RLIMIT_CORE`` 0, ``RLIMIT_NOFILE``);
* with a wall-clock timeout per record: a record that runs over it fails, the worker is killed (its whole
  process group) and a new one takes the next record; a worker that dies (memory limit, ``os._exit``) fails its
  record the same way;
* reading verdicts from a private pipe, so whatever the verified code prints cannot forge one.

These limits contain accidents, not an adversary: the process still runs as the user, can reach the network and
read what the user can read. Run untrusted code under a real sandbox (a container, a VM, a separate account).

A verifier that raises, or returns anything but a ``bool``, fails that record too; the counts of timeouts, crashes
and errors come back with the verdicts. A verifier that cannot be imported, or that fails every record with an
error, is refused in one line naming it.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from monitor.errors import InputError

SPEC_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*")
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MEMORY_MB = 1024
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_OPEN_FILES = 64
_IMPORT_TIMEOUT_S = 60.0
_ERROR_CHARS = 200

# The worker: limits first, then the import, then one JSON verdict per JSON request on the private pipe.
_WORKER = r"""
import importlib, json, os, resource, shutil, sys, tempfile
spec, memory, fsize, nofile, out_fd = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
for limit, value in ((resource.RLIMIT_AS, memory), (resource.RLIMIT_FSIZE, fsize), (resource.RLIMIT_CORE, 0),
                     (resource.RLIMIT_NOFILE, nofile)):
    soft, hard = resource.getrlimit(limit)
    value = value if hard == resource.RLIM_INFINITY else min(value, hard)
    resource.setrlimit(limit, (value, hard))
out = os.fdopen(out_fd, "w", buffering=1)
null = os.open(os.devnull, os.O_RDWR)
os.dup2(null, 1)  # what the verified code prints goes nowhere
module_name, function_name = spec.split(":")
sys.path[:0] = json.loads(os.environ.pop("COLLAPSE_MONITOR_VERIFIER_PATH", "[]"))
try:
    function = getattr(importlib.import_module(module_name), function_name)
except BaseException as exc:
    out.write(json.dumps({"import_error": f"{type(exc).__name__}: {exc}"}) + "\n")
    sys.exit(0)
out.write(json.dumps({"ready": True}) + "\n")
base = os.getcwd()
for line in sys.stdin:
    item = json.loads(line)
    record_dir = tempfile.mkdtemp(dir=base)  # each record starts in its own empty directory
    os.chdir(record_dir)
    try:
        verdict = function(item["answer"], item["gold"], item["question_id"])
        reply = ({"passed": verdict} if isinstance(verdict, bool)
                 else {"error": f"returned {type(verdict).__name__}, expected bool"})
    except BaseException as exc:
        reply = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        os.chdir(base)
        shutil.rmtree(record_dir, ignore_errors=True)
    out.write(json.dumps(reply) + "\n")
"""


@dataclass
class VerifierRun:
    """The verdicts of one round: ``passed`` per record, and how many records failed by timeout, crash or error."""

    passed: list[bool]
    timeouts: int = 0
    crashes: int = 0
    errors: int = 0
    first_error: str | None = None

    def summary(self, spec: str) -> str | None:
        """One line on the records the verifier could not judge (None when it judged them all)."""
        if not (self.timeouts or self.crashes or self.errors):
            return None
        parts = [f"{n} {what}" for n, what in ((self.timeouts, "timed out"), (self.crashes, "crashed the worker"),
                                               (self.errors, "raised or returned a non-bool")) if n]
        first = f" (first error: {self.first_error})" if self.first_error else ""
        return (f"verifier {spec}: of {len(self.passed)} records, " + ", ".join(parts)
                + f"; each counts as failed{first}")


def check_spec(spec: str) -> str:
    """``module:function`` (dotted module, Python identifiers), else a one-line error.

    >>> check_spec("my_checks.code:verify")
    'my_checks.code:verify'
    >>> check_spec("verify.py")
    Traceback (most recent call last):
    ...
    monitor.errors.InputError: verifier 'verify.py': expected module:function, e.g. my_checks:verify
    """
    if not isinstance(spec, str) or SPEC_RE.fullmatch(spec) is None:
        raise InputError(f"verifier {spec!r}: expected module:function, e.g. my_checks:verify")
    return spec


def _search_path() -> list[str]:
    """Where the worker looks for the verifier's module: the directory the monitor runs in, then its sys.path."""
    return [os.getcwd(), *(p for p in sys.path if p and os.path.isdir(p))]


class _Worker:
    def __init__(self, spec: str, memory_mb: int, workdir: str, search_path: list[str]) -> None:
        read_fd, write_fd = os.pipe()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": workdir, "TMPDIR": workdir,
               "LANG": "C.UTF-8", "COLLAPSE_MONITOR_VERIFIER_PATH": json.dumps(search_path)}
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-c", _WORKER, spec, str(memory_mb * 1024 * 1024), str(MAX_FILE_BYTES),
                 str(MAX_OPEN_FILES), str(write_fd)],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir, env=env,
                pass_fds=(write_fd,), start_new_session=True, text=True)
        finally:
            os.close(write_fd)
        self.replies = os.fdopen(read_fd, "r")
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.replies, selectors.EVENT_READ)
        self._buffer = ""

    def read(self, timeout_s: float) -> dict | None:
        """The next reply; None on timeout, ``{"_died": True}`` when the worker died first."""
        deadline = time.monotonic() + timeout_s
        while "\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not self.selector.select(left):
                return None
            chunk = os.read(self.replies.fileno(), 65536).decode("utf-8", "replace")
            if not chunk:
                return {"_died": True}
            self._buffer += chunk
        line, self._buffer = self._buffer.split("\n", 1)
        return json.loads(line)

    def send(self, item: dict) -> bool:
        try:
            self.process.stdin.write(json.dumps(item) + "\n")
            self.process.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()
        self.selector.close()
        self.replies.close()
        try:
            self.process.stdin.close()
        except OSError:
            pass


def _started(spec: str, memory_mb: int, workdir: str, where: str) -> _Worker:
    """A worker that has imported the verifier; stopped, and a one-line error raised, when it cannot."""
    worker = _Worker(spec, memory_mb, workdir, _search_path())
    hello = worker.read(_IMPORT_TIMEOUT_S)
    if hello is None or "ready" not in hello:
        worker.kill()
        why = ("no answer within a minute" if hello is None
               else hello.get("import_error", "the worker died while importing it"))
        raise InputError(f"{where}: verifier {spec}: cannot import it: {why[:_ERROR_CHARS]}")
    return worker


def probe(spec: str, where: str = "verifier") -> None:
    """Start a worker and import the verifier in it, then stop it: a one-line error now instead of mid-audit."""
    spec = check_spec(spec)
    with tempfile.TemporaryDirectory(prefix="collapse-monitor-verifier-") as workdir:
        _started(spec, DEFAULT_MEMORY_MB, workdir, where).kill()


def run_verifier(spec: str, question_ids: list, answers: list[str], gold: dict, *,
                 timeout_s: float = DEFAULT_TIMEOUT_S, memory_mb: int = DEFAULT_MEMORY_MB,
                 where: str = "round") -> VerifierRun:
    """Verdicts of the user's verifier on each record (module docstring: how it is contained).

    Args:
        spec: ``module:function``.
        question_ids, answers: the records, in order.
        gold: question id -> the reference's gold answer.
        timeout_s: wall-clock seconds per record.
        memory_mb: the worker's address-space limit.
        where: names the round in errors.

    Raises:
        InputError: the verifier cannot be imported (or takes over a minute to), or every record failed with an
            error (a broken verifier, not a bad round).
    """
    spec = check_spec(spec)
    run = VerifierRun(passed=[])
    with tempfile.TemporaryDirectory(prefix="collapse-monitor-verifier-") as workdir:
        worker = None
        try:
            for qid, answer in zip(question_ids, answers):
                if worker is None:
                    worker = _started(spec, memory_mb, workdir, where)
                sent = worker.send({"answer": answer, "gold": gold.get(qid), "question_id": qid})
                reply = worker.read(timeout_s) if sent else {"_died": True}
                if reply is None or "_died" in reply:
                    run.timeouts += reply is None
                    run.crashes += reply is not None
                    run.passed.append(False)
                    worker.kill()
                    worker = None
                elif "error" in reply:
                    run.errors += 1
                    run.first_error = run.first_error or str(reply["error"])[:_ERROR_CHARS]
                    run.passed.append(False)
                else:
                    run.passed.append(bool(reply["passed"]))
        finally:
            if worker is not None:
                worker.kill()
    if run.passed and run.errors == len(run.passed):
        raise InputError(f"{where}: verifier {spec} failed every record with an error (first: {run.first_error})")
    return run
