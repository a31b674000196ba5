#!/usr/bin/env python
"""bench/course_home: time GETs of the course home page after a launch, in-process.

    .venv/bin/python bench/course_home.py [--requests 50] [--database-url URL] [--progress]

The launch's database work is done by the tool's own `record_launch` and the session is the one
`_start_session` would set, so the first GET is a learner's first arrival from the link; the
timed GETs after it are the page views that follow. It also counts the SQL statements per page
and how many of them write, because a write on SQLite takes the database lock.

By default it runs on a temporary SQLite database; `--database-url` must name a scratch
database (the schema and rows stay there).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
# bench/platform.py would shadow the standard library's `platform` module.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import secrets  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from sqlalchemy import event  # noqa: E402

from lti_tool import create_app, db  # noqa: E402
from lti_tool.content import get_course  # noqa: E402
from lti_tool.identity.service import record_launch  # noqa: E402
from lti_tool.learning import progress  # noqa: E402
from lti_tool.lti.models import Deployment, Registration  # noqa: E402

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"


def _claims(user: str) -> dict[str, Any]:
    return {
        "sub": user,
        "name": "Ana García",
        "email": "ana@example.org",
        CLAIM + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
        CLAIM + "context": {"id": "ctx-1", "title": "Recertification"},
        CLAIM + "resource_link": {"id": "rl-1", "title": "Course"},
        CLAIM + "launch_presentation": {"locale": "en-US"},
        "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
            "scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/score"],
            "lineitem": "https://lms.example/lineitems/1",
        },
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--database-url")
    ap.add_argument("--progress", action="store_true",
                    help="read every lesson of the first three modules before timing")
    ap.add_argument("--writer", action="store_true",
                    help="afterwards, 4 threads GET the page while another learner's small "
                         "write transactions are timed (SQLite: do GETs hold the write lock?)")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-home-")
    app = create_app({
        "TESTING": True,
        "SECRET_KEY": secrets.token_hex(16),
        "DATABASE_URL": args.database_url or f"sqlite:///{tmp}/tool.sqlite3",
        "CACHE_TYPE": "FileSystemCache",
        "CACHE_DIR": f"{tmp}/cache",
        "PASSBACK_DELIVERY": "off",
    })
    with app.app_context():
        course = get_course()
        s = db.session()
        issuer = f"https://lms-{secrets.token_hex(3)}.example"
        reg = Registration(issuer=issuer, client_id="bench", auth_login_url=issuer + "/auth",
                           auth_token_url=issuer + "/token", key_set_url=issuer + "/jwks",
                           name="Bench LMS")
        s.add(reg)
        s.flush()
        dep = Deployment(registration_id=reg.id, deployment_id="dep-1")
        s.add(dep)
        s.flush()
        ident = record_launch(s, issuer=issuer, deployment_pk=dep.id, claims=_claims("ana"))
        s.commit()
        if args.progress:
            for module in course.modules[:3]:
                for lesson in module.lessons:
                    progress.complete_lesson(s, ident.instructor_id, course, lesson, db.utcnow())
            s.commit()

    statements: list[str] = []
    engine = app.extensions["lti_tool.engine"]
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cur, stmt, *a: statements.append(stmt.lstrip().split()[0].upper()))

    client = app.test_client()
    with client.session_transaction() as sess:
        sess.update(iid=ident.instructor_id, reg=1, dep=1, ctx=ident.context_pk,
                    rl=ident.resource_link_pk, adm=False, lang="en", lid="bench",
                    csrf_token=secrets.token_hex(20))
    first = client.get("/course/")
    assert first.status_code == 200, first.status_code
    first_statements = len(statements)
    statements.clear()

    times: list[float] = []
    for _ in range(args.requests):
        t0 = time.perf_counter()
        resp = client.get("/course/")
        times.append(time.perf_counter() - t0)
        assert resp.status_code == 200, resp.status_code
    writes = sum(1 for st in statements if st in ("INSERT", "UPDATE", "DELETE"))
    total = sum(times)
    print(f"database: {engine.dialect.name}; course modules: {len(course.modules)}; "
          f"progress: {'3 modules read' if args.progress else 'none'}")
    print(f"first GET after the launch: {first_statements} SQL statements")
    print(f"{args.requests} GETs /course/: total {total * 1000:.0f} ms, "
          f"mean {statistics.mean(times) * 1000:.2f} ms, "
          f"median {statistics.median(times) * 1000:.2f} ms, min {min(times) * 1000:.2f} ms")
    print(f"SQL per GET: {len(statements) / args.requests:.1f} statements, "
          f"{writes / args.requests:.1f} writes")
    if args.writer:
        _writer_waits(app, client, ident.instructor_id, args.requests)
    engine.dispose()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _writer_waits(app: Any, client: Any, instructor_id: int, requests: int) -> None:
    from sqlalchemy import update

    from lti_tool.identity.models import Instructor

    engine = app.extensions["lti_tool.engine"]
    cookie = client.get_cookie("session")
    done = threading.Event()

    def reader() -> None:
        c = app.test_client()
        if cookie is not None:
            c.set_cookie("session", cookie.value)
        for _ in range(requests):
            assert c.get("/course/").status_code == 200
        done.set()

    waits: list[float] = []
    readers = [threading.Thread(target=reader) for _ in range(4)]
    for t in readers:
        t.start()
    while not done.is_set():
        t0 = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(update(Instructor).where(Instructor.id == instructor_id)
                         .values(last_launch_at=db.utcnow()))
        waits.append(time.perf_counter() - t0)
        time.sleep(0.002)
    for t in readers:
        t.join()
    waits.sort()
    print(f"write transactions during 4 x {requests} concurrent GETs: {len(waits)}, "
          f"median {statistics.median(waits) * 1000:.2f} ms, "
          f"p95 {waits[int(len(waits) * 0.95)] * 1000:.2f} ms, max {waits[-1] * 1000:.2f} ms")


if __name__ == "__main__":
    raise SystemExit(main())
