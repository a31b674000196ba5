#!/usr/bin/env python
"""bench/launch_cpu: the tools' own CPU time per launch, without servers or network.

    .venv/bin/python bench/launch_cpu.py [--launches 600] [--rounds 3] [--users 200]

A companion to bench/launch.py for working on the hot path. The same launch (login -> the
platform's OIDC auth -> launch POST -> the tool's redirects to the page) runs in one process:
each tool's WSGI app and the bench platform are called through werkzeug's test client, and only
the time spent inside the tool's app (thread CPU time, from the call until its response is
consumed and closed) is counted. So gunicorn, sockets, the platform's signing and the client
are left out. The tools take turns launch by launch, so that other load on the shared machine
slows both alike; the result is the median over rounds of each tool's CPU milliseconds per
launch, and their ratio. It measures the tools' code, not a server: bench/launch.py remains
the throughput figure.

The platform's JWKS is served over HTTP on 127.0.0.1 (both tools fetch it once); our tool runs
on a fresh SQLite database and file cache in a temp directory, the minimal tool on its
FileSystemCache there too.
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
import html  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import secrets  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterable  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlencode, urlsplit  # noqa: E402

from cryptography.hazmat.primitives import serialization  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402
from werkzeug.test import Client  # noqa: E402

from bench.launch import (  # noqa: E402
    DEPLOYMENT_ID,
    FORM_ACTION,
    HIDDEN,
    MINIMAL,
    MINIMAL_CLIENT_ID,
    OURS,
    OURS_CLIENT_ID,
    free_port,
    write_key,
)
from bench.platform import Platform, make_message_hint  # noqa: E402

HOST = "127.0.0.1"
TOOL_HOST = "http://tool.bench.invalid"  # the tools are called in-process; no socket


class Timed:
    """A WSGI app that counts the thread CPU time spent inside another one."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.cpu = 0.0
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        t = time.thread_time()
        it = self.app(environ, start_response)
        try:
            body = b"".join(it)
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()
            self.cpu += time.thread_time() - t
            self.calls += 1
        return [body]


def build_ours(tmp: Path, platform: Platform, content_dir: str | None) -> Timed:
    run_dir = tmp / "ours"
    run_dir.mkdir()
    os.environ["SECRET_KEY"] = secrets.token_urlsafe(32)
    os.environ["DATABASE_URL"] = f"sqlite:///{run_dir / 'lti_tool.sqlite3'}"
    for name in ("REDIS_URL", "PUBLIC_BASE_URL", "TRUSTED_PROXY_HOPS"):
        os.environ.pop(name, None)
    from lti_tool import create_app

    config: dict[str, Any] = {"CACHE_DIR": str(run_dir / "cache")}
    if content_dir:
        config["COURSE_CONTENT_DIR"] = str(Path(content_dir).resolve())
    app = create_app(config)
    result = app.test_cli_runner().invoke(args=[
        "lti", "add-platform", "--issuer", platform.issuer, "--client-id", OURS_CLIENT_ID,
        "--auth-login-url", platform.issuer + "/auth", "--token-url", platform.issuer + "/token",
        "--key-set-url", platform.issuer + "/jwks", "--deployment-id", DEPLOYMENT_ID,
        "--name", "Bench platform",
    ])
    if result.exit_code != 0:
        raise SystemExit(f"lti add-platform failed: {result.output}")
    return Timed(app)


def build_minimal(tmp: Path, platform: Platform, key_file: Path) -> Timed:
    os.environ.update(
        BENCH_MIN_CACHE_DIR=str(tmp / "minimal-cache"),
        BENCH_MIN_SECRET_KEY=secrets.token_urlsafe(32),
        BENCH_MIN_PRIVATE_KEY_FILE=str(key_file),
        BENCH_ISSUER=platform.issuer,
        BENCH_MIN_CLIENT_ID=MINIMAL_CLIENT_ID,
        BENCH_AUTH_LOGIN_URL=platform.issuer + "/auth",
        BENCH_TOKEN_URL=platform.issuer + "/token",
        BENCH_KEY_SET_URL=platform.issuer + "/jwks",
        BENCH_DEPLOYMENT_ID=DEPLOYMENT_ID,
    )
    os.environ.pop("BENCH_MIN_REDIS_URL", None)
    from bench import minimal_tool

    return Timed(minimal_tool.app)


