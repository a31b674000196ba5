// A launch's first page is the answer to the LMS's form POST, so the frame's address is the
// launch URL. Give the page its own address: a reload then shows the page again instead of
// posting a spent id_token (which the tool refuses as a replay).
(function () {
  "use strict";
  var script = document.currentScript;
  var url = script && script.getAttribute("data-url");
  if (url && window.history && typeof window.history.replaceState === "function") {
    window.history.replaceState(null, "", url);
  }
})();
