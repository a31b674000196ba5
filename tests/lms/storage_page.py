"""LMS-looking course page that frames the tool, plus the platform-storage frame (lti-pm-s)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask, Response, request

from .web import error, esc, page, parse_json_body, script_json, with_query

if TYPE_CHECKING:
    from .server import TestPlatform

STORAGE_JS = (Path(__file__).parent / "static" / "lti_storage.js").read_text(encoding="utf-8")
# The permissions real LMSs grant their tool iframes (Canvas' list).
IFRAME_ALLOW = (
    "geolocation *; microphone *; camera *; midi *; encrypted-media *; "
    "autoplay *; clipboard-write *; display-capture *; fullscreen *"
)
STYLE = """<style>
body{margin:0;font-family:system-ui,sans-serif;background:#f5f5f5;color:#222}
.lms-header{background:#394b58;color:#fff;padding:.75rem 1.25rem;display:flex;gap:1rem}
.lms-layout{display:flex}
.course-nav{width:12rem;padding:1rem;background:#fff;border-right:1px solid #ddd}
.course-nav ul{list-style:none;padding:0;margin:0}.course-nav li{padding:.35rem 0}
main{flex:1;padding:1rem}
#tool_frame{width:100%;height:80vh;border:1px solid #ccc;background:#fff}
</style>"""
NAV = (
    '<nav class="course-nav" aria-label="Course"><ul>'
    + "".join(
        f'<li><a href="#">{name}</a></li>'
        for name in ("Home", "Modules", "Assignments", "Grades", "People")
    )
    + "</ul></nav>"
)


def register(app: Flask, lms: TestPlatform) -> None:
    @app.get("/course/<plan_id>")
    def course_page(plan_id: str) -> Response:
        plan = lms.plans.get(plan_id)
        if plan is None:
            return error(404, "not_found", "unknown launch plan")
        ctx = lms.contexts.get(plan.context_id or "")
        link = lms.resource_links.get(plan.resource_link_id or "")
        reg = lms.tools[plan.client_id]
        method = "post" if request.args.get("method", "get").lower() == "post" else "get"
        storage_frame = ""
        if plan.lti_storage_target:
            storage_frame = (
                f'<iframe name="{esc(plan.lti_storage_target)}" id="storage_frame" '
                f'src="{esc(lms.url)}/platform_storage/frame?name={esc(plan.lti_storage_target)}" '
                'title="Platform storage" aria-hidden="true" tabindex="-1" '
                'style="display:none;width:0;height:0;border:0"></iframe>'
            )
        inputs = "".join(
            f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">'
            for k, v in plan.login_params.items()
        )
        launch = {"method": method, "url": with_query(plan.login_url, **plan.login_params)}
        body = f"""
<header class="lms-header"><strong>{esc(lms.name)}</strong>
<span>{esc(ctx.title if ctx else "Home")}</span></header>
<div class="lms-layout">
{NAV}
<main>
<h1>{esc(link.title if link else reg.name)}</h1>
<form id="launch_form" method="post" action="{esc(plan.login_url)}" target="tool">{inputs}</form>
<iframe name="tool" id="tool_frame" title="{esc(reg.name)}" src="about:blank"
 allow="{IFRAME_ALLOW}" allowfullscreen></iframe>
{storage_frame}
</main></div>
<script>{STORAGE_JS}</script>
<script>
(function () {{
  var launch = {script_json(launch)};
  LtiPlatformStorage.install(window, {{storageFrame: {script_json(plan.lti_storage_target)},
    logUrl: {script_json(lms.url + "/platform_storage/log")}, where: 'page'}});
  function go() {{
    if (launch.method === 'post') {{ document.getElementById('launch_form').submit(); }}
    else {{ document.getElementById('tool_frame').src = launch.url; }}
  }}
  var storage = document.getElementById('storage_frame');
  // Start the login only once the storage frame listens, so early put_data is not lost.
  if (storage) {{ storage.addEventListener('load', go); }} else {{ go(); }}
}})();
</script>"""
        return Response(
            page(f"{ctx.title if ctx else 'Course'} – {lms.name}", body, STYLE),
            mimetype="text/html",
        )

    @app.get("/platform_storage/frame")
    def storage_frame() -> Response:
        name = request.args.get("name", "post_message_forwarding")
        options = {
            "storageFrame": name,
            "logUrl": lms.url + "/platform_storage/log",
            "where": "frame",
        }
        body = (
            f"<script>{STORAGE_JS}</script>"
            f"<script>LtiPlatformStorage.install(window, {script_json(options)});</script>"
        )
        return Response(page("Platform storage", body), mimetype="text/html")

    @app.get("/platform_storage/lti_storage.js")
    def storage_script() -> Response:
        return Response(STORAGE_JS, mimetype="application/javascript")

    @app.post("/platform_storage/log")
    def storage_log() -> Response:
        entry = parse_json_body(request)
        if isinstance(entry, dict):
            with lms.lock:
                lms.storage_messages.append(entry)
        return Response(status=204)

    @app.get("/course/return")
    def launch_return() -> Response:
        lms.returns.append(request.args.to_dict())
        message = (
            request.args.get("lti_errormsg") or request.args.get("lti_msg") or "Back in the course."
        )
        return Response(
            page("Course", f'<p id="return-message">{esc(message)}</p>'), mimetype="text/html"
        )
