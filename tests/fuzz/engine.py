"""The fuzzing loop: a real server, one connection per case, findings kept as reproducers.

A case: connect, send the seed's prefix (unmutated, each answer checked), send the seed's
frames with one of them mutated, half-close, and read everything until the server closes.
Half-closing makes every case end the same way: the server answers what it received, sees the
end of the stream and drops the connection (cleaning up its sessions and opens), so no case
waits on a timeout unless the server hangs.

A finding is one of:
  died              the server process exited
  traceback         a traceback, "internal error" or an ERROR line in the server's log
  internal-error    STATUS_INTERNAL_ERROR on the wire (not for LOCK: the server answers it on
                    purpose to a blocking LOCK inside a compound, MS-SMB2 <159>)
  framing           a response stream that is not valid SMB2 framing (client.parse_frame)
  hang              the server did not close the connection within the case timeout
  prefix            the unmutated requests before the fuzzed one failed on a freshly reset share
  fd-leak           after a case, with its connection gone, the server still holds a file of
                    a share open (an Open that outlived its connection)
  unhealthy         the health check between batches failed or took over a second

A finding is confirmed by replaying its case alone (else the case before it: a traceback
logged while a dropped connection is cleaned up can land after the next case started), then
shrunk: the mutation operations it does not need are dropped, and a case that only appended
another seed becomes that seed. Findings are deduplicated by signature (kind + where it
happened, no line numbers) and saved as DIR/<sha1>.bin (the bytes sent after the prefix) +
DIR/<sha1>.json (the recipe that rebuilds them: seed, prefix level, dialect, mutation
operations; and what was seen). A signature the corpus holds with an "xfail" mark is a known
open problem: counted apart (Stats.known), not as a finding.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import socket
import struct
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import mutators
from . import smb2_builders as b
from .client import (
    STATUS_INTERNAL_ERROR, Client, Ctx, FramingError, PrefixFailed, Response, decode_frame,
    is_error, read_until_eof, split_frames,
)
from .seeds import BY_NAME, EPILOGUE_GAP, LEVEL_PREFIX, SEEDS, Seed, epilogue

TESTS_DIR = Path(__file__).resolve().parent.parent
if str(TESTS_DIR) not in sys.path:  # scripts/fuzz imports this module from outside pytest
    sys.path.insert(0, str(TESTS_DIR))
from e2e.harness import USERS, start_server  # noqa: E402

from ksmbd_embedded.pwddb import nt_hash  # noqa: E402

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
USER = "alice"
FUZZ_SHARE = "fuzz"
HEALTH_SHARE = "health"
IO_SIZE = "64K"  # the smallest smb2 max read/write/trans: frames over 128 KiB are refused
FRAME_LIMIT = 128 * 1024
SMALL_IO_GLOBALS = (f"\toption smb2_max_read '{IO_SIZE}'\n\toption smb2_max_write '{IO_SIZE}'\n"
                    f"\toption smb2_max_trans '{IO_SIZE}'\n\toption server_signing 'auto'\n")
ENCRYPTED_SHARE = 0.15  # of the cases that can be: sent in TRANSFORM_HEADERs
ENCRYPTABLE_LEVELS = ("session", "tree", "file", "file2", "dir", "pipe", "bound")
MAX_LEAKED_FDS = 64  # leaked descriptors tolerated (already reported) before a restart
LOG_PROBLEM = re.compile(r"Traceback|internal error| ERROR ")
OSERROR_NOTE = "further errors of this kind are logged at DEBUG"


@dataclass
class CaseResult:
    recipe: dict
    wire: bytes = b""
    responses: list[Response] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    prefix_failed: str | None = None
    epilogue_id: int = 1 << 64  # responses from this MessageId on answer the epilogue

    @property
    def fuzzed(self) -> list[Response]:
        """The final responses to the seed's (mutated) frames, not to the epilogue."""
        return [r for r in self.responses if r.msg_id < self.epilogue_id and not r.interim]


