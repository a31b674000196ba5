// LTI client-side postMessage platform storage (1EdTech lti-pm-s v0.1, Canvas's recipe):
// at login the state is put into the LMS's storage, at launch it is read back and checked,
// so a launch works inside the LMS frame even when third-party cookies are blocked.
(function () {
  "use strict";
  var box = document.getElementById("lti-storage");
  var mode = box.dataset.mode;
  var state = box.dataset.state;
  var origin = box.dataset.origin;
  var key = "lti1p3_" + state;
  var messageId = "m" + Math.random().toString(36).slice(2) + Date.now().toString(36);
  var done = false;

  function target() {
    var parent = window.parent;
    try {
      if (box.dataset.target && parent.frames[box.dataset.target]) {
        return parent.frames[box.dataset.target];
      }
    } catch (e) { /* cross-origin frame lookup failed: fall back to the parent */ }
    return parent;
  }

  function finish(ok, value) {
    if (done) { return; }
    done = true;
    if (mode === "put") {
      // The cookie may still carry the state; go on to the LMS either way.
      window.location.href = box.dataset.next;
      return;
    }
    if (ok && value === state) {
      var form = document.getElementById("lti-verify");
      form.elements.state.value = value;
      form.submit();
    } else {
      document.getElementById("lti-storage-failed").hidden = false;
    }
  }

  window.addEventListener("message", function (event) {
    if (event.origin !== origin || !event.data || event.data.message_id !== messageId) { return; }
    var subject = event.data.subject;
    if (subject === "lti.put_data.response" || subject === "lti.get_data.response") {
      finish(!event.data.error, event.data.value);
    }
  });

  var message = { subject: mode === "put" ? "lti.put_data" : "lti.get_data",
                  message_id: messageId, key: key };
  if (mode === "put") { message.value = state; }
  target().postMessage(message, origin);
  window.setTimeout(function () { finish(false, null); }, 3000);
})();
