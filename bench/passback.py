"""bench/passback: 1,000 learners' CEC scores to a loopback AGS endpoint.

The tool (its real passback package, on SQLite or PostgreSQL) sends one score per learner to
the strict test LMS (`tests.lms.TestPlatform`, a threaded server on 127.0.0.1), which checks
every client assertion, token and score as in the test suite. Two ways of sending are timed:

- `sender`: what happens in production when learners earn CECs: each award is committed in
  its own transaction and the after-commit sender threads deliver it;
- `worker`: the outbox is full (the LMS was down) and `flask passback run` empties it.

Reported per mode: scores per second (first commit to last delivery), token requests (target
1), HTTP requests the LMS received per score (target 1: the token request is shared by all),
and checks that every learner's gradebook entry is right with no repeated timestamp.

    .venv/bin/python bench/passback.py                       # 1000 learners, both modes
    .venv/bin/python bench/passback.py --learners 1000 --mode sender --lineitem created
    .venv/bin/python bench/passback.py --database-url postgresql://postgres@127.0.0.1:5432/bench

`--lineitem claim` (default): the launch named the line item; `created`: the tool must find
or create the column first (two more requests per run, not per score).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, bench/ would come first on the path and bench/platform.py would shadow the
# standard library's `platform`.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select, text  # noqa: E402

from lti_tool import config, create_app, db  # noqa: E402
from lti_tool.identity.models import Instructor, LmsContext, ResourceLink  # noqa: E402
from lti_tool.lti import keys  # noqa: E402
from lti_tool.lti.models import Deployment, Registration  # noqa: E402
from lti_tool.passback import OutboxScore, enqueue_score  # noqa: E402
from lti_tool.passback.sender import wait_idle  # noqa: E402
from lti_tool.passback.worker import Worker  # noqa: E402
from tests.lms import TestPlatform  # noqa: E402
from tests.lms import claims as C  # noqa: E402


class RemoteLMS:
    """The strict test LMS in a process of its own, so that it does not share this one's GIL
    (on a small machine the measurement would otherwise be half the LMS's own work)."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child,), daemon=True)
        self._proc.start()

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self._conn.send((name, args, kwargs))
        status, value = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"LMS {name}: {value}")
        return value

    def get(self, name: str) -> Any:
        return self.call(name)

    def close(self) -> None:
        self._conn.send(None)
        self._proc.join(10)


def _serve(conn: Any) -> None:
    with TestPlatform() as lms:
        while True:
            msg = conn.recv()
            if msg is None:
                return
            name, args, kwargs = msg
            try:
                value = getattr(lms, name)
                if callable(value):
                    value = value(*args, **kwargs)
                conn.send(("ok", value))
            except Exception as exc:
                conn.send(("error", repr(exc)))


CLIENT_ID = "bench-tool"
CONTEXT = "bench-course"
LINK = "bench-link"
MAX = 14


def make_app(database_url: str, tmp: Path, mode: str, threads: int) -> Any:
    return create_app(
        {
            "TESTING": True,
            "SECRET_KEY": secrets.token_hex(16),
            "DATABASE_URL": database_url,
            "CACHE_TYPE": "FileSystemCache",
            "CACHE_DIR": str(tmp / "cache"),
            "LTI_HTTP_TIMEOUT": 10.0,
            "PASSBACK_DELIVERY": "thread" if mode == "sender" else "off",
            "PASSBACK_SENDER_THREADS": threads,
            "PASSBACK_WORKER_THREADS": threads,
        }
    )


