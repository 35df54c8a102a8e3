// Translations page: typing is kept only by Save. Approving (a separate form) or leaving the page
// with unsaved typing asks first, so nobody loses their work by accident.
(function () {
  "use strict";
  var save = document.getElementById("save");
  if (!save) { return; }
  var dirty = false;
  var saving = false;
  save.addEventListener("input", function () { dirty = true; });
  save.addEventListener("submit", function () { saving = true; });
  document.querySelectorAll("form[id^='approve-']").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (dirty && !window.confirm("You have typed translations that are not saved yet. Approve anyway and lose them?")) {
        event.preventDefault();
      } else {
        saving = true;
      }
    });
  });
  window.addEventListener("beforeunload", function (event) {
    if (dirty && !saving) { event.preventDefault(); event.returnValue = ""; }
  });
})();
