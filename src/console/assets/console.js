// Live inbox: the server sends an `inbox` event (with the number of open handoffs) whenever
// the inbox changes; the list is refreshed, and a new handoff shows a badge and beeps.
(function () {
  var live = document.querySelector("[data-live]");
  var badge = document.getElementById("badge");
  if (!window.EventSource || !badge) return;
  var url = live ? live.getAttribute("data-live") : "/console/events";
  var known = null;
  var source = new EventSource(url);
  source.addEventListener("inbox", function (ev) {
    var open = parseInt(ev.data, 10) || 0;
    badge.textContent = open > 0 ? String(open) : "";
    document.title = (open > 0 ? "(" + open + ") " : "") + document.title.replace(/^\(\d+\) /, "");
    if (known !== null && open > known) beep();
    known = open;
    document.body.dispatchEvent(new Event("inbox-changed"));
  });
  function beep() {
    try {
      var ctx = new (window.AudioContext || window.webkitAudioContext)();
      var osc = ctx.createOscillator();
      osc.frequency.value = 880;
      osc.connect(ctx.destination);
      osc.start();
      osc.stop(ctx.currentTime + 0.15);
    } catch (e) { /* no sound available */ }
  }
})();
