"""Fuzz driver: runs every target (fuzz/targets.py) in its own child process and reports what they found.

    python fuzz/run.py                      # every target, FUZZ_SECONDS each (default 720), 2 at a time
    python fuzz/run.py --seconds 60 text    # one target for a minute
    python fuzz/run.py --runs 300           # a fixed number of inputs per target (what the tests do)
    python fuzz/run.py --asan               # against the sanitizer build (make asan-build first)

A child that dies (a signal, a hang past --timeout, memory past --rss-limit-mb) leaves libFuzzer's crash-* /
timeout-* / oom-* file in fuzz/crashes/<target>/; the driver starts the target again for the rest of its time.
Python-level findings (an undocumented exception, a wrong result) are written there by the child as finding-*
(the input) with a .txt (the traceback). The summary (target, seconds: wall time of its children, start-up
included; inputs tried; inputs/s over those seconds; coverage: libFuzzer's cov/ft, Python edges of embedfast and
the checks; findings) goes to stdout and to fuzz/last-run.txt; the exit status is 1 when anything was found.
The corpus each target grows is kept in fuzz/work/corpus/<target>/ for the next run (git-ignored).
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
ASAN_TREE = os.path.join(REPO, "build", "asan", "tree")
ALL = ("text", "w2vbin", "native", "fasttext", "checkpoint", "corpus")
EXTRA = ("selftest",)  # checks the harness (tests/faults/test_fuzz.py); not part of a fuzz run
_NOISE = ("INFO: Instrumenting", "WARNING: Failed to find function")
ARTIFACTS = ("crash-", "timeout-", "oom-", "leak-", "finding-")


def sanitizer_env() -> dict:
    """LD_PRELOAD and options for running the sanitizer build under an ordinary python."""
    libs = []
    for lib in ("libasan.so", "libubsan.so"):
        p = subprocess.run(["gcc", f"-print-file-name={lib}"], capture_output=True, text=True).stdout.strip()
        if not os.path.isabs(p) or not os.path.exists(p):
            raise SystemExit(f"fuzz/run.py: gcc does not know {lib} (gcc -print-file-name={lib} gave {p!r})")
        libs.append(os.path.realpath(p))
    return {
        "LD_PRELOAD": " ".join(libs),
        # python leaks by design; abort_on_error gives libFuzzer a signal to report; atheris' libFuzzer installs
        # its own handlers, so ASan must leave SIGSEGV/SIGBUS to them only after printing its report
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1:handle_segv=1:handle_sigbus=1:allocator_may_return_null=1:"
                        "detect_odr_violation=0",
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
    }


def _new_artifacts(crash_dir: str, before: set) -> list:
    return sorted(p for p in glob.glob(os.path.join(crash_dir, "*"))
                  if p not in before and os.path.basename(p).startswith(ARTIFACTS) and not p.endswith(".txt"))


def _parse_log(text: str) -> dict:
    out = {}
    for key in ("number_of_executed_units", "average_exec_per_sec", "peak_rss_mb", "new_units_added"):
        m = re.findall(rf"stat::{key}:\s*(\d+)", text)
        if m:
            out[key] = int(m[-1])
    cov = re.findall(r"cov: (\d+) ft: (\d+)", text)
    if cov:
        out["cov"], out["ft"] = int(cov[-1][0]), int(cov[-1][1])
    if "number_of_executed_units" not in out:  # killed before the final stats: the last status line
        m = re.findall(r"^#(\d+)\s", text, re.M)
        if m:
            out["number_of_executed_units"] = int(m[-1])
    return out


class Job:
    def __init__(self, target: str, args, work: str, crash_root: str, env: dict):
        self.target, self.args, self.env = target, args, env
        self.corpus = os.path.join(work, "corpus", target)
        self.logs = os.path.join(work, "logs")
        self.crash_dir = os.path.join(crash_root, target)
        shutil.rmtree(self.crash_dir, ignore_errors=True)
        os.makedirs(self.crash_dir)
        os.makedirs(self.corpus, exist_ok=True)
        os.makedirs(self.logs, exist_ok=True)
        self.t0 = self.t_end = None
        self.execs, self.starts, self.cov, self.ft, self.rss = 0, 0, 0, 0, 0
        self.deaths = []  # (kind, artifact path, log path)
        self.repeats = 0  # deaths on an input that had killed it before
        self.proc = None
        self.log_path = None

    def remaining(self) -> float:
        if self.args.runs:
            return 1e9
        return self.args.seconds - (time.time() - self.t0)

    def start(self) -> bool:
        if self.t0 is None:
            self.t0 = time.time()
        if self.starts > self.args.max_restarts or (not self.args.runs and self.remaining() < 5):
            return False
        if self.args.runs and self.starts > 0 and self.execs >= self.args.runs:
            return False
        self.before = set(glob.glob(os.path.join(self.crash_dir, "*")))
        flags = [f"-timeout={self.args.timeout}", f"-rss_limit_mb={self.args.rss_limit_mb}", "-print_final_stats=1",
                 f"-artifact_prefix={self.crash_dir}/", f"-max_len={self.args.max_len}", "-close_fd_mask=1"]
        if self.args.runs:
            flags.append(f"-runs={max(self.args.runs - self.execs, 1)}")
        else:
            flags.append(f"-max_total_time={max(int(self.remaining()), 1)}")
        if self.args.seed is not None:
            flags.append(f"-seed={self.args.seed + self.starts}")
        self.log_path = os.path.join(self.logs, f"{self.target}-{self.starts}.log")
        self.log = open(self.log_path, "w")
        cmd = [sys.executable, os.path.join(HERE, "fuzz_one.py"), self.target, self.corpus, *flags]
        env = dict(self.env, FUZZ_FINDINGS=self.crash_dir)
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=self.args.cwd,
                                     stdin=subprocess.DEVNULL)
        self.starts += 1
        return True

    def poll(self) -> bool:
        """True while the target has work left (running now or to be started again)."""
        if self.proc is None:
            return False
        rc = self.proc.poll()
        if rc is None:
            if not self.args.runs and self.remaining() < -60:  # libFuzzer missed its own deadline: stop it
                self.proc.kill()
            return True
        self.log.close()
        with open(self.log_path, errors="replace") as f:
            text = f.read()
        st = _parse_log(text)
        self.execs += st.get("number_of_executed_units", 0)
        self.cov, self.ft = max(self.cov, st.get("cov", 0)), max(self.ft, st.get("ft", 0))
        self.rss = max(self.rss, st.get("peak_rss_mb", 0))
        new = [p for p in _new_artifacts(self.crash_dir, self.before) if not os.path.basename(p).startswith("finding-")]
        if not new and rc != 0:  # the same input again (libFuzzer names artifacts by their hash)
            m = re.findall(r"Test unit written to (\S+)", text)
            if m and os.path.exists(m[-1]):
                self.repeats += 1
                self.proc, self.t_end = None, time.time()
                return self.start()
        current = os.path.join(self.crash_dir, ".current-input")
        if os.path.exists(current):  # the random engine died inside an input
            with open(current, "rb") as f:
                data = f.read()
            dst = os.path.join(self.crash_dir, "crash-" + hashlib.sha1(data).hexdigest())
            os.replace(current, dst)
            new.append(dst)
        if rc != 0 and not new and not st.get("number_of_executed_units") and "INITED" not in text:
            # it never got to fuzzing (an import error, a bad flag): the harness is broken, not the code
            self.deaths.append((f"harness error (exit {rc}) before the first input", None, self.log_path))
            self.proc = None
            self.t_end = time.time()
            return False
        died = rc != 0 or new
        if died:
            for p in new or [None]:
                kind = os.path.basename(p).split("-")[0] if p else f"exit {rc}"
                self.deaths.append((kind, p, self.log_path))
        self.proc = None
        self.t_end = time.time()
        if died or (self.args.runs and self.execs < self.args.runs and st.get("number_of_executed_units")):
            return self.start()
        return False

    def findings(self) -> list:
        return sorted(p for p in glob.glob(os.path.join(self.crash_dir, "finding-*")) if not p.endswith(".txt"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("targets", nargs="*", default=list(ALL), help=f"targets (default: all of {', '.join(ALL)})")
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", "720")),
                    help="seconds per target (env FUZZ_SECONDS, default 720)")
    ap.add_argument("--runs", type=int, default=0, help="inputs per target instead of a time budget")
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("FUZZ_JOBS", "2")), help="targets at a time")
    ap.add_argument("--timeout", type=int, default=10, help="seconds one input may take (a hang past it: finding)")
    ap.add_argument("--rss-limit-mb", type=int, default=0, help="memory limit of a child (default 3072, asan 6144)")
    ap.add_argument("--max-len", type=int, default=4096, help="longest input libFuzzer generates")
    ap.add_argument("--max-restarts", type=int, default=10, help="restarts of a target after a crash")
    ap.add_argument("--seed", type=int, default=None, help="libFuzzer -seed (fixed: a repeatable run)")
    ap.add_argument("--asan", action="store_true", default=os.environ.get("FUZZ_ASAN", "") not in ("", "0"),
                    help="use the sanitizer build in build/asan/tree (env FUZZ_ASAN=1)")
    ap.add_argument("--work", default=os.path.join(HERE, "work"), help="corpus and logs folder")
    ap.add_argument("--crashes", default=os.path.join(HERE, "crashes"), help="findings folder")
    ap.add_argument("--summary", default=os.path.join(HERE, "last-run.txt"), help="summary file")
    args = ap.parse_args(argv)
    bad = [t for t in args.targets if t not in ALL + EXTRA]
    if bad:
        ap.error(f"unknown target(s) {bad}; targets: {ALL}")
    if not args.rss_limit_mb:
        args.rss_limit_mb = 6144 if args.asan else 3072

    env = dict(os.environ)
    env["PYTHONSAFEPATH"] = "1"  # never the current folder first: the package comes from PYTHONPATH
    env["OMP_NUM_THREADS"] = env.get("OMP_NUM_THREADS", "1")
    if args.asan:
        if not glob.glob(os.path.join(ASAN_TREE, "embedfast", "_C*.so")):
            raise SystemExit("fuzz/run.py --asan: no sanitizer build in build/asan/tree (run `make asan-build`)")
        env.update(sanitizer_env())
        env["PYTHONPATH"] = ASAN_TREE
    else:
        env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    args.cwd = args.work
    os.makedirs(args.work, exist_ok=True)

    jobs = [Job(t, args, args.work, args.crashes, env) for t in args.targets]
    pending, running = list(jobs), []
    t_start = time.time()
    while pending or running:
        while pending and len(running) < max(1, args.jobs):
            j = pending.pop(0)
            if j.start():
                running.append(j)
        time.sleep(0.2)
        running = [j for j in running if j.poll()]
    wall = time.time() - t_start

    lines = [f"embedfast fuzz run: {time.strftime('%Y-%m-%d %H:%M:%S')}, {'sanitizer build' if args.asan else 'normal build'}"
             f", {'%d inputs' % args.runs if args.runs else '%d s' % args.seconds} per target, {args.jobs} at a time, "
             f"wall {wall:.0f} s",
             f"{'target':<11} {'seconds':>8} {'execs':>9} {'execs/s':>8} {'cov':>6} {'ft':>6} {'rss MB':>7} "
             f"{'starts':>6} {'findings':>8}"]
    total_found, details = 0, []
    for j in jobs:
        secs = (j.t_end - j.t0) if j.t0 and j.t_end else 0.0
        found = j.findings() + [p for _, p, _ in j.deaths if p]
        n = len(found) + sum(1 for _, p, _ in j.deaths if p is None)
        total_found += n
        eps = j.execs / secs if secs > 0 else 0.0
        lines.append(f"{j.target:<11} {secs:>8.0f} {j.execs:>9} {eps:>8.1f} {j.cov:>6} {j.ft:>6} {j.rss:>7} "
                     f"{j.starts:>6} {n:>8}")
        for p in j.findings():
            with open(p + ".txt", errors="replace") as f:
                head = f.read().split("\n")
            details.append(f"[{j.target}] {p}\n    " + "\n    ".join(head[:3]))
        for kind, p, log in j.deaths:
            with open(log, errors="replace") as f:
                tail = [ln for ln in f.read().split("\n") if ln.strip() and not ln.startswith(_NOISE)][-30:]
            details.append(f"[{j.target}] {kind}: {p or '(no artifact)'} (log {log})\n    " + "\n    ".join(tail))
    lines.append(f"total: {sum(j.execs for j in jobs)} inputs, {total_found} finding(s)"
                 + ("" if total_found else ": clean"))
    report = "\n".join(lines + ([""] + details if details else [])) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(args.summary)), exist_ok=True)
    with open(args.summary, "w") as f:
        f.write(report)
    print(report, end="")
    return 1 if total_found else 0


if __name__ == "__main__":
    sys.exit(main())