def one_launch(tool: Client, lms: Client, cfg: dict[str, Any], user: int) -> None:
    login_hint, message_hint = cfg["hints"][user]
    tool._cookies.clear()  # a fresh LMS frame each launch
    r = tool.get(cfg["login_path"] + "?" + urlencode({
        "iss": cfg["issuer"], "login_hint": login_hint, "target_link_uri": cfg["target"],
        "lti_message_hint": message_hint, "client_id": cfg["client_id"],
        "lti_deployment_id": DEPLOYMENT_ID,
    }), base_url=TOOL_HOST)
    location = r.headers.get("Location", "")
    if r.status_code not in (302, 303) or not location.startswith(cfg["issuer"] + "/auth?"):
        raise SystemExit(f"{cfg['tool']} login: HTTP {r.status_code} {r.get_data(True)[:300]}")
    auth = urlsplit(location)
    r = lms.get(auth.path, query_string=auth.query)
    page = r.get_data(as_text=True)
    action = FORM_ACTION.search(page)
    fields = {html.unescape(k): html.unescape(v) for k, v in HIDDEN.findall(page)}
    if action is None or "id_token" not in fields:
        raise SystemExit(f"{cfg['tool']} auth: HTTP {r.status_code} {page[:300]}")
    r = tool.post(urlsplit(html.unescape(action.group(1))).path, data=fields, base_url=TOOL_HOST)
    hops = 0
    while r.status_code in (302, 303) and hops < 3:
        r = tool.get(r.headers["Location"], base_url=TOOL_HOST)
        hops += 1
    if r.status_code != 200:
        raise SystemExit(f"{cfg['tool']} launch: HTTP {r.status_code} {r.get_data(True)[:300]}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--launches", type=int, default=150, help="measured launches per tool and round")
    p.add_argument("--warmup", type=int, default=100, help="unmeasured launches before round 1")
    p.add_argument("--rounds", type=int, default=10,
                   help="short alternating rounds: the machine's drift hits both tools alike")
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--only", choices=(OURS, MINIMAL), default=None)
    p.add_argument("--content-dir", default=None)
    p.add_argument("--profile", default=None, help="write cProfile stats of our tool's calls here")
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="lti-bench-cpu-"))
    try:
        port = free_port()
        issuer = f"http://{HOST}:{port}"
        secret = secrets.token_hex(32).encode()
        write_key(tmp / "platform.pem")
        write_key(tmp / "minimal.pem")
        key = serialization.load_pem_private_key((tmp / "platform.pem").read_bytes(), None)
        clients = {
            cid: {"redirect_uris": [TOOL_HOST + path], "target_link_uri": TOOL_HOST + path,
                  "deployment_id": DEPLOYMENT_ID}
            for cid, path in ((OURS_CLIENT_ID, "/lti/launch"), (MINIMAL_CLIENT_ID, "/launch"))
        }
        platform = Platform(issuer, key, "bench-platform-key-1", secret, clients)  # type: ignore[arg-type]
        server = make_server(HOST, port, platform, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()

        tools: dict[str, Timed] = {}
        cfgs: dict[str, dict[str, Any]] = {}
        for name in (OURS, MINIMAL):
            if args.only and name != args.only:
                continue
            if name == OURS:
                tools[name] = build_ours(tmp, platform, args.content_dir)
                client_id, login, target = OURS_CLIENT_ID, "/lti/login", "/lti/launch"
            else:
                tools[name] = build_minimal(tmp, platform, tmp / "minimal.pem")
                client_id, login, target = MINIMAL_CLIENT_ID, "/login", "/launch"
            cfgs[name] = {
                "tool": name, "issuer": issuer, "client_id": client_id, "login_path": login,
                "target": TOOL_HOST + target,
                "hints": [(f"u{n}", make_message_hint(secret, client_id, DEPLOYMENT_ID, f"u{n}"))
                          for n in range(args.users)],
            }
        lms = Client(platform)
        clients_ = {name: Client(app, use_cookies=True) for name, app in tools.items()}
        rng = random.Random(7)
        for name in tools:
            for _ in range(args.warmup):
                one_launch(clients_[name], lms, cfgs[name], rng.randrange(args.users))

        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
        per_launch: dict[str, list[float]] = {name: [] for name in tools}
        order = list(tools)
        # Launch by launch, the tools take turns (ours, minimal, minimal, ours, ...): a noisy
        # neighbour on a shared machine then slows both alike, and the ratio stays put.
        for rnd in range(args.rounds):
            before = {name: timed.cpu for name, timed in tools.items()}
            for i in range(args.launches):
                turn = order if (i + rnd) % 2 == 0 else order[::-1]
                for name in turn:
                    if profiler and name == OURS:
                        profiler.enable()
                    one_launch(clients_[name], lms, cfgs[name], rng.randrange(args.users))
                    if profiler and name == OURS:
                        profiler.disable()
            for name, timed in tools.items():
                ms = (timed.cpu - before[name]) * 1000 / args.launches
                per_launch[name].append(ms)
            print(f"round {rnd + 1}: " + ", ".join(
                f"{name} {per_launch[name][-1]:.2f}" for name in tools) + " ms CPU per launch",
                flush=True)
        medians = {name: statistics.median(v) for name, v in per_launch.items()}
        for name, ms in medians.items():
            print(f"{name:8s} median {ms:6.2f} ms CPU per launch "
                  f"({tools[name].calls / (args.warmup + args.rounds * args.launches):.1f} "
                  "requests per launch)")
        if len(medians) == 2:
            ratios = [m / o for m, o in zip(per_launch[MINIMAL], per_launch[OURS], strict=True)]
            print(f"minimal/ours CPU ratio {medians[MINIMAL] / medians[OURS]:.2f}× of the medians, "
                  f"{statistics.median(ratios):.2f}× median of the rounds' ratios "
                  "(above 1: ours spends less CPU per launch)")
        if profiler and args.profile:
            profiler.dump_stats(args.profile)
        print(json.dumps({"ms_per_launch": per_launch, "median": medians}))
        server.shutdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
