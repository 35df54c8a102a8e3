// The flow editor: run the checks and redraw the diagram as the person types (nothing is saved
// until they press Save), and warn that publishing uses the last saved draft.
(function () {
  "use strict";
  var form = document.getElementById("draft-form");
  if (!form) { return; }
  var timer = null;
  var dirty = document.getElementById("dirty");
  var publish = document.getElementById("publish");

  function fill(list, items) {
    list.replaceChildren();
    items.forEach(function (text) {
      var li = document.createElement("li");
      li.textContent = text;  // staff-typed text: never parsed as HTML
      list.appendChild(li);
    });
  }

  function check() {
    fetch(form.dataset.checkUrl, { method: "POST", body: new FormData(form), credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (result) {
        if (!result) { return; }
        fill(document.getElementById("check-errors"), result.errors);
        fill(document.getElementById("check-notes"), result.notes);
        document.getElementById("check-errors-box").hidden = result.ok;
        document.getElementById("check-ok").hidden = !result.ok;
        if (result.diagram) {
          // Built by the server from the form, every text escaped there (app/editor/diagram.py).
          document.getElementById("diagram").innerHTML = result.diagram;
        }
        form.dataset.checked = String(Number(form.dataset.checked || 0) + 1);
      })
      .catch(function () { /* the next keystroke tries again */ });
  }

  form.addEventListener("input", function () {
    if (dirty) { dirty.textContent = "Unsaved changes. Save the draft before you preview or publish."; }
    if (publish) { publish.disabled = true; }
    window.clearTimeout(timer);
    timer = window.setTimeout(check, 400);
  });
})();
