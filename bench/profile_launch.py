#!/usr/bin/env python
"""Profile one tool's gunicorn workers under the bench/launch load.

    .venv/bin/python bench/profile_launch.py [--tool ours] [--mode pyspy|cprofile] [--duration 15]

- `--mode pyspy` (default when py-spy is found: `--py-spy PATH`, `$PY_SPY`, or on PATH) samples
  each worker with `py-spy record --idle` for the whole window, so the result is wall-clock
  time inside requests, waits included (SQLite lock back-off, file I/O). Samples where the
  worker sits in gunicorn waiting for a connection are dropped.
- `--mode cprofile` runs the workers with bench/gunicorn_cprofile.py (deterministic, slower),
  profiling the thread CPU time of the measured window only.

Prints the share of request time per function: inclusive for functions of `lti_tool/` (or
`bench/minimal_tool.py`), and "self" time grouped by the module where time is actually spent.
Writes the report to bench/results/profile-<tool>-<mode>.txt (and the merged cProfile stats to
bench/results/profile-<tool>.pstats; py-spy's raw stacks with --keep-raw).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import collections  # noqa: E402
import os  # noqa: E402
import pstats  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from bench import launch as L  # noqa: E402

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]*)(?::(?P<line>\d+))?\)$")
DB_CALLS = ("do_execute", "do_executemany", "do_commit", "do_rollback", "connect")


def find_py_spy(given: str | None) -> str | None:
    for cand in (given, os.environ.get("PY_SPY"), shutil.which("py-spy")):
        if cand and Path(cand).exists():
            return cand
    return None


def short(path: str) -> str:
    for marker in ("site-packages/", "/lib/python3.11/", str(ROOT) + "/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def owner(path: str) -> str:
    """Where a leaf frame's time goes: a package (or lti_tool module, or stdlib module)."""
    p = short(path)
    if p.startswith("lti_tool/"):
        return p
    if p.startswith("bench/"):
        return p
    return p.split("/", 1)[0] if "/" in p else p


def analyse_pyspy(raw_files: list[Path], ours_prefix: str, top: int) -> str:
    incl: collections.Counter[str] = collections.Counter()
    self_by_owner: collections.Counter[str] = collections.Counter()
    self_by_func: collections.Counter[str] = collections.Counter()
    db_by_caller: collections.Counter[str] = collections.Counter()
    db_samples = 0
    request_samples = 0
    for path in raw_files:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count_s = line.rpartition(" ")
            if not stack or not count_s.isdigit():
                continue
            count = int(count_s)
            frames = [f for f in stack.split(";") if f]
            # Keep only samples inside a request (below gunicorn's handle_request).
            if not any("handle_request" in f for f in frames):
                continue
            request_samples += count
            seen: set[str] = set()
            for f in frames:
                m = FRAME.match(f.strip())
                if not m:
                    continue
                file = short(m["file"])
                if file.startswith(ours_prefix):
                    key = f"{file}:{m['func']}"
                    if key not in seen:
                        seen.add(key)
                        incl[key] += count
            leaf = FRAME.match(frames[-1].strip()) if frames else None
            if leaf:
                self_by_owner[owner(leaf["file"])] += count
                self_by_func[f"{short(leaf['file'])}:{leaf['func']}"] += count
                if leaf["func"].endswith(DB_CALLS):
                    # Time inside the database driver (CPU, lock waits, fsync), charged to
                    # the innermost function of the tool that caused it.
                    db_samples += count
                    caller = "(outside the tool)"
                    for f in reversed(frames):
                        m = FRAME.match(f.strip())
                        if m and short(m["file"]).startswith(ours_prefix):
                            caller = f"{short(m['file'])}:{m['func']}"
                            break
                    db_by_caller[caller] += count
    if not request_samples:
        return "no request samples (did py-spy attach?)"
    pct = 100.0 / request_samples
    out = [f"{request_samples} samples inside requests (wall-clock, waits included)", ""]
    out.append(f"Inclusive share of request time, functions under {ours_prefix}:")
    out += [f"  {n * pct:5.1f}%  {k}" for k, n in incl.most_common(top)]
    out.append("")
    out.append(f"Inside the database driver ({db_samples * pct:.1f}% of request time), "
               "by the tool's innermost function:")
    out += [f"  {n * pct:5.1f}%  {k}" for k, n in db_by_caller.most_common(top)]
    out.append("")
    out.append("Self time by where it is spent (leaf frame's package or module):")
    out += [f"  {n * pct:5.1f}%  {k}" for k, n in self_by_owner.most_common(top)]
    out.append("")
    out.append("Self time by leaf function:")
    out += [f"  {n * pct:5.1f}%  {k}" for k, n in self_by_func.most_common(top)]
    return "\n".join(out)