@dataclass
class Stats:
    cases: int = 0
    findings: int = 0  # problems seen, duplicates included, except the corpus' open ones
    known: int = 0  # problems already in the corpus marked "xfail" (open, not fixed yet)
    new_findings: list[Path] = field(default_factory=list)
    duplicates: int = 0
    prefix_failures: int = 0
    health_checks: int = 0
    unhealthy: int = 0
    restarts: int = 0
    answered: Counter = field(default_factory=Counter)  # command name -> non-error responses
    errors: Counter = field(default_factory=Counter)  # command name -> error responses
    notes: list[str] = field(default_factory=list)
    signatures: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    def line(self, seed: int) -> str:
        rate = self.cases / self.elapsed if self.elapsed else 0.0
        return (f"fuzz: {self.cases} cases in {self.elapsed:.1f} s ({rate:.0f} cases/s), "
                f"{self.findings} findings ({len(self.new_findings)} new, {self.duplicates} "
                f"duplicate), {self.known} known open (corpus xfail), "
                f"{self.prefix_failures} prefix failures, {self.health_checks} "
                f"health checks ({self.unhealthy} failed), {len(self.answered)} commands "
                f"answered, seed {seed}")


def signature(kind: str, detail: str) -> str:
    """Where a problem happened, without line numbers (stable while others edit the code)."""
    if kind == "traceback":
        frames = re.findall(r'File "[^"]*?([\w/]+\.py)", line \d+, in (\w+)', detail)
        own = [f for f in frames if "ksmbd_embedded" in f[0] or "/" not in f[0]] or frames
        exc = re.findall(r"^(\w+(?:\.\w+)*(?:Error|Exception|Exit|Interrupt)\w*)\b", detail,
                         re.M)
        what = re.search(r"(\w+ failed|internal error|cleaning up a session failed)", detail)
        where = f"{own[-1][0].split('/')[-1]}:{own[-1][1]}" if own else "?"
        return f"traceback:{what.group(1) if what else '?'}:{exc[-1] if exc else '?'}:{where}"
    if kind == "framing":
        return "framing:" + re.sub(r"\d+|0x[0-9a-f]+", "N", detail.split("(")[0])[:80]
    if kind == "internal-error":
        return "internal-error:" + detail.split()[0]
    if kind == "prefix":
        return "prefix:" + re.sub(r"\d+|0x[0-9a-f]+", "N", detail)[:80]
    return kind


