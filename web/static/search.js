// Search for the static export of the wiki (ruledex export site). The server answers
// /rules/?q=... itself; a folder of files cannot, so there the browse page
// (rules/index.html) reads its query string and answers it from a prebuilt index,
// search/index.js, loaded only when a search is asked for. Pages without a query
// are the server's pages as they are: readable without this script.
// Everything shown is set with textContent: rule text never becomes markup.
(function () {
  "use strict";
  var rootMeta = document.querySelector('meta[name="ruledex-root"]');
  if (!rootMeta) return; // served by ruledex serve: nothing to do
  var root = rootMeta.getAttribute("content") || "";
  var perPage = 50;
  var filterNames = ["language", "class", "source", "severity", "status", "logsource", "tactic", "technique", "field"];
  var filterLabels = {language: "Language", "class": "Class", source: "Source", severity: "Severity", status: "Status",
    logsource: "Log source", tactic: "Tactic", technique: "Technique", field: "Field"};

  function params() {
    var out = {};
    var s = location.search.replace(/^\?/, "");
    if (!s) return out;
    s.split("&").forEach(function (kv) {
      if (!kv) return;
      var i = kv.indexOf("=");
      var k = i < 0 ? kv : kv.slice(0, i);
      var v = i < 0 ? "" : kv.slice(i + 1);
      try {
        k = decodeURIComponent(k.replace(/\+/g, " "));
        v = decodeURIComponent(v.replace(/\+/g, " "));
      } catch (e) {
        return;
      }
      out[k] = v;
    });
    return out;
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  function query(p, page) {
    var parts = [];
    Object.keys(p).sort().forEach(function (k) {
      if (k === "page" || p[k] === "") return;
      parts.push(encodeURIComponent(k) + "=" + encodeURIComponent(p[k]));
    });
    if (page > 1) parts.push("page=" + page);
    return "?" + parts.join("&");
  }

  // matches returns the rules the query selects, best first.
  function matches(idx, p) {
    var terms = (p.q || "").toLowerCase().split(/\s+/).filter(function (t) { return t; });
    var out = [];
    var tech = (p.technique || "").toUpperCase();
    for (var i = 0; i < idx.rules.length; i++) {
      var r = idx.rules[i];
      // r: [lang, path, title, source#, severity, status, class, logsource, techniques, tactics, fields, description, text]
      if (p.language && r[0] !== p.language) continue;
      if (p.source && idx.sources[r[3]] !== p.source) continue;
      if (p.severity && r[4] !== p.severity) continue;
      if (p.status && r[5] !== p.status) continue;
      if (p["class"] ? r[6] !== p["class"] : !terms.length && r[6] !== "detection") continue;
      if (p.logsource && r[7] !== p.logsource) continue;
      if (tech) {
        var ts = r[8] ? r[8].split(" ") : [];
        if (!ts.some(function (t) { return t === tech || t.indexOf(tech + ".") === 0; })) continue;
      }
      if (p.tactic && (" " + r[9] + " ").indexOf(" " + p.tactic + " ") < 0) continue;
      if (p.field && (" " + r[10].toLowerCase() + " ").indexOf(" " + p.field.toLowerCase() + " ") < 0) continue;
      var score = 0;
      if (terms.length) {
        var title = r[2].toLowerCase();
        var hay = r._hay || (r._hay = (r[11] + " " + r[12] + " " + r[8] + " " + r[10] + " " + r[0] + "/" + r[1]).toLowerCase());
        var all = true;
        for (var j = 0; j < terms.length && all; j++) {
          var inTitle = title.indexOf(terms[j]) >= 0;
          if (inTitle) score += 10;
          else if (hay.indexOf(terms[j]) >= 0) score += 1;
          else all = false;
        }
        if (!all) continue;
      }
      out.push({r: r, score: score, n: i});
    }
    out.sort(function (a, b) { return b.score - a.score || a.n - b.n; });
    return out;
  }

  function render(idx) {
    var p = params();
    var page = Math.max(1, parseInt(p.page, 10) || 1);
    var found = matches(idx, p);
    var pages = Math.max(1, Math.ceil(found.length / perPage));
    if (page > pages) page = pages;
    var from = (page - 1) * perPage;
    var shown = found.slice(from, from + perPage);

    var h1 = document.querySelector("main h1");
    if (h1) h1.textContent = p.q ? "Search results for \u201c" + p.q + "\u201d" : "Detection rules";
    var box = document.getElementById("q");
    if (box && p.q) box.value = p.q;
    if (p.q) document.title = "Search: " + p.q + " \u00b7 ruledex";
    var count = document.getElementById("result-count");
    if (count) {
      count.textContent = found.length
        ? (from + 1) + "\u2013" + (from + shown.length) + " of " + found.length.toLocaleString("en") + " " +
          (p.q ? "matching rules (all classes, ranked)" : "detection rules")
        : "No rules match.";
    }
    // The server's facets and filters describe the unfiltered list: replace them
    // with the filters of this query.
    var facets = document.querySelector("aside.facets");
    if (facets) facets.hidden = true;
    var active = document.querySelector(".active-filters");
    if (active) active.remove();
    var labels = filterNames.filter(function (k) { return p[k]; });
    if (labels.length && count) {
      var af = el("p", "active-filters", "Filters: ");
      labels.forEach(function (k) {
        var rest = {};
        Object.keys(p).forEach(function (x) { if (x !== k) rest[x] = p[x]; });
        var a = el("a", null, filterLabels[k] + ": " + p[k] + " \u2715");
        a.href = query(rest, 1);
        a.title = "Remove this filter";
        af.appendChild(a);
        af.appendChild(document.createTextNode(" "));
      });
      count.after(af);
    }
    var list = document.getElementById("results");
    if (list) {
      list.textContent = "";
      shown.forEach(function (m) {
        var r = m.r;
        var li = el("li");
        var a = el("a", "title", r[2]);
        a.href = root + "rules/" + r[1] + "/index.html";
        li.appendChild(a);
        var sub = el("div", "sub");
        sub.appendChild(el("span", "tag", idx.langs[r[0]] || r[0]));
        var meta = [r[4], r[5]].filter(function (x) { return x; });
        if (r[6] !== "detection") meta.push(r[6]);
        meta.push(idx.sources[r[3]]);
        if (r[7]) meta.push(r[7]);
        sub.appendChild(document.createTextNode(" \u00b7 " + meta.join(" \u00b7 ")));
        li.appendChild(sub);
        if (r[11]) li.appendChild(el("div", "sub snippet", r[11]));
        list.appendChild(li);
      });
    }
    var nav = document.querySelector("nav.pages");
    if (nav) {
      nav.textContent = "";
      if (page > 1) {
        var prev = el("a", null, "\u2190 Previous");
        prev.rel = "prev";
        prev.href = query(p, page - 1);
        nav.appendChild(prev);
        nav.appendChild(document.createTextNode(" "));
      }
      nav.appendChild(el("span", null, "Page " + page + " of " + pages));
      if (page < pages) {
        nav.appendChild(document.createTextNode(" "));
        var next = el("a", null, "Next \u2192");
        next.rel = "next";
        next.href = query(p, page + 1);
        nav.appendChild(next);
      }
    }
    document.documentElement.setAttribute("data-search", "done");
  }

  // The matrix's filter form needs the server; say so rather than show the
  // unfiltered matrix as if it were filtered.
  function matrixNotice(asked) {
    var form = document.querySelector("form.filters");
    if (!form || !asked) return;
    var note = el("p", "flag", "This static copy of the wiki shows the matrix for all detection rules; filters need ruledex serve.");
    note.id = "static-filter-note";
    form.after(note);
  }

  function start() {
    var p = params();
    var asked = Object.keys(p).some(function (k) { return p[k] !== ""; });
    matrixNotice(asked);
    if (!asked || !document.getElementById("results")) return;
    var count = document.getElementById("result-count");
    if (count) count.textContent = "Searching\u2026";
    window.ruledexIndex = render;
    var s = document.createElement("script");
    s.src = root + "search/index.js";
    s.onerror = function () {
      if (count) count.textContent = "The search index (search/index.js) could not be loaded.";
    };
    document.head.appendChild(s);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
