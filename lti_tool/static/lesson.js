// A lesson counts as read once its end has been scrolled into view: tell the server quietly.
// Without JavaScript the "Mark as read" button does the same.
(function () {
  "use strict";
  var end = document.getElementById("lesson-end");
  var form = document.getElementById("lesson-done-form");
  var status = document.getElementById("lesson-status");
  if (!end || !form || end.getAttribute("data-done") === "true" || !("IntersectionObserver" in window)) {
    return;
  }
  var sent = false;
  function send() {
    if (sent) { return; }
    sent = true;
    var body = new URLSearchParams(new FormData(form));
    body.set("via", "script");
    fetch(form.action, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" }
    }).then(function (resp) {
      if (resp.ok) {
        end.setAttribute("data-done", "true");
        if (status) { status.textContent = end.getAttribute("data-read-label"); }
      } else {
        sent = false;
      }
    }).catch(function () { sent = false; });
  }
  var observer = new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (entry.isIntersecting) { observer.disconnect(); send(); }
    });
  });
  observer.observe(end);
})();