class Fuzzer:
    """One server (restarted when it dies) and the cases run against it."""

    def __init__(self, workdir: Path, out_dir: Path | None = None, seed: int = 0,
                 batch: int = 100, case_timeout: float = 3.0, echo=None,
                 corpus: Path | None = CORPUS_DIR) -> None:
        self.workdir = Path(workdir)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.seed = seed
        self.batch = batch
        self.case_timeout = case_timeout
        self.echo = echo or (lambda msg: None)
        self.server = None
        self.server_count = 0
        self.log_pos = 0
        self.nt_hash = nt_hash(USERS[USER])
        self.file_ino = 0
        self.health_n = 0
        self.last_recipe: dict | None = None  # the last case run, with its mutations
        self.notes: list[str] = []  # the server's "unexpected OSError" warnings
        self.known: set[str] = set()  # signatures already saved: not saved again
        self.open_known: set[str] = set()  # the corpus' "xfail" ones: not counted as findings
        for directory in {d for d in (corpus, self.out_dir) if d is not None and d.is_dir()}:
            for meta in directory.glob("*.json"):
                try:
                    recipe = json.loads(meta.read_text())
                    self.known.add(recipe["signature"])
                except (ValueError, KeyError):
                    continue
                if recipe.get("xfail"):
                    self.open_known.add(recipe["signature"])

    # -- the server --------------------------------------------------------------------------

    def __enter__(self) -> Fuzzer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self.server_count += 1
        root = self.workdir / f"server-{self.server_count}"
        self.server = start_server(
            root, extra_globals=SMALL_IO_GLOBALS, log_level="warning",
            shares={FUZZ_SHARE: {"read_only": "no", "users": [USER]},
                    HEALTH_SHARE: {"read_only": "no", "users": [USER]}},
            extra_args=["--ubus-socket", ""])
        self.log_pos = 0
        self.leak_baseline: dict[int, str] = {}
        self.reset_share()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def share_dir(self) -> Path:
        return self.server.shares[FUZZ_SHARE]

    def reset_share(self) -> None:
        """The fuzz share as every batch starts: what the seeds open, nothing left from the
        cases before (no stored security descriptors, renamed or deleted files)."""
        root = self.share_dir
        for entry in os.scandir(root):
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        for name in os.listxattr(root):
            if name.startswith("user."):
                os.removexattr(root, name)
        (root / "f.bin").write_bytes(bytes(range(256)) * 32)
        (root / "g.bin").write_bytes(b"g" * 100)
        (root / "d" / "sub").mkdir(parents=True)
        (root / "d" / "a.txt").write_text("a")
        (root / "d" / "b.txt").write_text("bb")
        (root / "d" / "sub" / "c.txt").write_text("ccc")
        os.symlink("f.bin", root / "ln")
        self.file_ino = os.stat(root / "f.bin").st_ino

    def new_log(self) -> str:
        """What the server logged since the last call."""
        try:
            with open(self.server.log_path, "rb") as f:
                f.seek(self.log_pos)
                data = f.read()
        except OSError:
            return ""
        self.log_pos += len(data)
        text = data.decode("utf-8", "replace")
        if OSERROR_NOTE in text:  # unexpected OSErrors: not findings, but worth a look
            self.notes += [line for line in text.splitlines()
                           if OSERROR_NOTE in line and line not in self.notes]
        return text

    def share_fds(self) -> dict[int, str]:
        """The server's open descriptors of files in its shares (fd -> path)."""
        out = {}
        shares = str(self.server.root / "shares")
        fd_dir = f"/proc/{self.server.proc.pid}/fd"
        try:
            names = os.listdir(fd_dir)
        except OSError:
            return out
        for name in names:
            try:
                target = os.readlink(f"{fd_dir}/{name}")
            except OSError:
                continue
            if target.startswith(shares):
                out[int(name)] = target
        return out

    def new_leaks(self) -> dict[int, str]:
        """Share files the server holds open with no client connected, beyond the baseline
        of leaks already reported. Looked at right after a case's end of stream (cheap);
        only when something shows, looked at again after a sync (the connection's clean-up
        may have been a moment behind the socket's close)."""
        if self.share_fds().keys() <= self.leak_baseline.keys():
            return {}
        self.sync()
        # by number: a leaked descriptor is never closed, so its number is never reused
        # (its path changes, to "... (deleted)", when the share is reset)
        return {fd: path for fd, path in self.share_fds().items()
                if fd not in self.leak_baseline}

    def sync(self) -> None:
        """Wait until the server has handled everything sent before: a NEGOTIATE round trip
        on a new connection (the single loop has then seen the earlier connections close)."""
        try:
            with Client(self.server.port, timeout=2.0) as c:
                c.negotiate(b.SMB2_10)
        except (OSError, PrefixFailed):
            pass

    # -- one case -----------------------------------------------------------------------------

    def establish(self, client: Client, seed: Seed) -> Ctx:
        ctx = client.ctx
        ctx.nt_hash = self.nt_hash
        ctx.user = USER
        ctx.file_ino = self.file_ino
        ctx.share = FUZZ_SHARE
        for step in LEVEL_PREFIX[seed.level]:
            if step == "smb1":
                client.smb1_negotiate()
            elif step == "neg":
                client.negotiate(seed.dialect)
            elif step == "auth":
                client.session_setup_negotiate()
            elif step == "session":
                client.session_setup_authenticate()
            elif step == "tree":
                client.tree_connect(FUZZ_SHARE)
            elif step == "file":
                ctx.file_id = client.create("f.bin")
                if seed.dialect >= b.SMB2_10:
                    ctx.resume_key = client.ioctl(ctx.file_id, b.FSCTL_SRV_REQUEST_RESUME_KEY,
                                                  step="resume key", max_output=32)[:24]
            elif step == "file2":
                ctx.file_id2 = client.create("f.bin")
                client.lock(ctx.file_id2, [(0, 16, b.SMB2_LOCKFLAG_EXCLUSIVE_LOCK
                                            | b.SMB2_LOCKFLAG_FAIL_IMMEDIATELY)])
            elif step == "dir":
                ctx.dir_id = client.create("d", desired_access=b.GENERIC_READ,
                                           disposition=b.FILE_OPEN,
                                           options=b.FILE_DIRECTORY_FILE)
            elif step == "pipe":
                client.tree_connect("IPC$")
                ctx.pipe_id = client.create("srvsvc", desired_access=0x0012019F,
                                            file_attributes=0, disposition=b.FILE_OPEN)
            elif step == "bound":
                client.ioctl(ctx.pipe_id, b.FSCTL_PIPE_TRANSCEIVE, b.rpc_bind(call_id=7),
                             step="rpc bind")
        if ctx.challenge is None:  # seeds built for splices need one
            ctx.challenge = b.Challenge(b"", b.NTLM_CLIENT_FLAGS, bytes(8), b"")
        return ctx

    @staticmethod
    def _builder(ctx: Ctx):
        def build_other(name: str) -> b.Msg:
            try:
                return BY_NAME[name].build(ctx)[0]
            except Exception:  # a seed that cannot be built in this context: nothing to add
                return b.Msg()
        return build_other

    def execute(self, recipe: dict, rng: random.Random | None = None) -> CaseResult:
        """Run one case; with `rng`, draw its target frame and mutations into `recipe`."""
        seed = BY_NAME[recipe["seed"]]
        result = CaseResult(recipe)
        try:
            client = Client(self.server.port, timeout=2.0)
        except OSError as exc:
            result.prefix_failed = f"connect: {exc}"
            return result
        with client:
            try:
                ctx = self.establish(client, seed)
            except (PrefixFailed, OSError) as exc:
                result.prefix_failed = str(exc)
                return result
            frames = seed.build(ctx)
            build_other = self._builder(ctx)
            if rng is not None:
                recipe["target"] = rng.randrange(len(frames))
                recipe["ops"] = mutators.generate(rng, frames[recipe["target"]], build_other,
                                                  list(BY_NAME), FRAME_LIMIT)
            target = recipe.get("target", 0)
            mutated, transport = mutators.apply(recipe.get("ops", []), frames[target],
                                                build_other)
            wrap = ctx.transform.encrypt if recipe.get("encrypt") and ctx.transform else None
            result.wire = mutators.wire([bytes(f.data) for f in frames], target, mutated,
                                        transport, wrap)
            for msg in epilogue(seed.level, ctx):
                result.wire += struct.pack(">I", len(msg)) + bytes(msg.data)
            result.epilogue_id = ctx.msg_id + EPILOGUE_GAP
            self._exchange(client.sock, result, ctx.transform)
        return result

    def execute_raw(self, level: str, dialect: int, data: bytes, recipe: dict) -> CaseResult:
        """Send `data` (Direct TCP frames as saved in a .bin) after a prefix: the replay of a
        corpus file whose seed no longer exists."""
        result = CaseResult(recipe, data)
        try:
            with Client(self.server.port, timeout=2.0) as client:
                ctx = self.establish(client, Seed("raw", level, lambda ctx: [], "any", dialect))
                self._exchange(client.sock, result, ctx.transform)
        except (PrefixFailed, OSError) as exc:
            result.prefix_failed = str(exc)
        return result

    def _exchange(self, sock: socket.socket, result: CaseResult, transform=None) -> None:
        try:
            sock.sendall(result.wire)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may have dropped us already: read what it sent
        stream, closed = read_until_eof(sock, self.case_timeout)
        if not closed:
            result.problems.append(("hang", f"no end of stream {self.case_timeout:.0f} s "
                                            f"after the request was sent"))
        try:
            frames, rest = split_frames(stream)
            for frame in frames:
                responses = decode_frame(frame, transform)
                result.responses += responses
                for r in responses:
                    # A LOCK that would go async anywhere but last in a compound is failed with
                    # STATUS_INTERNAL_ERROR on purpose (MS-SMB2 <159>); a LOCK handler bug
                    # still shows as the traceback every unexpected exception logs.
                    if r.status == STATUS_INTERNAL_ERROR and r.command != b.LOCK:
                        result.problems.append(("internal-error", f"{r.name} answered "
                                                                  "STATUS_INTERNAL_ERROR"))
            if rest and closed:
                raise FramingError(f"the server's last frame is cut short ({len(rest)} bytes)")
        except FramingError as exc:
            result.problems.append(("framing", str(exc)))

    def server_problems(self) -> list[tuple[str, str]]:
        """The server died, or logged a traceback/internal error since the last look."""
        out = []
        if not self.server.alive():
            out.append(("died", f"server exited with {self.server.proc.poll()}"))
        text = self.new_log()
        if LOG_PROBLEM.search(text):
            out.append(("traceback", _problem_excerpt(text)))
        return out

    # -- the loop ----------------------------------------------------------------------------

    def recipe_for(self, index: int) -> tuple[dict, random.Random]:
        rng = random.Random(f"ksmbd-fuzz:{self.seed}:{index}")
        seed = rng.choice(SEEDS)
        recipe = {"seed": seed.name, "level": seed.level, "dialect": f"0x{seed.dialect:04x}",
                  "fuzz_seed": self.seed, "case": index}
        # Some cases after an SMB 3.1.1 logon go encrypted (the prefix stays plain).
        if rng.random() < ENCRYPTED_SHARE and seed.dialect == b.SMB3_11 \
                and seed.level in ENCRYPTABLE_LEVELS:
            recipe["encrypt"] = True
        return recipe, rng

    def run_case(self, index: int, stats: Stats | None = None) -> tuple[dict, CaseResult]:
        """Case `index` of this run's seed. When its prefix fails, an earlier case left the
        share unusable for it (a stored security descriptor denying access, a read-only
        attribute, f.bin renamed): the share starts afresh and the case runs again. A prefix
        failing on a fresh share is the server's fault: a finding."""
        recipe, rng = self.recipe_for(index)
        result = self.execute(recipe, rng)
        if result.prefix_failed:
            if stats is not None:
                stats.prefix_failures += 1
            self.sync()
            self.reset_share()
            recipe, rng = self.recipe_for(index)
            result = self.execute(recipe, rng)
            if result.prefix_failed:
                result.problems.append(("prefix", f"{recipe['level']} prefix failed on a "
                                                  f"fresh share: {result.prefix_failed}"))
        return recipe, result

    def run(self, count: int, seconds: float, stats: Stats | None = None) -> Stats:
        stats = stats or Stats()
        self.sync()
        self.leak_baseline = self.share_fds()  # what earlier work left is not this run's
        start = time.monotonic()
        deadline = start + seconds
        previous: dict | None = None
        index = 0
        while index < count and time.monotonic() < deadline:
            recipe, result = self.run_case(index, stats)
            stats.cases += 1
            for r in result.fuzzed:
                (stats.errors if is_error(r.status) else stats.answered)[r.name] += 1
            problems = result.problems + self.server_problems()
            leaked = self.new_leaks()
            if leaked:
                problems.append(("fd-leak", _leak_detail(leaked, recipe)))
            if any(k == "traceback" for k, _ in problems):
                # the STATUS_INTERNAL_ERROR of an exception is the same finding as its
                # traceback, which says where: report that one only
                problems = [(k, d) for k, d in problems if k != "internal-error"]
            for kind, detail in problems:
                self.report(stats, kind, detail, result, previous)
            if leaked:
                # The leaked descriptors stay (the server cannot be told to drop them): they
                # become the baseline, until so many that a restart is cheaper than the risk.
                self.leak_baseline = self.share_fds()
                if len(self.leak_baseline) > MAX_LEAKED_FDS:
                    self.restart()
                    stats.restarts += 1
            if not self.server.alive():
                self.restart()
                stats.restarts += 1
            previous = self.last_recipe = recipe
            index += 1
            if index % self.batch == 0 or index >= count or time.monotonic() >= deadline:
                self.between_batches(stats, index)
        stats.elapsed = time.monotonic() - start
        return stats

    def between_batches(self, stats: Stats, index: int) -> None:
        stats.health_checks += 1
        problem = self.health_check()
        leaked = self.new_leaks()
        if leaked:  # every case is checked: only the health check itself can be the cause
            recipe = {"seed": None, "level": None, "fuzz_seed": self.seed,
                      "batch": [max(0, index - self.batch), index]}
            self.report(stats, "fd-leak", _leak_detail(leaked, recipe), CaseResult(recipe), None,
                        confirm=False)
            self.leak_baseline = self.share_fds()
        text = self.new_log()
        stats.notes = self.notes
        if LOG_PROBLEM.search(text):
            # Logged after the last case's own check (e.g. a dropped connection's clean-up):
            # the batch's last case is the likely cause.
            last = self.last_recipe or self.recipe_for(index - 1)[0]
            self.report(stats, "traceback", _problem_excerpt(text), CaseResult(last), None)
        if problem:
            stats.unhealthy += 1
            first = max(0, index - self.batch)
            recipe = {"seed": None, "level": None, "fuzz_seed": self.seed,
                      "batch": [first, index], "rerun": f"scripts/fuzz --seed {self.seed} "
                      f"--count {index}"}
            self.report(stats, "unhealthy", problem, CaseResult(recipe), None, confirm=False)
            self.restart()
            stats.restarts += 1
        else:
            self.reset_share()

    def health_check(self) -> str | None:
        """A fresh client logs on and uses a file within 1 s; the reason when it cannot."""
        if not self.server.alive():
            return f"server exited with {self.server.proc.poll()}"
        self.health_n += 1
        start = time.monotonic()
        payload = os.urandom(4096)
        try:
            with Client(self.server.port, timeout=1.0) as c:
                c.ctx.nt_hash = self.nt_hash
                c.negotiate(b.SMB3_11)
                c.logon()
                c.tree_connect(HEALTH_SHARE)
                fid = c.create(f"health-{self.health_n}.bin", disposition=b.FILE_OVERWRITE_IF,
                               options=b.FILE_DELETE_ON_CLOSE)
                c.write(fid, payload)
                if c.read(fid, len(payload)) != payload:
                    return "READ returned other data than the WRITE wrote"
                c.close_file(fid)
                c.echo()
        except (PrefixFailed, OSError) as exc:
            return f"health check failed: {exc}"
        took = time.monotonic() - start
        if took > 1.0:
            return f"health check took {took:.2f} s"
        return None

    # -- findings ---------------------------------------------------------------------------

    def reproduce(self, kind: str, recipe: dict, fresh: bool = True) -> CaseResult | None:
        """Replay `recipe` alone (on a freshly reset share unless `fresh` is false); its result
        if the problem `kind` shows again, else None."""
        if recipe.get("seed") not in BY_NAME:
            return None
        self.sync()
        if fresh:
            self.reset_share()
        self.new_log()
        before = self.share_fds()
        result = self.execute(dict(recipe))
        self.sync()
        problems = result.problems + self.server_problems()
        if kind == "fd-leak" and self.server.alive():
            new = {fd: p for fd, p in self.share_fds().items() if fd not in before}
            if new:
                problems.append(("fd-leak", _leak_detail(new, recipe)))
        if not self.server.alive():
            self.restart()
        return result if any(k == kind for k, _ in problems) else None

    def minimize(self, kind: str, recipe: dict, result: CaseResult,
                 budget: int = 8) -> tuple[dict, CaseResult]:
        """Drop the mutation operations the problem does not need (at most `budget` tries);
        then, when what is left appends another seed, try that seed alone."""
        recipe, result = self._drop_ops(kind, recipe, result, budget)
        for op in recipe.get("ops", []):
            if op["op"] in ("chain", "splice") and op["seed"] in BY_NAME:
                other = BY_NAME[op["seed"]]
                alone = dict(recipe, seed=other.name, level=other.level,
                             dialect=f"0x{other.dialect:04x}", target=0, ops=[])
                got = self.reproduce(kind, alone)
                if got is not None:
                    return alone, got
        return recipe, result

    def _drop_ops(self, kind: str, recipe: dict, result: CaseResult,
                  budget: int) -> tuple[dict, CaseResult]:
        ops = list(recipe.get("ops", []))
        i = 0
        while i < len(ops) and budget > 0:
            budget -= 1
            trial = dict(recipe, ops=ops[:i] + ops[i + 1:])
            got = self.reproduce(kind, trial)
            if got is not None:
                ops, result = trial["ops"], got
            else:
                i += 1
        return dict(recipe, ops=ops), result

    def report(self, stats: Stats, kind: str, detail: str, result: CaseResult,
               previous: dict | None, confirm: bool = True) -> None:
        """Count a problem; confirm it by replaying the case alone (else the one before),
        shrink its mutations, and save it unless a problem of the same signature was."""
        known = signature(kind, detail) if kind != "fd-leak" else _leak_signature(result)
        if known in self.open_known:  # a known open problem (corpus, "xfail"): not a new one
            stats.known += 1
            stats.signatures.append(known)
            return
        stats.findings += 1
        recipe, wire = result.recipe, result.wire
        confirmed = None
        if confirm and recipe.get("seed") in BY_NAME:
            if not self.server.alive():
                self.restart()
                stats.restarts += 1
            got = self.reproduce(kind, recipe)
            if got is None:  # it may need what the batch's earlier cases left on the share
                got = self.reproduce(kind, recipe, fresh=False)
            if got is None and previous is not None:
                got = self.reproduce(kind, previous)
                if got is not None:
                    recipe = previous
            confirmed = got is not None
            if got is not None:
                recipe, result = self.minimize(kind, recipe, got)
                wire = result.wire
        sig = signature(kind, detail) if kind != "fd-leak" else _leak_signature(result)
        stats.signatures.append(sig)
        if sig in self.open_known:  # a known open problem (corpus, "xfail"): not a new one
            stats.findings -= 1
            stats.known += 1
            return
        self.echo(f"finding: {kind}: {detail.strip().splitlines()[-1] if detail.strip() else ''}"
                  f" [{recipe.get('seed')} case {recipe.get('case')}]")
        if sig in self.known:
            stats.duplicates += 1
            return
        self.known.add(sig)
        if self.out_dir is None:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if not wire:
            wire = json.dumps(recipe, sort_keys=True).encode()
        name = hashlib.sha1(wire).hexdigest()
        meta = dict(recipe)
        meta.update(kind=kind, signature=sig, confirmed=confirmed, seen=detail.splitlines())
        (self.out_dir / f"{name}.bin").write_bytes(wire)
        (self.out_dir / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
        stats.new_findings.append(self.out_dir / f"{name}.json")

    # -- replays and seed checks -------------------------------------------------------------

    def replay(self, meta_path: Path) -> CaseResult:
        """Replay one corpus file; the result's problems are what it still shows."""
        recipe = json.loads(meta_path.read_text())
        self.sync()
        self.new_log()
        before = self.share_fds()
        if recipe.get("seed") in BY_NAME:
            result = self.execute(dict(recipe))
        elif recipe.get("level") in LEVEL_PREFIX:
            bin_path = meta_path.with_suffix(".bin")
            result = self.execute_raw(recipe["level"], int(recipe.get("dialect", "0x311"), 16),
                                      bin_path.read_bytes(), recipe)
        else:  # a batch (unhealthy, or a leak no single case showed): rerun its cases
            first, last = recipe["batch"]
            result = CaseResult(recipe)
            saved, self.seed = self.seed, recipe["fuzz_seed"]
            try:
                self.reset_share()
                for i in range(first, last):
                    self.run_case(i)
            finally:
                self.seed = saved
            problem = self.health_check()
            if problem:
                result.problems.append(("unhealthy", problem))
        self.sync()
        result.problems += self.server_problems()
        new = {fd: path for fd, path in self.share_fds().items() if fd not in before}
        if new and self.server.alive():
            result.problems.append(("fd-leak", _leak_detail(new, recipe)))
        if any(k in ("died", "fd-leak") for k, _ in result.problems):
            self.restart()
        else:
            self.reset_share()
        return result

    def check_seeds(self) -> tuple[list[str], Counter]:
        """Every seed unmutated: its expectation holds and no problem shows. Returns the
        failures and the commands answered without error."""
        failures, answered = [], Counter()
        for seed in SEEDS:
            self.reset_share()
            result = self.execute({"seed": seed.name, "ops": []})
            self.sync()
            problems = result.problems + self.server_problems()
            finals = result.fuzzed
            for r in finals:
                if not is_error(r.status):
                    answered[r.name] += 1
            statuses = ", ".join(f"{r.name}={r.status:#010x}" for r in finals)
            if result.prefix_failed:
                failures.append(f"{seed.name}: prefix failed: {result.prefix_failed}")
            elif problems:
                failures.append(f"{seed.name}: {problems}")
            elif seed.expect == "ok" and (not finals or any(is_error(r.status) for r in finals)):
                failures.append(f"{seed.name}: expected success, got [{statuses}]")
            elif seed.expect == "error" and not any(is_error(r.status) for r in finals):
                failures.append(f"{seed.name}: expected an error, got [{statuses}]")
            if any(k == "died" for k, _ in problems):
                self.restart()
        self.reset_share()
        return failures, answered


def _problem_excerpt(text: str, limit: int = 60) -> str:
    """The first problem line of a log and its traceback (up to the next log record)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if LOG_PROBLEM.search(line):
            out = [line]
            for more in lines[i + 1:i + limit]:
                if re.match(r"\d{4}-\d\d-\d\d ", more):
                    break
                out.append(more)
            return "\n".join(out)
    return text[-4000:]


def _leak_signature(result: CaseResult) -> str:
    """A leaked Open comes from a CREATE that should not have succeeded: name it by the last
    successful request other than a CREATE before it, and itself ("TREE_DISCONNECT>CREATE")."""
    ok = [r.name for r in result.fuzzed if not is_error(r.status)]
    if "CREATE" in ok:
        before = [name for name in ok[:len(ok) - 1 - ok[::-1].index("CREATE")]
                  if name != "CREATE"]
        return "fd-leak:" + ">".join(before[-1:] + ["CREATE"])
    return f"fd-leak:{result.recipe.get('seed') or 'batch'}"


def _leak_detail(fds: dict[int, str], recipe: dict) -> str:
    files = ", ".join(sorted({os.path.basename(p) for p in fds.values()}))
    return (f"{len(fds)} file descriptor(s) of share files still open after every client "
            f"left ({files}); case {recipe.get('seed')} #{recipe.get('case')}")


def load_xfail(meta_path: Path) -> str | None:
    """A corpus file's "xfail" reason: a known, still open problem."""
    try:
        return json.loads(meta_path.read_text()).get("xfail")
    except ValueError:
        return None

