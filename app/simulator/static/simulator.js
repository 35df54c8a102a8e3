// The simulator page: pick a demo child, send messages to /simulator/api/messages, show replies.
(function () {
  "use strict";
  const childSelect = document.getElementById("child");
  const log = document.getElementById("log");
  const effects = document.getElementById("effects");
  const form = document.getElementById("composer");
  const input = document.getElementById("text");

  function add(list, className, text) {
    const item = document.createElement("li");
    item.className = className;
    item.textContent = text;
    list.appendChild(item);
    list.scrollTop = list.scrollHeight;
    return item;
  }

  function describe(effect) {
    const details = Object.entries(effect)
      .filter(([key]) => key !== "kind")
      .map(([key, value]) => `${key}: ${Array.isArray(value) ? value.join(", ") : value}`)
      .join("; ");
    return details ? `${effect.kind} (${details})` : effect.kind;
  }

  async function loadChildren() {
    const response = await fetch(document.body.dataset.childrenUrl);
    const data = await response.json();
    for (const child of data.children) {
      const option = document.createElement("option");
      option.value = child.phone;
      option.textContent = child.name
        ? `${child.name} (${child.display}, ${child.locale})`
        : `Unlinked number (${child.display})`;
      childSelect.appendChild(option);
    }
  }

  async function send(text) {
    const child = childSelect.value;
    add(log, "child", text);
    let response;
    try {
      response = await fetch(document.body.dataset.messagesUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ child, text }),
      });
    } catch (error) {
      add(log, "note", "Could not reach the service. Your message was not sent.");
      return;
    }
    // A server error answers with an HTML page, not JSON: say so instead of failing silently.
    const data = await response.json().catch(() => null);
    if (data === null) {
      add(log, "note", `Something went wrong in the service (HTTP ${response.status}). No reply was sent.`);
      return;
    }
    if (!response.ok) {
      add(log, "note", `Not sent: ${data.error}`);
      return;
    }
    if (data.replies.length === 0) add(log, "note", "(no reply was sent)");
    for (const reply of data.replies) add(log, "service", reply);
    for (const effect of data.effects) {
      const item = add(effects, effect.urgent ? "urgent" : "", `${childSelect.selectedOptions[0].textContent}: ${describe(effect)}`);
      item.dataset.kind = effect.kind;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value;
    if (!text.trim()) return;
    input.value = "";
    send(text);
    input.focus();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  for (const chip of document.querySelectorAll(".chip")) {
    chip.addEventListener("click", () => send(chip.textContent));
  }
  childSelect.addEventListener("change", () => add(log, "note", `Now texting as ${childSelect.selectedOptions[0].textContent}`));
  loadChildren();
})();
