/* vlmhb report: leaderboard sorting and the per-document drill-down (no network, no libraries). */
(function () {
  "use strict";

  function sortable(table) {
    var dir = {};
    table.querySelectorAll("th").forEach(function (th, i) {
      th.addEventListener("click", function () {
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        dir[i] = !dir[i];
        rows.sort(function (a, b) {
          var x = a.cells[i].getAttribute("data-v"), y = b.cells[i].getAttribute("data-v");
          var nx = parseFloat(x), ny = parseFloat(y);
          var cmp;
          if (isNaN(nx) && isNaN(ny)) { cmp = String(x).localeCompare(String(y), "ru"); }
          else if (isNaN(nx)) { return 1; } else if (isNaN(ny)) { return -1; }
          else { cmp = nx - ny; }
          return dir[i] ? cmp : -cmp;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  function renderDiff(td, ref, cell) {
    var diff = cell.length > 2 ? cell[2] : null;
    if (!diff) { td.appendChild(document.createTextNode(ref)); }
    else {
      diff.forEach(function (piece) {
        var op = piece.charAt(0), text = piece.slice(1);
        if (op === "=") { td.appendChild(document.createTextNode(text)); }
        else { td.appendChild(el(op === "+" ? "ins" : "del", null, text)); }
      });
    }
    if (cell.length > 3 && cell[3]) { td.appendChild(el("span", "err", " " + cell[3])); }
  }

  function Drill(data, root) {
    this.data = data; this.root = root; this.page = 0; this.perPage = 20;
    this.errorsOnly = false; this.query = ""; this.run = -1;
    this.list = root.querySelector(".doclist");
    this.info = root.querySelector(".info");
    var self = this;
    root.querySelector(".errors-only").addEventListener("change", function (e) {
      self.errorsOnly = e.target.checked; self.page = 0; self.render();
    });
    root.querySelector(".query").addEventListener("input", function (e) {
      self.query = e.target.value.toLowerCase(); self.page = 0; self.render();
    });
    var select = root.querySelector(".run-select");
    data.runs.forEach(function (label, k) {
      var opt = el("option", null, label); opt.value = String(k); select.appendChild(opt);
    });
    select.addEventListener("change", function (e) {
      self.run = parseInt(e.target.value, 10); self.page = 0; self.render();
    });
    root.querySelectorAll(".prev, .next").forEach(function (b) {
      b.addEventListener("click", function () {
        self.page += b.classList.contains("next") ? 1 : -1; self.render();
      });
    });
  }

  Drill.prototype.visibleFields = function (doc) {
    var self = this, out = [];
    doc.fields.forEach(function (f) {
      var cells = f.cells.filter(function (c) {
        return (self.run < 0 || c[0] === self.run) && (!self.errorsOnly || c[1] === 0);
      });
      if (cells.length) { out.push({ f: f, cells: cells }); }
    });
    return out;
  };

  Drill.prototype.matches = function (doc) {
    if (!this.query) { return true; }
    var q = this.query;
    var hay = [doc.id, doc.type || "", (doc.tags || []).join(" ")].concat(
      doc.fields.map(function (f) { return f.name + " " + f.ref; })).join(" ").toLowerCase();
    return hay.indexOf(q) >= 0;
  };

  Drill.prototype.render = function () {
    var self = this, shown = [];
    this.data.docs.forEach(function (doc) {
      if (!self.matches(doc)) { return; }
      var fields = self.visibleFields(doc);
      if (fields.length) { shown.push({ doc: doc, fields: fields }); }
    });
    var pages = Math.max(1, Math.ceil(shown.length / this.perPage));
    this.page = Math.min(Math.max(0, this.page), pages - 1);
    this.info.textContent = shown.length + " document(s), page " + (this.page + 1) + " of " + pages;
    this.list.textContent = "";
    shown.slice(this.page * this.perPage, (this.page + 1) * this.perPage)
      .forEach(function (item) { self.list.appendChild(self.renderDoc(item.doc, item.fields)); });
  };

  Drill.prototype.renderDoc = function (doc, fields) {
    var data = this.data, box = el("div", "doc"), thumb = el("div", "thumb");
    box.setAttribute("data-doc", doc.id);
    if (doc.img && data.images[doc.img]) {
      var img = el("img"); img.src = data.images[doc.img]; img.alt = doc.id;
      img.addEventListener("click", function () { openOverlay(doc.src, data.images[doc.img]); });
      thumb.appendChild(img);
      if (doc.pages > 1) { thumb.appendChild(el("div", "muted", "+" + (doc.pages - 1) + " page(s)")); }
    } else { thumb.appendChild(el("div", "muted", "no image")); }
    var body = el("div", "body"), h = el("h3", null, doc.id);
    if (doc.type) { h.appendChild(el("span", "tag", doc.type)); }
    (doc.tags || []).forEach(function (t) { h.appendChild(el("span", "tag", t)); });
    h.appendChild(el("span", "muted", "  " + doc.errors + " wrong answer(s)"));
    body.appendChild(h);
    var table = el("table", "cells"), head = el("tr");
    ["Field", "Ground truth", "Run", "Answer (diff vs. truth)"].forEach(function (t) {
      head.appendChild(el("th", null, t));
    });
    table.appendChild(head);
    fields.forEach(function (item) {
      item.cells.forEach(function (cell, i) {
        var tr = el("tr", cell[1] ? "ok" : "bad");
        tr.appendChild(el("td", "field", i === 0 ? item.f.name : ""));
        tr.appendChild(el("td", "ref", i === 0 ? item.f.ref : (cell.length > 4 ? cell[4] : "")));
        tr.appendChild(el("td", "run", data.runs[cell[0]]));
        var td = el("td", "ans");
        td.appendChild(el("span", "mark", cell[1] ? "✓" : "✗"));
        renderDiff(td, cell.length > 4 && cell[4] ? cell[4] : item.f.ref, cell);
        tr.appendChild(td);
        table.appendChild(tr);
      });
    });
    body.appendChild(table);
    box.appendChild(thumb); box.appendChild(body);
    return box;
  };

  var overlay, overlayImg;
  function openOverlay(src, fallback) {
    overlayImg.onerror = function () { overlayImg.onerror = null; overlayImg.src = fallback; };
    overlayImg.src = src || fallback;
    overlay.classList.add("open");
  }

  document.addEventListener("DOMContentLoaded", function () {
    var board = document.getElementById("leaderboard");
    if (board) { sortable(board); }
    overlay = document.getElementById("overlay");
    overlayImg = overlay.querySelector("img");
    overlay.addEventListener("click", function () { overlay.classList.remove("open"); });
    var blob = document.getElementById("drill-data"), root = document.getElementById("drill");
    if (blob && root) {
      var drill = new Drill(JSON.parse(blob.textContent), root);
      drill.render();
      window.vlmhbDrill = drill;
    }
    if (window.Plotly) {  // charts drawn while the page was still parsing: fit their boxes
      document.querySelectorAll(".js-plotly-plot").forEach(function (p) { Plotly.Plots.resize(p); });
    }
    document.documentElement.setAttribute("data-ready-ms", String(Math.round(performance.now())));
  });
}());
