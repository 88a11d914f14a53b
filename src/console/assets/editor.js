// The file editor: line numbers beside the textarea, the cursor's line and column, and the
// diagnostics' file:line:column links moving the cursor there. The page works without it.
(function () {
  var area = document.getElementById("content");
  if (!area) return;
  var gutter = document.querySelector(".editor .gutter");
  var cursor = document.getElementById("cursor");
  function numbers() {
    var n = area.value.split("\n").length;
    var out = [];
    for (var i = 1; i <= n; i++) out.push(i);
    gutter.textContent = out.join("\n") + "\n";
    gutter.scrollTop = area.scrollTop;
  }
  function where() {
    var before = area.value.slice(0, area.selectionStart).split("\n");
    cursor.textContent = area.getAttribute("data-line") + " " + before.length + ", " +
      area.getAttribute("data-column") + " " + (before[before.length - 1].length + 1);
  }
  area.addEventListener("input", function () { numbers(); where(); });
  area.addEventListener("scroll", function () { gutter.scrollTop = area.scrollTop; });
  ["click", "keyup", "focus"].forEach(function (ev) { area.addEventListener(ev, where); });
  document.querySelectorAll("a.goto").forEach(function (a) {
    a.addEventListener("click", function (e) {
      e.preventDefault();
      var line = parseInt(a.getAttribute("data-line"), 10) || 1;
      var col = parseInt(a.getAttribute("data-col"), 10) || 1;
      var lines = area.value.split("\n");
      var at = 0;
      for (var i = 0; i < line - 1 && i < lines.length; i++) at += lines[i].length + 1;
      at += Math.min(col - 1, (lines[line - 1] || "").length);
      area.focus();
      area.setSelectionRange(at, at);
      var h = parseFloat(getComputedStyle(area).lineHeight) || 20;
      area.scrollTop = Math.max(0, (line - 5) * h);
      where();
    });
  });
  numbers();
})();
