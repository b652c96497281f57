// Beacon web chat: posts each message to /webchat/messages and shows the replies.
// The conversation id lives in sessionStorage only: closing the tab forgets it.
// While the page is visible it also polls /webchat/poll for what a responder wrote.
(function () {
  "use strict";
  var main = document.getElementById("chat");
  var strings = JSON.parse(main.getAttribute("data-strings"));
  var log = document.getElementById("log");
  var form = document.getElementById("composer");
  var input = document.getElementById("message");
  var sendButton = document.getElementById("send");
  var status = document.getElementById("status");

  function randomId() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  var sender = sessionStorage.getItem("beacon-sender");
  if (!sender) { sender = randomId(); sessionStorage.setItem("beacon-sender", sender); }

  // Ids of the messages already shown, so a reply is never shown twice, and the
  // poll cursor: the highest id the poll has returned. Ids of the replies to our
  // own posts only go into `shown`: a responder's message written just before
  // them has a lower id and must still come through the poll.
  var shown = {};
  var pollAfter = 0;
  var stopped = false;

  function seen(id) {
    return typeof id === "number" && Object.prototype.hasOwnProperty.call(shown, id);
  }

  function remember(id) {
    if (typeof id === "number") { shown[id] = true; }
  }

  function add(who, text, buttons) {
    var item = document.createElement("li");
    item.className = who;
    var label = document.createElement("span");
    label.className = "who";
    label.textContent = (who === "me" ? strings.you : strings.assistant) + ": ";
    item.appendChild(label);
    item.appendChild(document.createTextNode(text));
    if (buttons && buttons.length) {
      var row = document.createElement("div");
      row.className = "choices";
      buttons.forEach(function (b) {
        var button = document.createElement("button");
        button.type = "button";
        button.textContent = b.title;
        button.addEventListener("click", function () {
          Array.prototype.forEach.call(row.querySelectorAll("button"), function (other) { other.disabled = true; });
          send(b.title, b.payload);
        });
        row.appendChild(button);
      });
      item.appendChild(row);
    }
    log.appendChild(item);
    item.scrollIntoView({ block: "end" });
  }

  function post(body, attempt) {
    return fetch("/webchat/messages", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (response) {
      if (response.status === 503 && attempt < 3) {
        return new Promise(function (resolve) { setTimeout(resolve, 2000 * (attempt + 1)); })
          .then(function () { return post(body, attempt + 1); });
      }
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.json();
    });
  }

  function send(text, payload) {
    var body = { sender: sender, text: text, id: randomId(), language: navigator.language || "" };
    if (payload) { body.payload = payload; }
    add("me", text);
    sendButton.disabled = true;
    status.textContent = strings.sending;
    post(body, 0).then(function (data) {
      status.textContent = "";
      if (data.messages.some(function (m) { return m.erase; })) {
        // The person wrote "erase": the same as the quick exit button.
        quickExit();
        return;
      }
      data.messages.forEach(function (m) {
        if (seen(m.id)) { return; }
        remember(m.id);
        add("bot", m.text, m.buttons);
      });
    }).catch(function () {
      status.textContent = strings.send_failed;
    }).then(function () {
      sendButton.disabled = false;
      input.focus();
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    input.value = "";
    send(text, null);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });

  var POLL_MS = 3000;
  var polling = false;
  var pollTimer = null;

  function poll() {
    if (stopped || polling || document.visibilityState !== "visible") { return; }
    polling = true;
    fetch("/webchat/poll", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sender: sender, after: pollAfter }),
      cache: "no-store"
    }).then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.json();
    }).then(function (data) {
      if (stopped || !data || !data.messages) { return; }
      data.messages.forEach(function (m) {
        if (typeof m.id === "number" && m.id > pollAfter) { pollAfter = m.id; }
        if (seen(m.id)) { return; }
        remember(m.id);
        add("bot", m.text, m.buttons);
      });
    }).catch(function () {
      // Silent: the next tick tries again.
    }).then(function () {
      polling = false;
    });
  }

  function schedule() {
    clearInterval(pollTimer);
    pollTimer = setInterval(poll, POLL_MS);
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { poll(); schedule(); }
  });
  schedule();
  poll();

  var exitLink = document.getElementById("quick-exit");
  function quickExit() {
    stopped = true;
    clearInterval(pollTimer);
    sessionStorage.clear();
    log.textContent = "";
    window.location.replace(exitLink.href);
  }
  exitLink.addEventListener("click", function (event) {
    event.preventDefault();
    quickExit();
  });
})();
