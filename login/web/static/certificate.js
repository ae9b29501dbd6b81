// The certificate page: ask the signing agent on this computer for its certificates,
// let the person pick one, have the agent sign the page's challenge, and post the
// signature with the page's own form (the same form a pasted signature goes through).
// The agent contract is DESIGN.md's "Signing agent". Without this script the page
// still works: the challenge and the signature field are plain HTML.
(function () {
  "use strict";
  var root = document.getElementById("cert-agent");
  var form = document.getElementById("cert-form");
  if (!root || !form || !window.fetch) {
    return;
  }
  var agent = (root.getAttribute("data-agent-url") || "").replace(/\/+$/, "");
  var describeURL = root.getAttribute("data-describe-url");
  var challenge = root.getAttribute("data-challenge");
  var manual = document.getElementById("cert-manual");
  var parts = {
    searching: document.getElementById("cert-searching"),
    offline: document.getElementById("cert-offline"),
    choose: document.getElementById("cert-choose")
  };
  var list = document.getElementById("cert-list");
  var none = document.getElementById("cert-none");
  var signError = document.getElementById("cert-sign-error");
  var signing = document.getElementById("cert-signing");
  var via = document.getElementById("cert-via");
  // The server's refusal of the last attempt: next to the list (#cert-error) when a
  // listed certificate signed, next to the signature field when one was pasted.
  var agentError = document.getElementById("cert-error");
  // A refused pasted signature keeps the manual form open, its error in view;
  // otherwise the form stays folded under "Подписать без Astral.Toolbox", as the
  // seeds show the page: the agent's state first.
  var keepManual = !!document.getElementById("signature-error");
  var settled = false; // the fold is set once; later a person's own choice stands

  function show(name) {
    Object.keys(parts).forEach(function (k) { parts[k].hidden = k !== name; });
  }

  function csrf() {
    var f = form.querySelector("input[name=_csrf]");
    return f ? f.value : "";
  }

  // describe asks our server what the certificates say (owner, organization,
  // issuer, validity): it parses them with the same code that verifies them.
  function describe(certs) {
    var body = new URLSearchParams();
    body.append("_csrf", csrf());
    certs.forEach(function (c) { body.append("der", c.der || ""); });
    return fetch(describeURL, { method: "POST", body: body, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : []; })
      .catch(function () { return []; });
  }

  function line(text, cls) {
    var s = document.createElement("span");
    s.className = cls || "cert-line";
    s.textContent = text;
    return s;
  }

  function render(certs, info) {
    list.textContent = "";
    certs.forEach(function (c, i) {
      var d = info[i] || {};
      var b = document.createElement("button");
      b.type = "button";
      b.className = "cert-item";
      b.setAttribute("data-id", c.id);
      b.appendChild(line(d.owner || c.subject || c.id, "cert-owner"));
      if (d.organization) { b.appendChild(line(d.organization)); }
      b.appendChild(line("Издатель: " + (d.issuer || c.issuer || "—")));
      var until = d.not_after || (c.not_after || "").slice(0, 10);
      b.appendChild(line((d.expired ? "Истек " : "Действителен до ") + until, d.expired ? "cert-line cert-expired" : "cert-line"));
      b.addEventListener("click", function () { sign(c.id, b); });
      var li = document.createElement("li");
      li.appendChild(b);
      list.appendChild(li);
    });
    none.hidden = certs.length > 0;
    show("choose");
    settle();
  }

  function settle() {
    if (!settled) {
      manual.open = keepManual;
      settled = true;
    }
  }

  function load() {
    signError.hidden = true;
    signing.hidden = true;
    show("searching");
    fetch(agent + "/certificates", { method: "GET", mode: "cors", cache: "no-store", credentials: "omit" })
      .then(function (r) {
        if (!r.ok) { throw new Error("agent answered " + r.status); }
        return r.json();
      })
      .then(function (certs) {
        if (!Array.isArray(certs)) { throw new Error("agent answered no list"); }
        return describe(certs).then(function (info) { render(certs, Array.isArray(info) ? info : []); });
      })
      .catch(function () {
        show("offline");
        settle();
      });
  }

  function sign(id, button) {
    signError.hidden = true;
    if (agentError) { agentError.hidden = true; }
    signing.hidden = false;
    var buttons = list.querySelectorAll("button");
    Array.prototype.forEach.call(buttons, function (x) { x.disabled = true; });
    fetch(agent + "/sign", {
      method: "POST", mode: "cors", cache: "no-store", credentials: "omit",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ id: id, data: challenge })
    })
      .then(function (r) {
        if (!r.ok) { throw new Error("agent answered " + r.status); }
        return r.json();
      })
      .then(function (j) {
        if (!j || !j.cms) { throw new Error("agent answered no signature"); }
        form.querySelector("textarea[name=signature]").value = j.cms;
        via.value = "agent"; // a refusal is then shown next to this list
        form.submit();
      })
      .catch(function () {
        signing.hidden = true;
        Array.prototype.forEach.call(buttons, function (x) { x.disabled = false; });
        signError.textContent = "Не удалось подписать: программа для подписи не ответила или отказала. Попробуйте еще раз.";
        signError.hidden = false;
        button.focus();
      });
  }

  // "Обновить" (no agent) and "Обновить список" ask the agent again in place; they
  // are links to this page for a browser without the script.
  ["cert-refresh", "cert-reload"].forEach(function (id) {
    document.getElementById(id).addEventListener("click", function (ev) {
      ev.preventDefault();
      if (agentError) { agentError.hidden = true; }
      load();
    });
  });
  root.hidden = false;
  load();
})();