def setup(app: Any, lms: RemoteLMS, learners: int, lineitem: str) -> list[int]:
    """Registration, course, link (with the AGS claim a launch would have stored), learners."""
    with app.app_context(), db.standalone_session() as s:
        jwks = keys.jwks(s)
        lms.call(
            "register_tool",
            CLIENT_ID,
            login_url="http://127.0.0.1:9/login",
            redirect_uris=["http://127.0.0.1:9/launch"],
            jwks=jwks,
            scopes=list(C.ALL_SCOPES),
        )
        lms.call("add_context", CONTEXT)
        lms.call("add_resource_link", LINK, CONTEXT, CLIENT_ID)
        ags: dict[str, Any] = {
            "scope": [C.SCOPE_LINEITEM, C.SCOPE_RESULT_READONLY, C.SCOPE_SCORE],
            "lineitems": lms.call("lineitems_url", CONTEXT, CLIENT_ID),
        }
        if lineitem == "claim":
            ags["lineitem"] = lms.call("add_lineitem", CONTEXT, CLIENT_ID, "CECs", MAX, LINK).url
        reg = Registration(
            name="bench",
            issuer=lms.get("issuer"),
            client_id=CLIENT_ID,
            auth_login_url=lms.get("auth_url"),
            auth_token_url=lms.get("token_url"),
            key_set_url=lms.get("jwks_url"),
        )
        s.add(reg)
        s.flush()
        dep = Deployment(registration_id=reg.id, deployment_id="dep-1", is_active=True)
        s.add(dep)
        s.flush()
        ctx = LmsContext(deployment_id=dep.id, context_id=CONTEXT)
        s.add(ctx)
        s.flush()
        link = ResourceLink(
            deployment_id=dep.id, context_pk=ctx.id, resource_link_id=LINK, ags_endpoint=ags
        )
        s.add(link)
        ids = []
        issuer = lms.get("issuer")
        for n in range(learners):
            user = f"learner-{n}"
            lms.call("add_user", user)
            lms.call("enrol", CONTEXT, user, roles=[C.ROLE_LEARNER])
            inst = Instructor(issuer=issuer, sub=user, lms_locale="en-US")
            s.add(inst)
            ids.append(inst)
        s.commit()
        return [link.id, *(i.id for i in ids)]


def cecs_for(n: int) -> int:
    return MAX if n % 3 else 7 + n % 7


def award_all(app: Any, link_pk: int, learners: list[int], threads: int) -> None:
    """One transaction per award, as each is one learner's request; `threads` web workers."""
    from concurrent.futures import ThreadPoolExecutor

    def one(n: int) -> None:
        with app.app_context():
            award(link_pk, n, learners[n])

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, range(len(learners))))


def award(link_pk: int, n: int, iid: int) -> None:
    cecs = cecs_for(n)
    with db.standalone_session() as s:
        enqueue_score(
            s,
            instructor_id=iid,
            resource_link_pk=link_pk,
            score_given=cecs,
            score_maximum=MAX,
            activity_progress="Completed" if cecs == MAX else "InProgress",
            grading_progress="FullyGraded",
            comment=f"{cecs} of {MAX} SPIN® CECs earned.",
        )
        s.commit()


def pending(app: Any) -> int:
    with db.standalone_session() as s:
        return int(
            s.scalar(
                select(func.count()).select_from(OutboxScore).where(OutboxScore.state == "pending")
            )
            or 0
        )


