// Live updates for the staff inbox, without a reload: new messages on a child's thread, and the
// urgent queue. Anything a child wrote is only ever set with textContent, never parsed as HTML.
(function () {
  "use strict";
  var INTERVAL = 5000;

  function poll(url, handle) {
    var busy = false;
    function tick() {
      if (busy || document.hidden) return;
      busy = true;
      fetch(url(), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(handle)
        .catch(function () { /* try again at the next tick (signed out, offline...) */ })
        .then(function () { busy = false; });
    }
    setInterval(tick, INTERVAL);
    document.addEventListener("visibilitychange", function () { if (!document.hidden) tick(); });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function announce(region, text) {
    if (!region) return;
    region.textContent = "";
    // A short pause so screen readers announce the same words again.
    setTimeout(function () { region.textContent = text; }, 50);
  }

  // A child's thread: append messages newer than the last one shown.
  var thread = document.getElementById("thread");
  if (thread && thread.dataset.pollUrl) {
    var lastId = parseInt(thread.dataset.lastId || "0", 10);
    var childName = thread.dataset.child || "the child";
    var threadRegion = document.getElementById("announce");

    var messageItem = function (m) {
      var li = el("li", m.direction === "in" ? "in" : "out");
      li.id = "m-" + m.id;
      li.dataset.id = String(m.id);
      var meta = el("span", "meta");
      if (m.urgent) {
        meta.appendChild(el("span", "tag urgent", "Urgent"));
        meta.appendChild(document.createTextNode(" "));
      }
      var who = m.direction === "in" ? "From " + childName : m.author + ", to " + childName;
      meta.appendChild(document.createTextNode(who + " by " + m.channel_label + ", " + m.time_label + ", "));
      var bad = m.status === "not_delivered" || m.status === "failed" || m.status === "undelivered";
      meta.appendChild(el("span", bad ? "status tag urgent" : "status", m.status_label));
      li.appendChild(meta);
      li.appendChild(document.createTextNode(m.text));
      return li;
    };

    poll(function () { return thread.dataset.pollUrl + "?after=" + lastId; }, function (messages) {
      var fromChild = 0;
      messages.forEach(function (m) {
        if (m.id <= lastId || document.getElementById("m-" + m.id)) return;
        var empty = thread.querySelector("li.empty");
        if (empty) empty.parentNode.removeChild(empty);
        thread.appendChild(messageItem(m));
        lastId = Math.max(lastId, m.id);
        if (m.direction === "in") fromChild += 1;
      });
      if (fromChild) announce(threadRegion, fromChild === 1 ? "New message" : "New messages: " + fromChild);
    });
  }

  // Saved replies: fill the reply box at once (the form also works without JavaScript).
  var cannedForm = document.getElementById("canned-form");
  var replyBox = document.getElementById("text");
  if (cannedForm && replyBox) {
    cannedForm.addEventListener("submit", function (event) {
      var option = cannedForm.querySelector("select").selectedOptions[0];
      if (!option) return;
      event.preventDefault();
      replyBox.value = option.dataset.body || "";
      replyBox.dispatchEvent(new Event("input"));
      replyBox.focus();
    });
  }

  // How long the reply is, against the limit the server checks.
  var counter = document.getElementById("reply-count");
  if (replyBox && counter && replyBox.dataset.max) {
    var max = parseInt(replyBox.dataset.max, 10);
    var count = function () {
      var n = replyBox.value.length;
      counter.textContent = n + " of " + max + " characters" + (n > max ? ": too long, please shorten it" : "") +
        ". Sent as written; check spelling and tone.";
    };
    replyBox.addEventListener("input", count);
    count();
  }

  // The urgent queue: rebuild the list when it changes.
  var urgent = document.getElementById("urgent");
  if (urgent && urgent.dataset.pollUrl) {
    var body = urgent.querySelector("tbody");
    var urgentRegion = document.getElementById("urgent-announce");
    var known = {};
    Array.prototype.forEach.call(body.querySelectorAll("tr[data-concern]"), function (row) {
      known[row.dataset.concern] = true;
    });

    var concernRow = function (c) {
      var tr = el("tr");
      tr.dataset.concern = String(c.id);
      var th = el("th");
      th.scope = "row";
      var link = el("a", null, c.child);
      link.href = c.url;
      th.appendChild(link);
      tr.appendChild(th);
      var what = el("td");
      what.appendChild(el("span", "tag urgent", c.category));
      tr.appendChild(what);
      tr.appendChild(el("td", null, c.time_label));
      return tr;
    };

    poll(function () { return urgent.dataset.pollUrl; }, function (concerns) {
      var added = concerns.filter(function (c) { return !known[String(c.id)]; }).length;
      var rows = body.querySelectorAll("tr[data-concern]");
      var unchanged = rows.length === concerns.length && Array.prototype.every.call(rows, function (row, i) {
        return row.dataset.concern === String(concerns[i].id);
      });
      if (unchanged) return;
      while (body.firstChild) body.removeChild(body.firstChild);
      known = {};
      concerns.forEach(function (c) {
        known[String(c.id)] = true;
        body.appendChild(concernRow(c));
      });
      if (!concerns.length) {
        var tr = el("tr");
        var td = el("td", null, "No open urgent concerns.");
        td.colSpan = 3;
        tr.appendChild(td);
        body.appendChild(tr);
      }
      if (added) announce(urgentRegion, added === 1 ? "New urgent concern" : "New urgent concerns: " + added);
    });
  }
})();
