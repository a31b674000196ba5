// Sends the Deep Linking response to the LMS as soon as the page is ready (DL 2.0 §4.4:
// an auto-submitted form POST). The page's button does the same without JavaScript.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.querySelector("form[data-auto-submit]");
  if (form) {
    form.submit();
  }
});
