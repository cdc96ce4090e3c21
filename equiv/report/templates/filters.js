(function () {
  "use strict";
  var form = document.getElementById("filters");
  var list = document.getElementById("pairs");
  if (!form || !list) { return; }
  form.hidden = false;
  var cards = list.querySelectorAll("article.pair");
  var count = document.getElementById("shown-count");
  function apply() {
    var type = form.elements.type.value;
    var outcome = form.elements.outcome.value;
    var cand = form.elements.candidate ? form.elements.candidate.value : "";
    var shown = 0;
    for (var i = 0; i < cards.length; i++) {
      var c = cards[i];
      var ok = (!type || c.getAttribute("data-type") === type) &&
        (!cand || c.getAttribute("data-candidate") === cand) &&
        (!outcome || (" " + c.getAttribute("data-outcome") + " ").indexOf(" " + outcome + " ") >= 0);
      c.hidden = !ok;
      if (ok) { shown++; }
    }
    count.textContent = shown + " of " + cards.length + " pairs shown";
  }
  form.addEventListener("change", apply);
  form.addEventListener("submit", function (e) { e.preventDefault(); });
  apply();
})();
