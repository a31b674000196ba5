#!/usr/bin/env python
"""bench/launch: complete LTI 1.3 launches per second, our tool against a minimal pylti1p3 tool.

    .venv/bin/python bench/launch.py [--duration 20] [--rounds 3] [--clients 8]

A launch is what a learner's browser does: GET the tool's login initiation, follow its redirect
to the platform's OIDC endpoint, read the auto-submitting form, POST id_token and state back to
the tool with the tool's cookies, and follow the tool's redirects to the page it ends on. It
counts only when that page answers 200. Both tools run under gunicorn with the same settings
(`-w 2`, sync workers, 127.0.0.1), one at a time, alternating ours/minimal, minimal/ours, ...
against the same platform (`bench/platform.py`, its own gunicorn). The result is the median
launches per second of each tool and their ratio; see bench/README.md for the method.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
# `python bench/launch.py` puts bench/ first on sys.path, where bench/platform.py would shadow
# the standard library's `platform` module for every library imported below.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import html  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import secrets  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from queue import Empty  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlencode, urljoin, urlsplit  # noqa: E402

import requests  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from bench.platform import make_message_hint  # noqa: E402

HOST = "127.0.0.1"
OURS, MINIMAL = "ours", "minimal"
# An experiment, not the product: our tool answering its launches with a fixed 50-byte page
# instead of the course page (bench/ours_fixed_page.py, --with-fixed-page).
FIXED = "ours-fixed-page"
DEPLOYMENT_ID = "bench-deployment-1"
OURS_CLIENT_ID = "bench-ours"
MINIMAL_CLIENT_ID = "bench-minimal"
TARGET_RATIO = 1.25
CLK_TCK = os.sysconf("SC_CLK_TCK")

FORM_ACTION = re.compile(r'<form[^>]*\baction="([^"]*)"')
HIDDEN = re.compile(r'<input type="hidden" name="([^"]*)" value="([^"]*)"')


# -- processes we start ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def proc_cpu_split(pid: int) -> tuple[float, float]:
    """(utime, stime) of one process in seconds, from /proc ((0, 0) when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            rest = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    return int(rest[11]) / CLK_TCK, int(rest[12]) / CLK_TCK


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of one process, from /proc (0 when it is gone)."""
    return sum(proc_cpu_split(pid))


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                rest = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(rest[1]) == pid:
            found.append(int(entry))
    return found


def system_busy_seconds() -> float:
    """CPU seconds all CPUs spent busy since boot (everything but idle and iowait)."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / CLK_TCK


class Server:
    """One gunicorn master we started (and so may stop, by its pid)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115  (closed in stop())
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def wait_ready(self, url: str, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start-up:\n{self.log_tail()}")
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """CPU of the master and its live workers."""
        pid = self.proc.pid
        return proc_cpu_seconds(pid) + sum(proc_cpu_seconds(c) for c in children(pid))

    def kernel_cpu_seconds(self) -> float:
        """The part of cpu_seconds() spent in the kernel (system calls, I/O)."""
        pid = self.proc.pid
        return sum(proc_cpu_split(p)[1] for p in (pid, *children(pid)))

    def worker_pids(self) -> list[int]:
        return children(self.proc.pid)

    def log_tail(self, lines: int = 30) -> str:
        self._log.flush()
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()


def _gunicorn_private_flags() -> list[str]:
    """gunicorn ≥ 27 opens a control socket at one fixed path per user by default; the bench's
    three servers (and anyone else's) would take it from each other. It plays no part in
    serving requests, so the bench turns it off where it exists."""
    try:
        from gunicorn.config import KNOWN_SETTINGS
    except ImportError:
        return []
    names = {setting.name for setting in KNOWN_SETTINGS}
    return ["--no-control-socket"] if "control_socket_disable" in names else []


def gunicorn_argv(app: str, port: int, workers: int, extra: list[str] | None = None) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn",
        "-w", str(workers),
        "-b", f"{HOST}:{port}",
        *_gunicorn_private_flags(),
        *(extra or []),
        app,
    ]


def base_env() -> dict[str, str]:
    env = dict(os.environ)
    # Only what the bench sets configures the tools.
    for name in list(env):
        if name.startswith("BENCH_PROFILE_"):
            continue  # bench/gunicorn_cprofile.py's settings
        if name.startswith(("BENCH_", "LTI_")) or name in (
            "DATABASE_URL", "REDIS_URL", "CACHE_REDIS_URL", "PUBLIC_BASE_URL", "SECRET_KEY",
            "TRUSTED_PROXY_HOPS", "AUTO_MIGRATE", "LOG_LEVEL", "FLASK_APP",
        ):
            del env[name]
    env["PYTHONUNBUFFERED"] = "1"
    return env


# -- the environment of one bench run -----------------------------------------------------------


@dataclass
class Setup:
    tmp: Path
    workers: int
    platform_port: int
    ours_port: int
    minimal_port: int
    secret: bytes
    platform_key_file: Path
    minimal_key_file: Path
    database_url: str | None
    redis_url: str | None
    content_dir: str | None = None
    ours_template: Path | None = None  # registered SQLite database each run copies
    ours_registered: bool = False
    gunicorn_extra: list[str] = field(default_factory=list)
    ours_secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def issuer(self) -> str:
        return f"http://{HOST}:{self.platform_port}"

    @property
    def auth_url(self) -> str:
        return self.issuer + "/auth"

    @property
    def jwks_url(self) -> str:
        return self.issuer + "/jwks"

    @property
    def token_url(self) -> str:
        return self.issuer + "/token"

    def ours_base(self) -> str:
        return f"http://{HOST}:{self.ours_port}"

    def minimal_base(self) -> str:
        return f"http://{HOST}:{self.minimal_port}"


def filesystem_of(path: Path) -> str:
    """The file system type holding `path` (ext4, tmpfs, ...), from /proc/mounts."""
    best, fstype = "", "unknown"
    try:
        with open("/proc/mounts") as fh:
            for line in fh:
                parts = line.split()
                mount = parts[1]
                inside = str(path) == mount or str(path).startswith(mount.rstrip("/") + "/")
                if inside and len(mount) > len(best):
                    best, fstype = mount, parts[2]
    except OSError:
        pass
    return fstype


def write_key(path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def make_setup(args: argparse.Namespace) -> Setup:
    tmp = Path(tempfile.mkdtemp(prefix="lti-bench-", dir=getattr(args, "tmp_dir", None)))
    setup = Setup(
        tmp=tmp,
        workers=args.workers,
        platform_port=free_port(),
        ours_port=free_port(),
        minimal_port=free_port(),
        secret=secrets.token_hex(32).encode(),
        platform_key_file=tmp / "platform-key.pem",
        minimal_key_file=tmp / "minimal-tool-key.pem",
        database_url=args.database_url,
        redis_url=args.redis_url,
        content_dir=getattr(args, "content_dir", None),
    )
    write_key(setup.platform_key_file)
    write_key(setup.minimal_key_file)
    return setup


def start_platform(setup: Setup, workers: int = 2, threads: int = 4) -> Server:
    clients = {
        OURS_CLIENT_ID: {
            "redirect_uris": [setup.ours_base() + "/lti/launch"],
            "target_link_uri": setup.ours_base() + "/lti/launch",
            "deployment_id": DEPLOYMENT_ID,
        },
        MINIMAL_CLIENT_ID: {
            "redirect_uris": [setup.minimal_base() + "/launch"],
            "target_link_uri": setup.minimal_base() + "/launch",
            "deployment_id": DEPLOYMENT_ID,
        },
    }
    env = base_env()
    env.update(
        BENCH_PLATFORM_ISSUER=setup.issuer,
        BENCH_PLATFORM_KEY_FILE=str(setup.platform_key_file),
        BENCH_PLATFORM_KID="bench-platform-key-1",
        BENCH_PLATFORM_SECRET=setup.secret.decode(),
        BENCH_PLATFORM_CLIENTS=json.dumps(clients),
    )
    argv = gunicorn_argv(
        "bench.platform:app", setup.platform_port, workers,
        ["-k", "gthread", "--threads", str(threads)],
    )
    server = Server("platform", argv, env, setup.tmp / "platform.log")
    server.wait_ready(setup.jwks_url)
    return server


def ours_app_expression(
    cache_dir: Path, content_dir: str | None = None, fixed_page: bool = False
) -> str:
    # The tool takes the cache directory from its instance folder, which sits next to the package;
    # the factory's config argument moves it to the bench's temp dir without touching the code.
    config = {"CACHE_DIR": str(cache_dir)}
    if content_dir:
        config["COURSE_CONTENT_DIR"] = str(Path(content_dir).resolve())
    factory = "bench.ours_fixed_page" if fixed_page else "lti_tool"
    return f"{factory}:create_app({config!r})"


def ours_env(setup: Setup, run_dir: Path) -> dict[str, str]:
    env = base_env()
    # One key for the registering CLI and every run: the tool seals its signing key with it.
    env["SECRET_KEY"] = setup.ours_secret_key
    env["DATABASE_URL"] = setup.database_url or f"sqlite:///{run_dir / 'lti_tool.sqlite3'}"
    if setup.redis_url:
        env["REDIS_URL"] = setup.redis_url
    return env


def check_content(setup: Setup) -> None:
    """Our course pages need valid course content; refuse to measure error pages."""
    run_dir = setup.tmp / "content-check"
    run_dir.mkdir()
    app = ours_app_expression(run_dir / "cache", setup.content_dir)
    check = subprocess.run(
        [sys.executable, "-m", "flask", "--app", app, "content", "check"],
        cwd=ROOT, env=ours_env(setup, run_dir), capture_output=True, text=True, timeout=300,
    )
    if check.returncode != 0:
        problems = [ln for ln in check.stdout.splitlines() if ln.strip()][-8:]
        raise SystemExit(
            "bench/launch: the course content has problems, so every course page would be an "
            "error:\n  " + "\n  ".join(problems)
            + "\nFix the content or pass --content-dir with a valid copy."
        )
    print("bench/launch: " + check.stdout.strip().splitlines()[-1], flush=True)


def register_ours(setup: Setup) -> None:
    """Register the bench platform in our tool with its CLI, once per bench.

    On SQLite that happens in a template database (the CLI's app start also creates the schema
    and the tool's signing key), which each run then copies, so every run starts from the same
    fresh database without paying for the CLI again; with --database-url it is the given one.
    """
    run_dir = setup.tmp / "ours-template"
    run_dir.mkdir()
    env = ours_env(setup, run_dir)
    app = ours_app_expression(run_dir / "cache", setup.content_dir)
    register = subprocess.run(
        [
            sys.executable, "-m", "flask", "--app", app, "lti", "add-platform",
            "--issuer", setup.issuer,
            "--client-id", OURS_CLIENT_ID,
            "--auth-login-url", setup.auth_url,
            "--token-url", setup.token_url,
            "--key-set-url", setup.jwks_url,
            "--deployment-id", DEPLOYMENT_ID,
            "--name", "Bench platform",
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    if register.returncode != 0:
        raise RuntimeError(f"lti add-platform failed:\n{register.stdout}\n{register.stderr}")
    setup.ours_template = None if setup.database_url else run_dir
    setup.ours_registered = True


def start_ours(
    setup: Setup, run_dir: Path, extra: list[str] | None = None, fixed_page: bool = False
) -> Server:
    run_dir.mkdir(parents=True)
    if not setup.ours_registered:
        register_ours(setup)
    if setup.ours_template is not None:
        for f in setup.ours_template.glob("lti_tool.sqlite3*"):  # with -wal/-shm if any
            shutil.copy2(f, run_dir / f.name)
    env = ours_env(setup, run_dir)
    app = ours_app_expression(run_dir / "cache", setup.content_dir, fixed_page)
    argv = gunicorn_argv(app, setup.ours_port, setup.workers, (extra or []) + setup.gunicorn_extra)
    server = Server(FIXED if fixed_page else OURS, argv, env, run_dir / "gunicorn.log")
    server.wait_ready(setup.ours_base() + "/lti/jwks")
    return server


def start_minimal(setup: Setup, run_dir: Path, extra: list[str] | None = None) -> Server:
    run_dir.mkdir(parents=True)
    env = base_env()
    env.update(
        BENCH_MIN_CACHE_DIR=str(run_dir / "cache"),
        BENCH_MIN_SECRET_KEY=secrets.token_urlsafe(32),
        BENCH_MIN_PRIVATE_KEY_FILE=str(setup.minimal_key_file),
        BENCH_ISSUER=setup.issuer,
        BENCH_MIN_CLIENT_ID=MINIMAL_CLIENT_ID,
        BENCH_AUTH_LOGIN_URL=setup.auth_url,
        BENCH_TOKEN_URL=setup.token_url,
        BENCH_KEY_SET_URL=setup.jwks_url,
        BENCH_DEPLOYMENT_ID=DEPLOYMENT_ID,
    )
    if setup.redis_url:
        env["BENCH_MIN_REDIS_URL"] = setup.redis_url
    argv = gunicorn_argv(
        "bench.minimal_tool:app", setup.minimal_port, setup.workers,
        (extra or []) + setup.gunicorn_extra,
    )
    server = Server(MINIMAL, argv, env, run_dir / "gunicorn.log")
    server.wait_ready(setup.minimal_base() + "/jwks")
    return server


# -- the load: clients looping over complete launches ------------------------------------------


def client_config(setup: Setup, tool: str, users: int) -> dict[str, Any]:
    if tool in (OURS, FIXED):
        base, client_id = setup.ours_base(), OURS_CLIENT_ID
        login, target = base + "/lti/login", base + "/lti/launch"
    else:
        base, client_id = setup.minimal_base(), MINIMAL_CLIENT_ID
        login, target = base + "/login", base + "/launch"
    hints = [
        (f"u{n}", make_message_hint(setup.secret, client_id, DEPLOYMENT_ID, f"u{n}"))
        for n in range(users)
    ]
    return {
        "tool": tool,
        "issuer": setup.issuer,
        "auth_url": setup.auth_url,
        "login_url": login,
        "target_link_uri": target,
        "client_id": client_id,
        "hints": hints,
    }


class LeanResponse:
    """What one_launch reads of a response: status, headers, text, URL."""

    def __init__(self, url: str, status: int, headers: Any, body: bytes) -> None:
        self.url = url
        self.status_code = status
        self.headers = headers  # http.client.HTTPMessage: case-insensitive .get()
        self._body = body

    @property
    def text(self) -> str:
        return self._body.decode("utf-8", "replace")


class LeanSession:
    """A small HTTP/1.1 client with a cookie jar, for the load.

    `requests` spends about 2 ms of CPU per request in the client (its adapters, cookie
    policy, header and URL handling): on a 2-CPU machine the 8 clients then use as much CPU
    as the tools and take it from them, so the rate says more about the client than about the
    tools. This client does what the launches need with http.client and a persistent
    connection per host (the platform keeps connections alive; gunicorn's sync workers close
    theirs, and http.client reconnects). `--http-client requests` runs the load with requests.
    """

    def __init__(self) -> None:
        self.cookies: dict[str, dict[str, str]] = {}  # host:port -> name -> value
        self._conns: dict[str, http.client.HTTPConnection] = {}

    def clear_cookies(self) -> None:
        self.cookies.clear()

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()

    def get(self, url: str, params: dict[str, str] | None = None, allow_redirects: bool = False,
            timeout: float = 60) -> LeanResponse:
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        return self._request("GET", url, None, timeout)

    def post(self, url: str, data: dict[str, str], allow_redirects: bool = False,
             timeout: float = 60) -> LeanResponse:
        return self._request("POST", url, urlencode(data).encode(), timeout)

    def _request(self, method: str, url: str, body: bytes | None, timeout: float) -> LeanResponse:
        parts = urlsplit(url)
        host = parts.netloc
        path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        headers = {"Host": host, "Accept": "*/*", "Accept-Encoding": "identity"}
        jar = self.cookies.get(host)
        if jar:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):
            conn = self._conns.get(host)
            if conn is None:
                conn = self._conns[host] = http.client.HTTPConnection(host, timeout=timeout)
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                break
            except (http.client.HTTPException, OSError) as exc:
                conn.close()
                del self._conns[host]
                # A kept-alive connection the server closed meanwhile: retry a GET once.
                if attempt == 2 or method != "GET":
                    raise requests.ConnectionError(repr(exc)) from exc
        for header in resp.msg.get_all("Set-Cookie") or ():
            pair, _, attrs = header.partition(";")
            name, _, value = pair.strip().partition("=")
            lowered = attrs.lower().replace(" ", "")
            gone = "max-age=0" in lowered or "expires=thu,01jan1970" in lowered
            if gone:
                self.cookies.get(host, {}).pop(name, None)
            else:
                self.cookies.setdefault(host, {})[name] = value
        return LeanResponse(url, resp.status, resp.msg, data)


def new_client(kind: str) -> Any:
    return LeanSession() if kind == "lean" else requests.Session()


class LaunchFailed(Exception):
    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"{step}: {detail}")
        self.step = step
        self.detail = detail


def _detail(r: Any) -> str:
    text = re.sub(r"\s+", " ", r.text[:2000])
    return f"HTTP {r.status_code} {r.url} {text[:300]}"


def one_launch(s: Any, cfg: dict[str, Any], user: int) -> dict[str, float]:
    """login -> platform auth -> launch POST -> redirects; the step durations in seconds."""
    if isinstance(s, LeanSession):  # every launch is a fresh LMS frame
        s.clear_cookies()
    else:
        s.cookies.clear()
    login_hint, message_hint = cfg["hints"][user]
    steps: dict[str, float] = {}
    t = time.perf_counter()
    r = s.get(
        cfg["login_url"],
        params={
            "iss": cfg["issuer"],
            "login_hint": login_hint,
            "target_link_uri": cfg["target_link_uri"],
            "lti_message_hint": message_hint,
            "client_id": cfg["client_id"],
            "lti_deployment_id": DEPLOYMENT_ID,
        },
        allow_redirects=False,
        timeout=60,
    )
    if r.status_code not in (302, 303) or not r.headers.get("Location", "").startswith(
        cfg["auth_url"] + "?"
    ):
        raise LaunchFailed("login", _detail(r))
    now = time.perf_counter()
    steps["login"], t = now - t, now

    r = s.get(r.headers["Location"], allow_redirects=False, timeout=60)
    if r.status_code != 200:
        raise LaunchFailed("auth", _detail(r))
    action = FORM_ACTION.search(r.text)
    fields = {html.unescape(k): html.unescape(v) for k, v in HIDDEN.findall(r.text)}
    if action is None or "id_token" not in fields:
        raise LaunchFailed("auth", "no id_token form: " + _detail(r))
    now = time.perf_counter()
    steps["auth"], t = now - t, now

    r = s.post(html.unescape(action.group(1)), data=fields, allow_redirects=False, timeout=60)
    now = time.perf_counter()
    steps["launch"], t = now - t, now
    hops = 0
    while r.status_code in (301, 302, 303, 307, 308) and hops < 3:
        r = s.get(urljoin(r.url, r.headers["Location"]), allow_redirects=False, timeout=60)
        hops += 1
    if hops:
        now = time.perf_counter()
        steps["page"] = now - t
    if r.status_code != 200:
        raise LaunchFailed("launch", _detail(r))
    return steps


def prime(cfg: dict[str, Any], threads: int, fast: float = 1.5, need: int = 5,
          cap: float = 120.0) -> float:
    """Warm every worker before the load: per-process start-up work (our tool loads the course
    content on the first course page a worker serves, seconds of CPU) must not land in the
    measured window.

    Twice as many concurrent clients as workers: while a worker is busy with slow start-up
    work the others' requests reach the other workers, so every worker soon serves pages. Done
    when each client has seen `need` consecutive launches faster than `fast` seconds (a launch
    that hits a worker still starting up is slow and restarts the count). Returns its seconds.
    """
    t0 = time.monotonic()
    errors: list[str] = []

    def run(n: int) -> None:
        s = new_client(cfg.get("http_client", "lean"))
        streak = 0
        while streak < need and time.monotonic() - t0 < cap:
            t = time.monotonic()
            try:
                one_launch(s, cfg, n)
            except (LaunchFailed, requests.RequestException) as exc:
                errors.append(str(exc)[:300])
                if len(errors) > 20:
                    return
                streak = 0
                continue
            streak = streak + 1 if time.monotonic() - t < fast else 0

    ths = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(threads)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    if errors:
        raise RuntimeError(f"{cfg['tool']}: launches fail while warming up: {errors[0]}")
    took = time.monotonic() - t0
    if took >= cap:
        print(f"    note: {cfg['tool']} still had slow launches after {cap:.0f} s of warming up",
              flush=True)
    return took


def client_loop(
    cfg: dict[str, Any], client_no: int, seed: int, start: float, warm_until: float, end: float
) -> dict[str, Any]:
    """One client: launch after launch until `end` (time.monotonic, system-wide on Linux)."""
    rng = random.Random(seed * 1000 + client_no)
    s = new_client(cfg.get("http_client", "lean"))
    ok: list[tuple[float, int, float, dict[str, float]]] = []  # (finished, user, total, steps)
    errors: list[dict[str, Any]] = []
    while time.monotonic() < start:
        time.sleep(0.001)
    cpu0 = time.process_time()
    while True:
        t0 = time.monotonic()
        if t0 >= end:
            break
        user = rng.randrange(len(cfg["hints"]))
        try:
            steps = one_launch(s, cfg, user)
        except LaunchFailed as exc:
            errors.append({"at": time.monotonic(), "step": exc.step, "detail": exc.detail})
            continue
        except requests.RequestException as exc:
            errors.append({"at": time.monotonic(), "step": "http", "detail": repr(exc)[:300]})
            continue
        t1 = time.monotonic()
        ok.append((t1, user, t1 - t0, steps))
    s.close()
    return {
        "client": client_no,
        "ok": ok,
        "errors": errors,
        "cpu": time.process_time() - cpu0,
    }


def _process_client(cfg: dict[str, Any], n: int, seed: int, start: float, warm: float,
                    end: float, queue: Any) -> None:
    try:
        t0 = os.times()
        result = client_loop(cfg, n, seed, start, warm, end)
        t1 = os.times()
        result["cpu"] = (t1.user - t0.user) + (t1.system - t0.system)
    except BaseException as exc:
        result = {"client": n, "ok": [], "errors": [{"at": 0, "step": "client",
                                                     "detail": repr(exc)}], "cpu": 0.0}
    queue.put(result)


def run_clients(
    cfg: dict[str, Any], clients: int, mode: str, seed: int, warmup: float, duration: float,
    on_measure_start: Any = None,
) -> tuple[list[dict[str, Any]], float, float]:
    """Run the clients; returns (results, measure window start, measure window end)."""
    lead = 0.5 if mode == "threads" else 2.0  # spawned processes need a moment to import
    start = time.monotonic() + lead
    warm_until = start + warmup
    end = warm_until + duration
    results: list[dict[str, Any]] = []
    if mode == "threads":
        cpu0 = time.process_time()
        out: list[dict[str, Any]] = [{} for _ in range(clients)]

        def target(n: int) -> None:
            out[n] = client_loop(cfg, n, seed, start, warm_until, end)

        threads = [threading.Thread(target=target, args=(n,), daemon=True) for n in range(clients)]
        for th in threads:
            th.start()
        _call_at(warm_until, on_measure_start)
        for th in threads:
            th.join()
        cpu = time.process_time() - cpu0  # the whole client process, all threads
        for r in out:
            r["cpu"] = cpu / clients
        results = out
    else:
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        procs = [
            ctx.Process(target=_process_client,
                        args=(cfg, n, seed, start, warm_until, end, queue), daemon=True)
            for n in range(clients)
        ]
        for p in procs:
            p.start()
        _call_at(warm_until, on_measure_start)
        give_up = end + 120
        while len(results) < len(procs):
            try:
                results.append(queue.get(timeout=1.0))
            except Empty:
                dead = [p for p in procs if p.exitcode not in (None, 0)]
                if dead or time.monotonic() > give_up:
                    raise RuntimeError(
                        f"{len(dead)} client process(es) failed; see their traceback above"
                    ) from None
        for p in procs:
            p.join(timeout=10)
    return results, warm_until, end


def _call_at(when: float, fn: Any) -> None:
    if fn is None:
        return
    delay = when - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    fn()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return values[k]


def summarise_run(
    results: list[dict[str, Any]], warm_until: float, end: float, duration: float
) -> dict[str, Any]:
    """Launches that *finished* inside the measuring window, so that it is a steady-state rate."""
    launches = sorted((o for r in results for o in r["ok"]), key=lambda o: o[0])
    seen: set[int] = set()
    measured, first_time = [], 0
    for finished, user, total, steps in launches:
        new = user not in seen
        seen.add(user)
        if warm_until <= finished <= end:
            measured.append((total, steps))
            first_time += new
    errors = [e for r in results for e in r["errors"]]
    measure_errors = [e for e in errors if warm_until <= e["at"] <= end]
    step_names = sorted({k for _, st in measured for k in st})
    return {
        "launches": len(measured),
        "launches_per_s": len(measured) / duration,
        "first_time_user_launches": first_time,
        "errors": len(errors),
        "errors_in_window": len(measure_errors),
        "error_samples": errors[:5],
        "latency_ms": {
            "p50": 1000 * percentile([t for t, _ in measured], 0.5),
            "p95": 1000 * percentile([t for t, _ in measured], 0.95),
        },
        "step_p50_ms": {
            name: 1000 * percentile([st[name] for _, st in measured if name in st], 0.5)
            for name in step_names
        },
        "client_cpu_s": sum(r.get("cpu", 0.0) for r in results),
    }


# -- one round of one tool ----------------------------------------------------------------------


def run_tool(
    setup: Setup, platform: Server, tool: str, round_no: int, args: argparse.Namespace
) -> dict[str, Any]:
    run_dir = setup.tmp / f"{tool}-round{round_no}"
    t_start = time.monotonic()
    if tool == MINIMAL:
        server = start_minimal(setup, run_dir)
    else:
        server = start_ours(setup, run_dir, fixed_page=tool == FIXED)
    boot_s = time.monotonic() - t_start
    cpu_marks: dict[str, float] = {}

    def mark() -> None:
        cpu_marks["system"] = system_busy_seconds()
        cpu_marks["loadavg"] = os.getloadavg()[0]
        cpu_marks["tool"] = server.cpu_seconds()
        cpu_marks["tool_kernel"] = server.kernel_cpu_seconds()
        cpu_marks["platform"] = platform.cpu_seconds()
        cpu_marks["wall"] = time.monotonic()

    try:
        cfg = client_config(setup, tool, args.users)
        cfg["http_client"] = args.http_client
        prime_s = prime(cfg, threads=2 * args.workers)
        results, warm_until, end = run_clients(
            cfg, args.clients, args.client_mode, round_no, args.warmup, args.duration,
            on_measure_start=mark,
        )
        # CPU is sampled at the window's start and (here) just after the clients stop.
        wall = time.monotonic() - cpu_marks["wall"]
        tool_cpu = server.cpu_seconds() - cpu_marks["tool"]
        tool_kernel_cpu = server.kernel_cpu_seconds() - cpu_marks["tool_kernel"]
        platform_cpu = platform.cpu_seconds() - cpu_marks["platform"]
        system_cpu = system_busy_seconds() - cpu_marks["system"]
        worker_count = len(server.worker_pids())
    finally:
        server.stop()
    summary = summarise_run(results, warm_until, end, args.duration)
    total_s = args.warmup + args.duration
    n = max(summary["launches"], 1)
    summary.update(
        tool=tool,
        round=round_no + 1,
        boot_s=round(boot_s, 2),
        prime_s=round(prime_s, 2),
        live_workers_at_end=worker_count,
        cpu_ms_per_launch={
            # Server CPU over the window (plus the short tail until the clients stopped);
            # the client's own CPU covers warm-up and window, so it is scaled to the window.
            "tool": 1000 * tool_cpu / n,
            "tool_kernel": 1000 * tool_kernel_cpu / n,  # of which in the kernel
            "platform": 1000 * platform_cpu / n,
            "clients": 1000 * summary["client_cpu_s"] * (args.duration / total_s) / n,
        },
        cpu_utilisation={
            "tool": tool_cpu / wall,
            "platform": platform_cpu / wall,
            "clients": summary["client_cpu_s"] / total_s,
            # Whatever else ran on the machine meanwhile (other jobs skew the comparison).
            "other": max(0.0, (system_cpu - tool_cpu - platform_cpu) / wall
                         - summary["client_cpu_s"] / total_s),
            "system": system_cpu / wall,
            "cpus": os.cpu_count(),
        },
        loadavg_at_start=round(cpu_marks["loadavg"], 2),
        log=str(server.log_path),
    )
    return summary


# -- report --------------------------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    rounds = report["config"]["rounds"]
    head = "| Tool | " + " | ".join(f"Round {i + 1}" for i in range(rounds)) + " | Median |"
    sep = "|---" * (rounds + 2) + "|"
    rows = []
    fixed = bool(report["rates"].get(FIXED))
    labels = [(OURS, "Our tool"), (MINIMAL, "Minimal pylti1p3 tool")]
    if fixed:
        labels.append((FIXED, "Our tool, fixed page (experiment)"))
    for tool, label in labels:
        rates = report["rates"][tool]
        rows.append(
            f"| {label} (launches/s) | "
            + " | ".join(f"{r:.1f}" for r in rates)
            + f" | **{report['median'][tool]:.1f}** |"
        )
    cpu = report["tool_cpu_ms_per_launch_median"]
    for tool, label in [(t, lb.replace("pylti1p3 ", "")) for t, lb in labels]:
        per_round = [x["cpu_ms_per_launch"]["tool"] for x in report["runs"] if x["tool"] == tool]
        rows.append(
            f"| {label} (server CPU ms/launch) | "
            + " | ".join(f"{v:.1f}" for v in per_round)
            + f" | {cpu[tool]:.1f} |"
        )
    ratios = report["round_ratios"]
    rows.append(
        "| Ratio ours / minimal | "
        + " | ".join(f"{r:.2f}×" for r in ratios)
        + f" | **{report['ratio']:.2f}×** |"
    )
    if fixed:
        rows.append(
            "| Ratio fixed page / minimal | "
            + " | ".join(f"{r:.2f}×" for r in report["fixed_page_round_ratios"])
            + f" | {report['fixed_page_ratio']:.2f}× |"
        )
    c = report["config"]
    errors = report["errors"]
    note = (
        f"{c['clients']} clients ({c['client_mode']}, {c.get('http_client', 'requests')} HTTP "
        f"client), {c['duration']:g} s per run after "
        f"{c['warmup']:g} s warm-up, gunicorn -w {c['workers']} (sync) on 127.0.0.1, "
        f"{c['backend']} (temp dir on {c['tmp_filesystem']}), {c['cpus']} CPUs; "
        f"errors: ours {errors[OURS]}, minimal "
        f"{errors[MINIMAL]}; target ≥ {TARGET_RATIO}×."
    )
    if fixed:
        note += (
            f" Experiment (errors {errors[FIXED]}): our tool answering its launches with a fixed "
            "50-byte page instead of the course page (bench/ours_fixed_page.py); not the product."
        )
    if report["max_other_cpu_utilisation"] > 0.25:
        note += (
            f" Other processes used up to {report['max_other_cpu_utilisation']:.1f} CPUs "
            "during a run; the rates are noisy."
        )
    return "\n".join([head, sep, *rows, "", note])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds per run")
    p.add_argument("--rounds", type=int, default=3, help="rounds; each runs both tools")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients")
    p.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each run")
    p.add_argument("--users", type=int, default=200, help="size of the user pool")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers of each tool")
    p.add_argument("--client-mode", choices=("threads", "processes"), default="processes",
                   help="one process per client (default) or threads in one process")
    p.add_argument("--http-client", choices=("lean", "requests"), default="lean",
                   help="the clients' HTTP library (see LeanSession)")
    p.add_argument("--database-url", default=None, help="our tool's DB (default: temp SQLite)")
    p.add_argument("--redis-url", default=None, help="Redis for both tools' caches")
    p.add_argument("--content-dir", default=None,
                   help="course content for our tool (default: the tool's own course_content)")
    p.add_argument("--tmp-dir", default=None,
                   help="parent of the temp dir (DBs, file caches, logs); default: $TMPDIR or /tmp")
    p.add_argument("--only", choices=(OURS, MINIMAL), default=None, help="run one tool only")
    p.add_argument("--with-fixed-page", action="store_true",
                   help="also run, in every round, our tool answering its launches with a fixed "
                   "50-byte page instead of the course page (an experiment: bench/README.md)")
    p.add_argument("--out", default=None,
                   help="JSON report (default bench/results/launch.json, or "
                   "launch-with-fixed-page.json with --with-fixed-page)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (logs, DBs)")
    args = p.parse_args(argv)
    if args.out is None:
        name = "launch-with-fixed-page.json" if args.with_fixed_page else "launch.json"
        args.out = str(BENCH / "results" / name)

    started = time.monotonic()
    setup = make_setup(args)
    print(f"bench/launch: temp dir {setup.tmp}", flush=True)
    platform = start_platform(setup)
    runs: list[dict[str, Any]] = []
    try:
        if args.only != MINIMAL:
            check_content(setup)
            register_ours(setup)
        for r in range(args.rounds):
            order = [OURS, FIXED, MINIMAL] if args.with_fixed_page else [OURS, MINIMAL]
            for tool in order if r % 2 == 0 else order[::-1]:
                if args.only and tool != args.only:
                    continue
                run = run_tool(setup, platform, tool, r, args)
                runs.append(run)
                cpu = run["cpu_ms_per_launch"]
                print(
                    f"round {r + 1} {tool:15s} {run['launches_per_s']:7.1f} launches/s  "
                    f"({run['launches']} launches, {run['errors']} errors, "
                    f"p50 {run['latency_ms']['p50']:.0f} ms, "
                    f"p95 {run['latency_ms']['p95']:.0f} ms; "
                    f"CPU ms/launch tool {cpu['tool']:.1f} (kernel {cpu['tool_kernel']:.1f}) "
                    f"platform {cpu['platform']:.1f} "
                    f"clients {cpu['clients']:.1f})",
                    flush=True,
                )
                other = run["cpu_utilisation"]["other"]
                if other > 0.25:
                    print(f"    note: other processes used {other:.2f} CPUs during this run",
                          flush=True)
                for e in run["error_samples"][:2]:
                    print(f"    error at {e['step']}: {e['detail'][:200]}", flush=True)
    finally:
        platform.stop()

    tools = (OURS, MINIMAL, FIXED) if args.with_fixed_page else (OURS, MINIMAL)
    rates = {t: [x["launches_per_s"] for x in runs if x["tool"] == t] for t in tools}
    median = {t: statistics.median(v) if v else float("nan") for t, v in rates.items()}
    have_both = bool(rates[OURS] and rates[MINIMAL])
    ratio = median[OURS] / median[MINIMAL] if have_both and median[MINIMAL] else float("nan")
    round_ratios = (
        [o / m if m else float("nan") for o, m in zip(rates[OURS], rates[MINIMAL], strict=False)]
        if have_both else []
    )
    errors = {t: sum(x["errors"] for x in runs if x["tool"] == t) for t in tools}
    tool_cpu_ms = {
        t: statistics.median([x["cpu_ms_per_launch"]["tool"] for x in runs if x["tool"] == t])
        if rates[t] else float("nan")
        for t in tools
    }
    experiment: dict[str, Any] = {}
    if args.with_fixed_page and rates[FIXED] and rates[MINIMAL]:
        experiment = {
            "fixed_page_ratio": median[FIXED] / median[MINIMAL],
            "fixed_page_round_ratios": [
                f / m for f, m in zip(rates[FIXED], rates[MINIMAL], strict=False)
            ],
        }
    other_cpu = max((x["cpu_utilisation"]["other"] for x in runs), default=0.0)
    report = {
        "benchmark": "bench/launch",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {
            "duration": args.duration,
            "warmup": args.warmup,
            "rounds": args.rounds,
            "clients": args.clients,
            "client_mode": args.client_mode,
            "http_client": args.http_client,
            "users": args.users,
            "workers": args.workers,
            "backend": ("PostgreSQL" if args.database_url else "SQLite")
            + (" + Redis" if args.redis_url else " + file cache"),
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "tmp_dir": str(setup.tmp.parent),
            "tmp_filesystem": filesystem_of(setup.tmp),
            "content_dir": str(Path(args.content_dir).resolve()) if args.content_dir else None,
        },
        "rates": rates,
        "median": median,
        "ratio": ratio,
        "round_ratios": round_ratios,
        "target_ratio": TARGET_RATIO,
        "meets_target": bool(have_both and ratio >= TARGET_RATIO),
        **experiment,
        "errors": errors,
        "tool_cpu_ms_per_launch_median": tool_cpu_ms,
        "max_other_cpu_utilisation": other_cpu,
        "runs": runs,
        "total_runtime_s": round(time.monotonic() - started, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(report) if have_both else ""
    if table:
        out.with_suffix(".md").write_text(table + "\n")
    print()
    print(table or json.dumps({"rates": rates, "median": median}))
    print(f"\nwrote {out} (total {report['total_runtime_s']} s)")
    if not args.keep_tmp:
        shutil.rmtree(setup.tmp, ignore_errors=True)
    return 0 if sum(errors.values()) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
