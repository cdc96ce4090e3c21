(function () {
  "use strict";
  // equiv label: every text from the run is data, drawn with textContent only.
  var data = JSON.parse(document.getElementById("label-data").textContent);
  var items = data.items;
  var N = items.length;
  var $ = function (id) { return document.getElementById(id); };
  var memory = {};
  var persistent = true;

  function loadLabels() {
    try {
      var raw = window.localStorage.getItem(data.storage_key);
      var parsed = raw ? JSON.parse(raw) : {};
      return parsed && typeof parsed === "object" ? parsed : {};
    } catch (e) {
      persistent = false;
      return memory;
    }
  }
  var labels = loadLabels();

  function storeLabels() {
    if (!persistent) { return; }
    try {
      window.localStorage.setItem(data.storage_key, JSON.stringify(labels));
    } catch (e) {
      persistent = false;
    }
    $("storage-warning").hidden = persistent;
  }

  function labelOf(item) {
    var l = Object.prototype.hasOwnProperty.call(labels, item.pair_id) ? labels[item.pair_id] : null;
    return l && (l.gold === "baseline" || l.gold === "candidate" || l.gold === "tie") ? l : null;
  }

  function countLabelled() {
    var k = 0;
    for (var i = 0; i < N; i++) { if (labelOf(items[i])) { k++; } }
    return k;
  }

  function firstUnlabelled(from) {
    for (var i = from; i < N; i++) { if (!labelOf(items[i])) { return i; } }
    return -1;
  }

  function other(side) { return side === "baseline" ? "candidate" : "baseline"; }
  function goldFor(item, choice) { return choice === "0" ? "tie" : choice === "1" ? item.left : other(item.left); }
  function choiceFor(item, gold) { return gold === "tie" ? "0" : gold === item.left ? "1" : "2"; }

  var start = firstUnlabelled(0);
  var pos = start < 0 ? Math.max(0, N - 1) : start;

  function text(el, value) { el.textContent = value == null ? "" : String(value); }

  function render() {
    var k = countLabelled();
    text($("progress-text"), k + " / " + N + " labelled");
    $("progress").max = Math.max(1, N);
    $("progress").value = k;
    $("btn-save").disabled = k === 0;
    $("done").hidden = !(N > 0 && k === N);
    if (N === 0) { return; }
    var item = items[pos];
    $("item").hidden = false;
    text($("item-pos"), "Item " + (pos + 1) + " of " + N);
    text($("item-type"), item.prompt_type);
    var conv = $("conversation");
    while (conv.firstChild) { conv.removeChild(conv.firstChild); }
    for (var i = 0; i < item.view.length; i++) {
      var msg = document.createElement("div");
      msg.className = "msg";
      var role = document.createElement("div");
      role.className = "role";
      text(role, item.view[i].role);
      var body = document.createElement("div");
      body.className = "text";
      text(body, item.view[i].text);
      msg.appendChild(role);
      msg.appendChild(body);
      conv.appendChild(msg);
    }
    text($("answer-1-text"), item.answers[0]);
    text($("answer-2-text"), item.answers[1]);
    var l = labelOf(item);
    var chosen = l ? choiceFor(item, l.gold) : null;
    ["0", "1", "2"].forEach(function (c) {
      $("btn-" + c).classList.toggle("chosen", c === chosen);
      $("btn-" + c).setAttribute("aria-pressed", c === chosen ? "true" : "false");
    });
    $("answer-1").classList.toggle("picked", chosen === "1");
    $("answer-2").classList.toggle("picked", chosen === "2");
    document.querySelector(".answers").classList.toggle("tie", chosen === "0");
    text($("item-state"), chosen === null ? "" : chosen === "0" ? "labelled: tie" : "labelled: answer " + chosen + " is better");
    $("btn-back").disabled = pos === 0;
    $("btn-next").disabled = pos >= N - 1;
  }

  function choose(choice) {
    if (N === 0) { return; }
    var item = items[pos];
    labels[item.pair_id] = { gold: goldFor(item, choice), labelled_at: new Date().toISOString() };
    storeLabels();
    text($("status"), "");
    if (pos < N - 1) {
      var next = firstUnlabelled(pos + 1);
      pos = next < 0 ? pos + 1 : next;
    }
    render();
    window.scrollTo(0, 0);
  }

  function move(delta) {
    var to = Math.min(Math.max(0, pos + delta), Math.max(0, N - 1));
    if (to !== pos) { pos = to; render(); window.scrollTo(0, 0); }
  }

  function line(item, l) {
    var answers = item.left === "baseline" ? item.answers : [item.answers[1], item.answers[0]];
    var out = {
      pair_id: item.pair_id,
      prompt_type: item.prompt_type,
      messages: item.messages,
      baseline: { model: "baseline", output: answers[0] },
      candidate: { model: "candidate", output: answers[1] },
      judgments: [],
      error: null
    };
    if (item.prompt_id != null) { out.prompt_id = item.prompt_id; }
    out.gold = l.gold;
    out.labelled_at = l.labelled_at;
    out.labeller = "human";
    return JSON.stringify(out) + "\n";
  }

  function save() {
    var lines = [];
    for (var i = 0; i < N; i++) {
      var l = labelOf(items[i]);
      if (l) { lines.push(line(items[i], l)); }
    }
    if (!lines.length) { return; }
    var blob = new Blob(lines, { type: "application/x-ndjson" });
    var url = URL.createObjectURL(blob);
    var a = document.createElement("a");
    a.href = url;
    a.download = "labels.jsonl";
    document.body.appendChild(a);
    a.click();
    document.body.removeChild(a);
    setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
    text($("status"), "saved " + lines.length + " label" + (lines.length === 1 ? "" : "s") + " to labels.jsonl");
  }

  ["0", "1", "2"].forEach(function (c) {
    $("btn-" + c).addEventListener("click", function () { choose(c); });
  });
  $("btn-back").addEventListener("click", function () { move(-1); });
  $("btn-next").addEventListener("click", function () { move(1); });
  $("btn-save").addEventListener("click", save);

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || e.isComposing) { return; }
    var t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable)) { return; }
    var k = e.key;
    if (k === "1" || k === "2" || k === "0") { e.preventDefault(); choose(k); }
    else if (k === "Backspace" || k === "ArrowLeft") { e.preventDefault(); move(-1); }
    else if (k === "ArrowRight") { e.preventDefault(); move(1); }
    else if (k === "s" || k === "S") { e.preventDefault(); save(); }
  });

  $("storage-warning").hidden = persistent;
  render();
}());
