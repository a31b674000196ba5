"""gunicorn config for `bench/profile_launch.py --mode cprofile`: cProfile in every worker.

Each worker profiles its request thread from the first SIGUSR2 it receives (profile_launch sends
it when the measured window starts, so start-up work such as loading the course content stays
out) until it exits, and writes `$BENCH_PROFILE_DIR/worker-<pid>.pstats`. With
`BENCH_PROFILE_START=now` it profiles from the moment the worker is ready. The clock is the
thread's CPU time, so other load on the machine does not inflate it (waits do not show: use
py-spy for wall-clock time); `BENCH_PROFILE_CLOCK=wall` switches to wall-clock time. Used only
by the bench; the tool's code is unchanged.
"""

from __future__ import annotations

import cProfile
import os
import signal
import tempfile
import time
from typing import Any

_profiles: dict[int, cProfile.Profile] = {}


def post_worker_init(worker: Any) -> None:
    wall = os.environ.get("BENCH_PROFILE_CLOCK") == "wall"
    clock = time.perf_counter if wall else time.thread_time
    prof = cProfile.Profile(clock)
    _profiles[os.getpid()] = prof
    if os.environ.get("BENCH_PROFILE_START") == "now":
        prof.enable()
        return

    def start(_signum: int, _frame: Any) -> None:
        # Runs in the main thread, which is the request thread of a sync worker.
        prof.enable()

    signal.signal(signal.SIGUSR2, start)


def worker_exit(server: Any, worker: Any) -> None:
    prof = _profiles.pop(os.getpid(), None)
    if prof is None:
        return
    prof.disable()
    out = os.environ.get("BENCH_PROFILE_DIR") or tempfile.gettempdir()
    prof.dump_stats(os.path.join(out, f"worker-{os.getpid()}.pstats"))