def latencies(app: Any) -> tuple[float, float]:
    """Commit of the award → the LMS accepted it (p50, p95 in ms)."""
    with db.standalone_session() as s:
        waits = sorted(
            (db.as_utc(sent) - db.as_utc(created)).total_seconds() * 1000
            for created, sent in s.execute(
                select(OutboxScore.created_at, OutboxScore.sent_at).where(
                    OutboxScore.state == "sent"
                )
            )
        )
    if not waits:
        return 0.0, 0.0
    return waits[len(waits) // 2], waits[int(len(waits) * 0.95)]


def run(mode: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    database_url = args.database_url or f"sqlite:///{tmp / f'{mode}.sqlite3'}"
    if args.database_url:
        # A scratch database: last run's rows go, before the app makes its key.
        engine = db.make_engine(config.normalise_database_url(args.database_url))
        with engine.begin() as conn:
            if conn.execute(text("SELECT to_regclass('passback_score')")).scalar():
                tables = ", ".join(f'"{t.name}"' for t in db.Base.metadata.sorted_tables)
                conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        engine.dispose()
    app = make_app(database_url, tmp, mode, args.threads)
    lms = RemoteLMS()
    with app.app_context():
        link_pk, *learners = setup(app, lms, args.learners, args.lineitem)
        start = time.perf_counter()
        award_all(app, link_pk, learners, args.award_threads)
        committed = time.perf_counter() - start
        if mode == "sender":
            wait_idle(app, timeout=600)
        drain_start = time.perf_counter()
        worker = Worker(app, batch=200, threads=args.threads)
        try:
            worker.drain()  # the sender mode needs none; it is a no-op there unless it failed
        finally:
            worker.close()
        wait_idle(app, timeout=600)
        end = time.perf_counter()
        elapsed = end - start
        delivery = elapsed if mode == "sender" else end - drain_start
        left = pending(app)
        p50, p95 = latencies(app)
        service = lms.get("service_requests")
        lineitem_requests = sum(1 for r in service if r[0] == "lineitems")
        score_requests, token_requests = lms.get("score_requests"), lms.get("token_requests")
        http_requests = score_requests + token_requests + lineitem_requests
        items = lms.get("lineitems")
        li = next(li for li in items.values() if li.resource_link_id == LINK)
        results = lms.get("results")
        wrong = [
            n
            for n in range(args.learners)
            if (r := results.get((li.id, f"learner-{n}"))) is None
            or r.score_given != cecs_for(n)
        ]
        out = {
            "mode": mode,
            "database": "postgresql" if args.database_url else "sqlite",
            "lineitem": args.lineitem,
            "learners": args.learners,
            "threads": args.threads,
            "seconds": round(elapsed, 3),
            "commit_seconds": round(committed, 3),
            # sender: first award committed → last score delivered (awards and sends overlap);
            # worker: a full outbox → empty.
            "delivery_seconds": round(delivery, 3),
            "scores_per_second": round(args.learners / delivery, 1),
            "latency_ms_p50": round(p50, 1),
            "latency_ms_p95": round(p95, 1),
            "token_requests": token_requests,
            "score_requests": score_requests,
            "lineitem_requests": lineitem_requests,
            "http_requests_per_score": round(http_requests / args.learners, 4),
            "score_posts_per_score": round(score_requests / args.learners, 4),
            "pending_left": left,
            "wrong_results": len(wrong),
            "duplicate_timestamps": len(lms.get("duplicate_timestamps")),
            "stale_scores": len(lms.get("stale_scores")),
            "rejected": len(lms.get("rejected_scores")),
            "token_errors": len(lms.get("token_errors")),
        }
    lms.close()
    app.extensions["lti_tool.engine"].dispose()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--learners", type=int, default=1000)
    parser.add_argument("--mode", choices=("sender", "worker", "both"), default="both")
    parser.add_argument("--threads", type=int, default=8, help="sender/worker threads")
    parser.add_argument(
        "--award-threads", type=int, default=4, help="threads committing awards (web workers)"
    )
    parser.add_argument("--lineitem", choices=("claim", "created"), default="claim")
    parser.add_argument("--database-url", default=None, help="scratch PostgreSQL (truncated)")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "passback.json"))
    args = parser.parse_args()
    modes = ("sender", "worker") if args.mode == "both" else (args.mode,)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-passback-") as tmp:
        for mode in modes:
            result = run(mode, args, Path(tmp))
            results.append(result)
            print(json.dumps(result))
    print()
    print(
        "| mode | database | learners | scores/s | award → LMS p50 / p95 | token requests "
        "| HTTP requests/score |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in results:
        latency = (
            f"{r['latency_ms_p50']:.0f} / {r['latency_ms_p95']:.0f} ms"
            if r["mode"] == "sender"
            else "n/a (outbox drained)"
        )
        print(
            f"| {r['mode']} | {r['database']} | {r['learners']} | {r['scores_per_second']} "
            f"| {latency} | {r['token_requests']} | {r['http_requests_per_score']} |"
        )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    ok = all(
        r["pending_left"] == 0
        and r["wrong_results"] == 0
        and r["duplicate_timestamps"] == 0
        and r["stale_scores"] == 0
        and r["rejected"] == 0
        for r in results
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
