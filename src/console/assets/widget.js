// clinicflow web chat. Paste in the clinic's site:
//   <script src="https://ASSISTANT/web/widget.js" data-clinic="clinica-san-rafael" defer></script>
// A floating button opens the chat; numbered options ("1. …") become buttons; the
// conversation survives page loads (localStorage). Keyboard: Tab to the button, Enter opens,
// Escape closes.
(function () {
  var me = document.currentScript || document.querySelector("script[data-clinic]");
  if (!me) return;
  var clinic = me.getAttribute("data-clinic");
  var base = new URL(me.src, location.href).origin;
  var lang = (me.getAttribute("data-lang") || navigator.language || "es").slice(0, 2) === "en" ? "en" : "es";
  var T = {
    es: { open: "Abrir el chat de la clínica", close: "Cerrar el chat", title: "Chat de la clínica", placeholder: "Escriba su mensaje…", send: "Enviar", error: "No pudimos enviar su mensaje. Intente de nuevo en un momento." },
    en: { open: "Open the clinic's chat", close: "Close the chat", title: "Clinic chat", placeholder: "Type your message…", send: "Send", error: "We could not send your message. Please try again shortly." }
  }[lang];
  var key = "clinicflow:" + clinic;
  var saved = {};
  try { saved = JSON.parse(localStorage.getItem(key) || "{}"); } catch (e) { saved = {}; }
  if (!saved.id) {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    saved.id = Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
    saved.log = [];
  }
  function persist() { try { localStorage.setItem(key, JSON.stringify(saved)); } catch (e) {} }

  var css = ".cfw-btn{position:fixed;right:16px;bottom:16px;z-index:2147483000;width:56px;height:56px;border-radius:50%;border:0;background:#0b5cad;color:#fff;font-size:26px;cursor:pointer;box-shadow:0 2px 8px rgba(0,0,0,.3)}" +
    ".cfw-btn:focus-visible,.cfw-panel button:focus-visible,.cfw-panel textarea:focus-visible{outline:3px solid #f5a623;outline-offset:2px}" +
    ".cfw-panel{position:fixed;right:16px;bottom:84px;z-index:2147483000;width:360px;max-width:calc(100vw - 32px);height:480px;max-height:calc(100vh - 110px);display:none;flex-direction:column;background:#fff;color:#111;border-radius:10px;box-shadow:0 4px 18px rgba(0,0,0,.3);font:15px/1.4 system-ui,sans-serif}" +
    ".cfw-panel.open{display:flex}.cfw-head{display:flex;justify-content:space-between;align-items:center;padding:8px 12px;background:#0b5cad;color:#fff;border-radius:10px 10px 0 0}" +
    ".cfw-head button{background:none;border:0;color:#fff;font-size:20px;cursor:pointer}.cfw-log{flex:1;overflow:auto;padding:8px}" +
    ".cfw-msg{margin:6px 0;padding:6px 10px;border-radius:8px;white-space:pre-wrap;max-width:85%}.cfw-me{background:#e7eefc;margin-left:auto}.cfw-bot{background:#f1f1f1}" +
    ".cfw-opts{display:flex;flex-wrap:wrap;gap:6px;margin:4px 0}.cfw-opts button{border:1px solid #0b5cad;background:#fff;color:#0b5cad;border-radius:14px;padding:4px 10px;cursor:pointer}" +
    ".cfw-form{display:flex;gap:6px;padding:8px;border-top:1px solid #ddd}.cfw-form textarea{flex:1;resize:none;font:inherit;padding:6px;border:1px solid #888;border-radius:6px}" +
    ".cfw-form button{background:#0b5cad;color:#fff;border:0;border-radius:6px;padding:0 12px;cursor:pointer}" +
    ".cfw-btn svg{width:28px;height:28px;vertical-align:middle}" +
    // On a phone the open chat fills the screen and has its own close button: the floating
    // button would cover the send button.
    "@media (max-width:480px){.cfw-panel{right:0;bottom:0;width:100vw;max-width:100vw;height:100vh;max-height:100vh;border-radius:0}.cfw-btn[aria-expanded=true]{display:none}}";
  var style = document.createElement("style");
  style.textContent = css;
  document.head.appendChild(style);

  var btn = document.createElement("button");
  btn.className = "cfw-btn";
  btn.type = "button";
  btn.setAttribute("aria-label", T.open);
  btn.setAttribute("aria-expanded", "false");
  // A drawn speech bubble, not an emoji: not every system has a font for one.
  btn.innerHTML = '<svg aria-hidden="true" focusable="false" viewBox="0 0 24 24"><path fill="currentColor" d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H10l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z"/></svg>';
  var panel = document.createElement("section");
  panel.className = "cfw-panel";
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", T.title);
  panel.innerHTML = '<div class="cfw-head"><strong></strong><button type="button" class="cfw-close"></button></div>' +
    '<div class="cfw-log" role="log" aria-live="polite"></div>' +
    '<form class="cfw-form"><textarea rows="2" required></textarea><button type="submit"></button></form>';
  panel.querySelector("strong").textContent = T.title;
  var closeBtn = panel.querySelector(".cfw-close");
  closeBtn.textContent = "×";
  closeBtn.setAttribute("aria-label", T.close);
  var log = panel.querySelector(".cfw-log");
  var form = panel.querySelector("form");
  var input = panel.querySelector("textarea");
  input.setAttribute("placeholder", T.placeholder);
  input.setAttribute("aria-label", T.placeholder);
  panel.querySelector(".cfw-form button").textContent = T.send;
  document.body.appendChild(panel);
  document.body.appendChild(btn);

  function show(who, text) {
    var div = document.createElement("div");
    div.className = "cfw-msg " + (who === "me" ? "cfw-me" : "cfw-bot");
    div.textContent = text;
    log.appendChild(div);
    if (who === "bot") {
      // "1. Cardiología" / "2) Dra. Pérez": each numbered line becomes a button.
      var opts = [];
      text.split("\n").forEach(function (line) {
        var m = line.match(/^\s*(\d{1,2})[.)]\s+(.+)$/);
        if (m) opts.push([m[1], m[2]]);
      });
      if (opts.length > 1) {
        var row = document.createElement("div");
        row.className = "cfw-opts";
        opts.forEach(function (o) {
          var b = document.createElement("button");
          b.type = "button";
          b.textContent = o[1];
          b.setAttribute("aria-label", o[0] + ". " + o[1]);
          b.addEventListener("click", function () { send(o[0]); });
          row.appendChild(b);
        });
        log.appendChild(row);
      }
    }
    log.scrollTop = log.scrollHeight;
  }
  (saved.log || []).forEach(function (m) { show(m[0], m[1]); });

  function toggle(open) {
    panel.classList.toggle("open", open);
    btn.setAttribute("aria-expanded", String(open));
    btn.setAttribute("aria-label", open ? T.close : T.open);
    if (open) input.focus(); else btn.focus();
  }
  btn.addEventListener("click", function () { toggle(!panel.classList.contains("open")); });
  closeBtn.addEventListener("click", function () { toggle(false); });
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") toggle(false); });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
  });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (text) { input.value = ""; send(text); }
  });

  function send(text) {
    show("me", text);
    saved.log = (saved.log || []).concat([["me", text]]).slice(-100);
    persist();
    fetch(base + "/web/" + encodeURIComponent(clinic) + "/messages", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ conversation: saved.id, text: text })
    }).then(function (r) {
      if (!r.ok) throw new Error(String(r.status));
      return r.json();
    }).then(function (data) {
      (data.replies || []).forEach(function (t) {
        show("bot", t);
        saved.log.push(["bot", t]);
      });
      saved.log = saved.log.slice(-100);
      persist();
    }).catch(function () { show("bot", T.error); });
  }
})();
