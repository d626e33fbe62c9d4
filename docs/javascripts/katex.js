// Typesets the formulas marked up by pymdownx.arithmatex (generic mode) with the KaTeX shipped in
// docs/vendor/katex: <span class="arithmatex">\( ... \)</span> inline, <div class="arithmatex">\[ ... \]</div>
// display. Nothing is fetched from the network.
(function () {
  "use strict";

  var DELIMITERS = { "\\(": "\\)", "\\[": "\\]" };

  function typeset(root) {
    root.querySelectorAll(".arithmatex:not([data-katex])").forEach(function (el) {
      var tex = el.textContent.trim();
      var open = tex.slice(0, 2);
      if (DELIMITERS[open] !== undefined && tex.slice(-2) === DELIMITERS[open]) {
        tex = tex.slice(2, -2);
      }
      katex.render(tex, el, {
        displayMode: el.tagName === "DIV",
        throwOnError: false, // a formula KaTeX cannot parse is shown as its source, in red
      });
      el.setAttribute("data-katex", "");
    });
  }

  if (typeof document$ !== "undefined") {
    // mkdocs-material: runs on the first load and after each instant navigation
    document$.subscribe(function () {
      typeset(document.body);
    });
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      typeset(document.body);
    });
  } else {
    typeset(document.body);
  }
})();
