// The editor's preview: chat with a draft as a test child. State lives in this page only.
(function () {
  "use strict";
  var start = document.getElementById("preview-start");
  if (!start) { return; }
  var chat = document.getElementById("preview-chat");
  var effects = document.getElementById("preview-effects");
  var locale = document.getElementById("preview-locale");
  var input = document.getElementById("preview-text");
  var csrf = document.getElementById("preview-csrf").value;
  var state = null;

  function line(text, who, meta) {
    var li = document.createElement("li");
    li.className = who;
    li.textContent = text;  // never parsed as HTML
    if (meta) {
      var span = document.createElement("span");
      span.className = "meta";
      span.textContent = meta;
      li.appendChild(span);
    }
    chat.appendChild(li);
  }

  function effect(item) {
    if (effects.querySelector(".muted")) { effects.replaceChildren(); }
    var li = document.createElement("li");
    var words = { concern: item.urgent ? "Urgent concern for the IRO" : "Concern for the IRO",
      wishes_submitted: "Views sent to the IRO", advocate_requested: "Asked for an advocate",
      action_not_happened: "Said an action has not happened", locale_changed: "Changed language" };
    li.textContent = (words[item.kind] || item.kind) + ": " + JSON.stringify(item);
    li.dataset.kind = item.kind;
    effects.appendChild(li);
  }

  function send(payload) {
    payload.locale = locale.value;
    payload.state = state;
    return fetch(start.dataset.api, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(payload)
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (result) {
      if (!result.ok) { line(result.body.error || "The preview failed.", "note"); return; }
      state = result.body.state;
      result.body.replies.forEach(function (r) {
        line(r.text, "out", r.segments + " SMS segment" + (r.segments === 1 ? "" : "s") + " (" + r.encoding + ")");
      });
      result.body.effects.forEach(effect);
    });
  }

  start.addEventListener("submit", function (event) {
    event.preventDefault();
    chat.replaceChildren();
    state = null;
    send({ start: true, text: "" });
    input.focus();
  });
  document.getElementById("preview-send").addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value;
    if (!text.trim()) { return; }
    line(text, "in");
    input.value = "";
    send({ text: text });
  });
})();
