/* xai report: grid, sort/filter, pages, detail view, keyboard. No dependencies, no network.
   Data comes from data/index.js (XAI.index) and data/detail/NNNNN.js (XAI.chunk), loaded by
   <script> tags because Chromium blocks fetch() of local files under file://. */
(function () {
  "use strict";
  var D = null, order = [], page = 0, cursor = 0, openRow = -1, nameIndex = null;
  var chunks = {}, waiting = {};
  var state = { q: "", label: "", method: "", status: "", sort: "index", desc: false, col: "prob", min: null, max: null };

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === "text") e.textContent = attrs[k];
      else if (k === "cls") e.className = attrs[k];
      else if (attrs[k] !== null && attrs[k] !== undefined) e.setAttribute(k, attrs[k]);
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) continue;
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return e;
  }
  function url(path) { return path.split("/").map(encodeURIComponent).join("/"); }
  function fmt(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "boolean") return v ? "yes" : "no";
    if (typeof v !== "number") return String(v);
    if (Number.isInteger(v)) return String(v);
    var a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(2) : String(+v.toPrecision(4));
  }
  function pct(p) { return p === null || p === undefined ? "" : (100 * p).toFixed(1) + "%"; }

  // ---- the index's columns -------------------------------------------------------------
  function defaultStem(name) {
    var d = name.lastIndexOf("."), s = name.lastIndexOf("/");
    return d > s + 1 ? name.slice(0, d) : name;
  }
  function stem(i) { return D.stem[i] !== undefined ? D.stem[i] : defaultStem(D.name[i]); }
  function png(i, k) {
    var extra = D.png[i];
    if (extra && extra[k] !== undefined) return extra[k];
    return (D.mask[i] >> k) & 1 ? stem(i) + "." + D.methods[k] + ".png" : null;
  }
  function runPath(p) { return url(D.run_rel + "/" + p); }
  function thumb(i, k) {
    var p = png(i, k);
    return p && ((D.tmask[i] >> k) & 1 ? url("thumbs/" + p + ".jpg") : runPath(p));
  }
  function original(i, card) {  // the input's copy, or its JPEG preview / card thumbnail
    var o = D.orig[i];
    if (!o) return null;
    return url("inputs/" + stem(i) + (o === "jpg" ? (card ? ".thumb.jpg" : ".jpg") : o));
  }
  function value(col, i) {
    if (col === "prob") return D.prob[i];
    var c = D.numeric[col];
    return c ? c[i] : null;
  }
  function colName(col) { return col === "prob" ? "probability" : col.replace(/^(audit|drift):/, "$1 · "); }

  // ---- filter and sort ------------------------------------------------------------------
  function apply(keepPage) {
    var q = state.q.toLowerCase(), lab = state.label === "" ? null : +state.label;
    var bit = state.method === "" ? 0 : 1 << +state.method;
    var st = state.status === "" ? null : (state.status === "ok" ? 0 : 1);
    var ranged = state.min !== null || state.max !== null, rows = [];
    for (var i = 0; i < D.total; i++) {
      if (st !== null && D.status[i] !== st) continue;
      if (lab !== null && D.label[i] !== lab) continue;
      if (bit && !(D.mask[i] & bit)) continue;
      if (q && D.name[i].toLowerCase().indexOf(q) < 0) continue;
      if (ranged) {
        var v = value(state.col, i);
        if (v === null || v === undefined || (state.min !== null && v < state.min) || (state.max !== null && v > state.max)) continue;
      }
      rows.push(i);
    }
    var key = keyFn(state.sort), sign = state.desc ? -1 : 1;
    if (key) {
      rows.sort(function (a, b) {
        var x = key(a), y = key(b), xn = x === null || x === undefined, yn = y === null || y === undefined;
        if (xn || yn) return xn && yn ? a - b : (xn ? 1 : -1); // missing values last, either way
        return x < y ? -sign : x > y ? sign : a - b;
      });
    } else if (state.desc) rows.reverse();
    order = rows;
    if (!keepPage) { page = 0; cursor = 0; }
    render();
  }
  function keyFn(sort) {
    if (sort === "index") return null;
    if (sort === "name") return function (i) { return D.name[i]; };
    if (sort === "label") return function (i) { return D.label[i] < 0 ? null : D.labels[D.label[i]]; };
    return function (i) { return value(sort, i); };
  }

  // ---- the grid ---------------------------------------------------------------------------
  function pages() { return Math.max(1, Math.ceil(order.length / D.page_size)); }
  function render() {
    var start = page * D.page_size, rows = order.slice(start, start + D.page_size);
    var grid = $("grid"), frag = document.createDocumentFragment();
    rows.forEach(function (i) { frag.appendChild(card(i)); });
    grid.replaceChildren(frag);
    if (!rows.length) grid.appendChild(el("p", { cls: "empty", text: "No input matches these filters." }));
    var c = $("count");
    c.dataset.total = D.total; c.dataset.ok = D.counts.ok; c.dataset.failed = D.counts.error; c.dataset.matching = order.length;
    c.textContent = (order.length ? "Showing " + (start + 1) + "–" + (start + rows.length) + " of " : "") +
      order.length + " matching · " + D.total + " inputs: " + D.counts.ok + " ok, " + D.counts.error + " failed";
    ["pager-top", "pager"].forEach(function (id) { pager($(id)); });
  }
  function pager(nav) {
    var n = pages();
    function btn(text, to, label) {
      var b = el("button", { type: "button", text: text, "aria-label": label });
      b.disabled = to < 0 || to >= n || to === page;
      b.onclick = function () { page = to; cursor = 0; render(); window.scrollTo(0, $("controls").offsetTop); };
      return b;
    }
    nav.replaceChildren(btn("«", 0, "first page"), btn("‹", page - 1, "previous page"),
      el("span", { text: "page " + (page + 1) + " of " + n }), btn("›", page + 1, "next page"), btn("»", n - 1, "last page"));
    nav.hidden = n < 2;
  }
  function card(i) {
    var failed = D.status[i] !== 0;
    var a = el("article", { cls: "card" + (failed ? " failed" : ""), "data-row": i, tabindex: 0 });
    var thumbs = el("div", { cls: "thumbs" });
    if (D.orig[i]) thumbs.appendChild(el("img", { src: original(i, true), alt: "input", title: "input", loading: "lazy", decoding: "async" }));
    if (D.snippet[i] !== undefined) {
      thumbs.className += " text";
      thumbs.appendChild(el("p", { cls: "snippet", text: D.snippet[i] }));
      if (D.top[i]) thumbs.appendChild(el("p", { cls: "topwords", text: D.top[i] }));
    } else {
      for (var k = 0; k < D.methods.length; k++) {
        var t = thumb(i, k);
        if (t) thumbs.appendChild(el("img", { src: t, alt: D.methods[k], title: D.methods[k], loading: "lazy", decoding: "async" }));
      }
    }
    if (!failed) a.appendChild(thumbs);
    a.appendChild(el("div", { cls: "name", title: D.name[i], text: D.name[i] }));
    if (failed) a.appendChild(el("div", { cls: "reason", text: "failed: " + (D.reason[i] || "no reason recorded") }));
    else {
      var pred = el("div", { cls: "pred" }, el("span", { cls: "label", text: D.label[i] < 0 ? "—" : D.labels[D.label[i]] }),
        " ", el("span", { cls: "prob", text: pct(D.prob[i]) }));
      var col = state.sort !== "index" && state.sort !== "name" && state.sort !== "label" && state.sort !== "prob" ? state.sort : null;
      if (col) pred.appendChild(el("span", { cls: "measure", text: colName(col) + " " + fmt(value(col, i)) }));
      a.appendChild(pred);
    }
    a.onclick = function () { open(i); };
    return a;
  }
  function focusCard(pos) {
    if (!order.length) return;
    pos = Math.max(0, Math.min(order.length - 1, pos));
    var p = Math.floor(pos / D.page_size);
    if (p !== page) { page = p; render(); }
    cursor = pos;
    var c = $("grid").querySelector('[data-row="' + order[pos] + '"]');
    if (c) c.focus();
  }

  // ---- detail chunks, loaded on demand ------------------------------------------------------
  function withDetail(i, cb) {
    var n = Math.floor(i / D.chunk);
    if (chunks[n]) return cb(chunks[n][i - n * D.chunk]);
    (waiting[n] = waiting[n] || []).push(function () { cb(chunks[n][i - n * D.chunk]); });
    if (waiting[n].length > 1) return;
    var s = el("script", { src: "data/detail/" + String(n).padStart(5, "0") + ".js" });
    s.onerror = function () { $("detail").replaceChildren(el("p", { cls: "bad", text: "data/detail chunk " + n + " is missing: rebuild the report." })); };
    document.body.appendChild(s);
  }

  // ---- the detail view --------------------------------------------------------------------------
  function open(i) {
    if (location.hash !== "#input=" + i) { location.hash = "input=" + i; return; } // hashchange calls show
    show(i);
  }
  function show(i) {
    openRow = i;
    var pos = order.indexOf(i);
    if (pos >= 0) cursor = pos;
    var det = $("detail");
    det.hidden = false;
    document.body.classList.add("detail-open");
    det.replaceChildren(el("p", { text: "Loading " + D.name[i] + "…" }));
    withDetail(i, function (d) { if (openRow === i) { det.replaceChildren(detailView(i, d, pos)); det.focus(); } });
  }
  function close() {
    if (openRow < 0) return;
    var row = openRow;
    openRow = -1;
    $("detail").hidden = true;
    document.body.classList.remove("detail-open");
    if (location.hash) history.replaceState(null, "", location.pathname + location.search);
    var pos = order.indexOf(row);
    if (pos >= 0) focusCard(pos);
  }
  function step(delta) {
    if (!order.length) return;
    var pos = order.indexOf(openRow);
    pos = pos < 0 ? 0 : Math.max(0, Math.min(order.length - 1, pos + delta));
    open(order[pos]);
  }
  function detailView(i, d, pos) {
    var root = el("div", { cls: "detail-body", "data-row": i });
    var prev = el("button", { type: "button", text: "‹ previous", "aria-label": "previous input" });
    var next = el("button", { type: "button", text: "next ›", "aria-label": "next input" });
    var shut = el("button", { type: "button", text: "✕ close", "aria-label": "close", cls: "close" });
    prev.onclick = function () { step(-1); }; next.onclick = function () { step(1); }; shut.onclick = close;
    prev.disabled = pos <= 0; next.disabled = pos < 0 || pos >= order.length - 1;
    root.appendChild(el("nav", { cls: "detail-nav" }, prev,
      el("span", { text: pos >= 0 ? (pos + 1) + " of " + order.length : "" }), next, shut));
    root.appendChild(el("h2", { text: d.name }));
    if (d.status !== "ok") root.appendChild(el("p", { cls: "reason", text: "failed: " + (d.reason || "no reason recorded") }));
    var facts = el("p", { cls: "facts" });
    if (d.model) facts.appendChild(el("span", { text: "model " + d.model }));
    if (d.input && d.input.size) facts.appendChild(el("span", { text: d.input.size.join("×") + " px" + (d.input.mode ? " " + d.input.mode : "") }));
    if (d.input && d.input.path) facts.appendChild(el("span", { text: d.input.path }));
    if (d.record) facts.appendChild(el("a", { href: runPath(d.record), text: "record JSON" }));
    root.appendChild(facts);
    (d.input && d.input.notes || []).forEach(function (n) { root.appendChild(el("p", { cls: "note", text: n })); });
    var top = el("div", { cls: "toprow" });
    if (D.orig[i]) top.appendChild(el("figure", { cls: "original" }, el("img", { src: original(i, false), alt: "the input" }), el("figcaption", { text: "input" })));
    if (d.prediction && d.prediction.length) top.appendChild(table(["rank", "class", "probability"], d.prediction.map(function (p) {
      return [p.rank, p.label !== null && p.label !== undefined ? p.label : p.index, pct(p.probability)];
    }), "prediction"));
    root.appendChild(top);
    if (d.compare) root.appendChild(compareView(d.compare));
    if (d.text !== undefined) root.appendChild(textView(d));
    var figs = el("div", { cls: "methods" });
    d.methods.forEach(function (m) {
      m.entries.forEach(function (e) { figs.appendChild(methodView(m.name, e, d.text !== undefined)); });
    });
    root.appendChild(figs);
    return root;
  }
  function methodView(name, e, isText) {
    var t = e.target || {};
    var fig = el("figure", { cls: "method", "data-method": name });
    fig.appendChild(el("figcaption", { text: name + " · " + (t.label !== undefined && t.label !== null ? t.label : t.index) + (t.probability !== undefined ? " (" + pct(t.probability) + ")" : "") }));
    if (e.png) fig.appendChild(el("a", { href: runPath(e.png) }, el("img", { src: runPath(e.png), alt: name + " map", cls: isText ? "textpng" : "" })));
    var rows = [];
    if (e.layer) rows.push(["layer", e.layer]);
    Object.keys(e.stats || {}).forEach(function (k) { rows.push([k, Array.isArray(e.stats[k]) ? e.stats[k].map(fmt).join(", ") : fmt(e.stats[k])]); });
    Object.keys(e.details || {}).forEach(function (k) { rows.push([k, fmt(e.details[k])]); });
    Object.keys(e.metrics || {}).forEach(function (k) { rows.push(["audit · " + k, fmt(e.metrics[k])]); });
    if (e.top_words) rows.push(["strongest words", e.top_words.slice(0, 6).map(function (w) { return w[0] + " " + fmt(w[1]); }).join(", ")]);
    if (e.seconds !== undefined) rows.push(["seconds", fmt(e.seconds)]);
    var params = Object.keys(e.params || {}).filter(function (k) { return e.params[k] !== null; }).map(function (k) { return k + "=" + fmt(e.params[k]); }).join(", ");
    if (params) rows.push(["params", params]);
    fig.appendChild(table(null, rows, "values"));
    return fig;
  }
  function textView(d) {
    var box = el("div", { cls: "texts" });
    d.methods.forEach(function (m) {
      var e = m.entries[0];
      if (!e.word_scores) return;
      var peak = Math.max.apply(null, e.word_scores.map(Math.abs).concat([1e-12]));
      var p = el("p", { cls: "highlight", "data-method": m.name }), at = 0;
      d.words.forEach(function (w, k) {
        if (w[0] === null || w[0] === undefined) return;
        if (w[0] > at) p.appendChild(document.createTextNode(d.text.slice(at, w[0])));
        var s = e.word_scores[k] || 0, a = Math.min(1, Math.abs(s) / peak);
        var span = el("span", { title: fmt(s), text: d.text.slice(w[0], w[1]) });
        span.style.background = s >= 0 ? "rgba(178,24,43," + a.toFixed(3) + ")" : "rgba(33,102,172," + a.toFixed(3) + ")";
        if (a > 0.55) span.style.color = "#fff";
        p.appendChild(span);
        at = w[1];
      });
      if (at < d.text.length) p.appendChild(document.createTextNode(d.text.slice(at)));
      box.appendChild(el("div", { cls: "textmethod" }, el("h3", { text: m.name }), p));
    });
    box.appendChild(el("p", { cls: "legend", text: "red: for the class · blue: against it · hover a word for its score" }));
    return box;
  }
  function compareView(c) {
    var box = el("div", { cls: "compare" }, el("h3", { text: "A | B | difference" }));
    Object.keys(c.pictures || {}).forEach(function (m) {
      box.appendChild(el("figure", {}, el("img", { src: runPath(c.pictures[m]), alt: "A | B | difference" }), m ? el("figcaption", { text: m }) : null));
    });
    var rows = [];
    ["a", "b"].forEach(function (side) {
      var p = c[side];
      if (p && typeof p === "object") rows.push([side.toUpperCase(), (p.label !== undefined ? p.label : p.index) + (p.probability !== undefined ? " (" + pct(p.probability) + ")" : "")]);
    });
    Object.keys(c.measures || {}).forEach(function (k) { rows.push([k, fmt(c.measures[k])]); });
    box.appendChild(table(null, rows, "values"));
    return box;
  }
  function table(head, rows, cls) {
    var t = el("table", { cls: cls });
    if (head) t.appendChild(el("thead", {}, el("tr", {}, ...head.map(function (h) { return el("th", { text: h }); }))));
    var b = el("tbody");
    rows.forEach(function (r) { b.appendChild(el("tr", {}, ...r.map(function (v, j) { return el(j === 0 && !head ? "th" : "td", { text: fmt(v) }); }))); });
    t.appendChild(b);
    return t;
  }

  // ---- controls and keys ---------------------------------------------------------------------------
  function options(select, items) { items.forEach(function (it) { select.appendChild(el("option", { value: it[0], text: it[1] })); }); }
  function wire() {
    var labels = D.labels.map(function (l, k) { return [k, l]; }).sort(function (a, b) { return a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0; });
    options($("f-label"), labels);
    options($("f-method"), D.methods.map(function (m, k) { return [k, m]; }));
    var cols = Object.keys(D.numeric).map(function (c) { return [c, colName(c)]; });
    options($("sort"), cols);
    options($("f-col"), cols);
    var timer = null;
    $("q").addEventListener("input", function (ev) {
      clearTimeout(timer);
      timer = setTimeout(function () { state.q = ev.target.value.trim(); apply(); }, 120);
    });
    [["f-label", "label"], ["f-method", "method"], ["f-status", "status"], ["f-col", "col"]].forEach(function (p) {
      $(p[0]).addEventListener("change", function (ev) { state[p[1]] = ev.target.value; apply(); });
    });
    $("sort").addEventListener("change", function (ev) {
      state.sort = ev.target.value;
      state.desc = state.sort === "prob"; // most probable first; everything else ascending (worst first)
      arrow(); apply();
    });
    $("dir").addEventListener("click", function () { state.desc = !state.desc; arrow(); apply(); });
    ["f-min", "f-max"].forEach(function (id) {
      $(id).addEventListener("input", function (ev) {
        var v = ev.target.value === "" ? null : parseFloat(ev.target.value);
        state[id === "f-min" ? "min" : "max"] = isNaN(v) ? null : v;
        apply();
      });
    });
    document.querySelectorAll("a.open[data-input]").forEach(function (a) {
      a.addEventListener("click", function (ev) {
        ev.preventDefault();
        if (!nameIndex) { nameIndex = new Map(); D.name.forEach(function (n, k) { nameIndex.set(n, k); }); }
        var row = nameIndex.get(a.dataset.input);
        if (row !== undefined) open(row);
      });
    });
    window.addEventListener("hashchange", route);
    document.addEventListener("keydown", keys);
  }
  function arrow() { $("dir").textContent = state.desc ? "↓" : "↑"; }
  function route() {
    var m = /^#input=(\d+)$/.exec(location.hash);
    if (m && +m[1] < D.total) show(+m[1]); else if (openRow >= 0) close();
  }
  function keys(ev) {
    var tag = (ev.target.tagName || "").toLowerCase();
    if (ev.altKey || ev.ctrlKey || ev.metaKey || tag === "input" || tag === "select" || tag === "textarea") return;
    var k = ev.key, back = k === "ArrowLeft" || k === "k" || k === "ArrowUp", fwd = k === "ArrowRight" || k === "j" || k === "ArrowDown";
    if (openRow >= 0) {
      if (k === "Escape") close(); else if (back) step(-1); else if (fwd) step(1); else return;
    } else {
      var card = ev.target.closest && ev.target.closest(".card");
      var pos = card ? order.indexOf(+card.dataset.row) : -1;
      if (back || fwd) focusCard(pos < 0 ? page * D.page_size : pos + (back ? -1 : 1));
      else if (k === "Enter" && card) open(+card.dataset.row);
      else return;
    }
    ev.preventDefault();
  }

  window.XAI = {
    index: function (data) {
      D = data;
      wire(); arrow();
      var anyOrig = D.orig.some(function (o) { return o; }), isText = Object.keys(D.snippet).length > 0;
      $("grid").style.setProperty("--n", isText ? 3 : D.methods.length + (anyOrig ? 1 : 0));
      order = Array.from({ length: D.total }, function (_, i) { return i; });
      render();
      document.body.dataset.ready = "1";
      route();
    },
    chunk: function (n, details) {
      chunks[n] = details;
      (waiting[n] || []).forEach(function (f) { f(); });
      delete waiting[n];
    },
  };
})();