def analyse_cprofile(files: list[Path], ours_prefix: str, top: int, merged: Path) -> str:
    stats = pstats.Stats(*[str(f) for f in files])
    stats.dump_stats(str(merged))
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for (_cc, _nc, tt, _ct, _callers) in raw.values())
    rows_incl, rows_self = [], []
    for (file, _line, func), (_cc, nc, tt, ct, _callers) in raw.items():
        name = f"{short(file)}:{func}"
        if short(file).startswith(ours_prefix):
            rows_incl.append((ct, nc, name))
        rows_self.append((tt, nc, name))
    clock = "wall-clock" if os.environ.get("BENCH_PROFILE_CLOCK") == "wall" else "CPU"
    out = [f"cProfile: {total:.1f} s of {clock} time in the workers (request threads)", ""]
    out.append(f"Cumulative time, functions under {ours_prefix}:")
    out += [f"  {ct:7.2f}s {100 * ct / total:5.1f}%  {nc:7d} calls  {n}"
            for ct, nc, n in sorted(rows_incl, reverse=True)[:top]]
    out.append("")
    out.append("Self time, all functions:")
    out += [f"  {tt:7.2f}s {100 * tt / total:5.1f}%  {nc:7d} calls  {n}"
            for tt, nc, n in sorted(rows_self, reverse=True)[:top]]
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tool", choices=(L.OURS, L.MINIMAL), default=L.OURS)
    p.add_argument("--mode", choices=("pyspy", "cprofile"), default=None)
    p.add_argument("--duration", type=float, default=15.0)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--client-mode", choices=("threads", "processes"), default="processes")
    p.add_argument("--database-url", default=None)
    p.add_argument("--redis-url", default=None)
    p.add_argument("--content-dir", default=None)
    p.add_argument("--tmp-dir", default=None)
    p.add_argument("--py-spy", default=None, help="path of the py-spy binary")
    p.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--cpu-only", action="store_true",
                   help="py-spy: samples of running threads only (no --idle): CPU, not waits")
    p.add_argument("--keep-raw", action="store_true",
                   help="also copy py-spy's raw stacks (MBs) to bench/results/")
    args = p.parse_args()

    spy = find_py_spy(args.py_spy)
    mode = args.mode or ("pyspy" if spy else "cprofile")
    if mode == "pyspy" and not spy:
        p.error("py-spy not found: pip install py-spy (anywhere) and pass --py-spy PATH")
    results_dir = BENCH / "results"
    results_dir.mkdir(parents=True, exist_ok=True)

    setup = L.make_setup(args)
    prof_dir = setup.tmp / "profile"
    prof_dir.mkdir()
    # A profiled worker is slower; its first course page (content loading) must not hit
    # gunicorn's 30 s worker timeout.
    setup.gunicorn_extra = ["--timeout", "300"]
    if mode == "cprofile":
        setup.gunicorn_extra += ["-c", str(BENCH / "gunicorn_cprofile.py")]
        os.environ["BENCH_PROFILE_DIR"] = str(prof_dir)
    platform = L.start_platform(setup)
    server = None
    spies: list[subprocess.Popen[bytes]] = []
    try:
        start = L.start_ours if args.tool == L.OURS else L.start_minimal
        server = start(setup, setup.tmp / args.tool)

        def attach() -> None:
            assert spy is not None
            for i, pid in enumerate(server.worker_pids()):
                spies.append(subprocess.Popen(
                    [spy, "record", "--pid", str(pid), *([] if args.cpu_only else ["--idle"]),
                     "--full-filenames",
                     "--rate", str(args.rate),
                     "--duration", str(int(args.duration)), "--format", "raw",
                     "--output", str(prof_dir / f"spy-{i}.txt")],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                ))

        def start_cprofile() -> None:
            for pid in server.worker_pids():
                os.kill(pid, signal.SIGUSR2)  # our own gunicorn workers: start profiling

        cfg = L.client_config(setup, args.tool, args.users)
        cfg["http_client"] = "lean"
        L.prime(cfg, threads=2 * args.workers)
        results, warm_until, end = L.run_clients(
            cfg, args.clients, args.client_mode, 1, args.warmup, args.duration,
            on_measure_start=attach if mode == "pyspy" else start_cprofile,
        )
        for s in spies:
            _, err = s.communicate(timeout=60)
            if s.returncode:
                print("py-spy:", err.decode(errors="replace")[-500:], file=sys.stderr)
        summary = L.summarise_run(results, warm_until, end, args.duration)
    finally:
        if server is not None:
            server.stop()  # cProfile workers write their stats on exit
        platform.stop()
    print(f"{args.tool}: {summary['launches_per_s']:.1f} launches/s under the profiler, "
          f"{summary['errors']} errors (profiling slows the workers; rates are not comparable)")

    prefix = "lti_tool/" if args.tool == L.OURS else "bench/minimal_tool.py"
    if mode == "pyspy":
        text = analyse_pyspy(sorted(prof_dir.glob("spy-*.txt")), prefix, args.top)
        if args.keep_raw:
            for f in sorted(prof_dir.glob("spy-*.txt")):
                shutil.copy(f, results_dir / f"profile-{args.tool}-{f.name}")
    else:
        time.sleep(0.5)
        files = sorted(prof_dir.glob("worker-*.pstats"))
        if not files:
            print("no profiles were written", file=sys.stderr)
            return 1
        text = analyse_cprofile(files, prefix, args.top,
                                results_dir / f"profile-{args.tool}.pstats")
    (results_dir / f"profile-{args.tool}-{mode}.txt").write_text(text + "\n")
    print(text)
    shutil.rmtree(setup.tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "profile_launch"
    sys.exit(main())
