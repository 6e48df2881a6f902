// tracetree's HTML report: draws the data block of the page it is inlined in.
// Every string from the data goes on screen through textContent (or the `title` property),
// never through innerHTML: a log message holding markup is shown as the text it is.
// Trees arrive flat ({nodes, roots}, children as indices) and rows are drawn only for nodes
// whose parents are open, so a trace of thousands of invocations costs one row per visible node.
(function () {
  "use strict";

  var data = JSON.parse(document.getElementById("tracetree-data").textContent);
  var app = document.getElementById("app");

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function add(parent, tag, cls, text) {
    var node = el(tag, cls, text);
    parent.appendChild(node);
    return node;
  }

  function json(value) {
    return typeof value === "string" ? value : JSON.stringify(value, null, 2);
  }

  function plural(count, word) {
    return count + " " + word + (count === 1 ? "" : "s");
  }

  function ms(value) {
    if (value >= 1000) return (value / 1000).toPrecision(3) + " s";
    return (Math.round(value * 10) / 10) + " ms";
  }

  // A table of name → value pairs (attributes, onset fields), values as text or JSON.
  function pairs(parent, title, object) {
    var keys = Object.keys(object || {});
    if (!keys.length) return;
    add(parent, "h3", null, title);
    var table = add(parent, "table", "pairs");
    keys.forEach(function (key) {
      var row = add(table, "tr");
      add(row, "th", null, key);
      add(add(row, "td"), "pre", null, json(object[key]));
    });
  }

  // -- rows of a flat tree ----------------------------------------------------------------------

  // A tree view over {nodes, roots}: which nodes are open, which pass the filter, and the rows
  // of everything visible below a node (iterative: chains can be thousands deep).
  function TreeView(tree, drawRow, defaultOpen, passes) {
    this.tree = tree;
    this.drawRow = drawRow;
    this.defaultOpen = defaultOpen;
    this.passes = passes;
    this.open = new Map();
  }

  TreeView.prototype.isOpen = function (index) {
    var set = this.open.get(index);
    return set === undefined ? this.defaultOpen(index) : set;
  };

  TreeView.prototype.rows = function (indices, depth) {
    var nodes = this.tree.nodes, out = [], stack = [];
    for (var k = indices.length - 1; k >= 0; k--) stack.push([indices[k], depth]);
    while (stack.length) {
      var top = stack.pop(), index = top[0], level = top[1], node = nodes[index];
      if (!this.passes(node)) continue;
      out.push(this.drawRow(index, level, this));
      if (node.c.length && this.isOpen(index)) {
        for (var j = node.c.length - 1; j >= 0; j--) stack.push([node.c[j], level + 1]);
      }
    }
    return out;
  };

  TreeView.prototype.fill = function (container) {
    container.textContent = "";
    var fragment = document.createDocumentFragment();
    this.rows(this.tree.roots, 0).forEach(function (row) { fragment.appendChild(row); });
    container.appendChild(fragment);
  };

  // Open or close the node drawn as `row`: rows below it are added or removed, nothing else.
  TreeView.prototype.toggle = function (row) {
    var index = Number(row.dataset.index), depth = Number(row.dataset.depth);
    var opening = !this.isOpen(index);
    this.open.set(index, opening);
    row.classList.toggle("open", opening);
    row.setAttribute("aria-expanded", String(opening));
    if (opening) {
      var fragment = document.createDocumentFragment();
      this.rows(this.tree.nodes[index].c, depth + 1).forEach(function (r) { fragment.appendChild(r); });
      row.parentNode.insertBefore(fragment, row.nextSibling);
    } else {
      var next = row.nextSibling;
      while (next && Number(next.dataset.depth) > depth) {
        var gone = next;
        next = next.nextSibling;
        gone.remove();
      }
    }
  };

  // The common start of a row: indentation, the open/close toggle, the row's data attributes.
  function rowShell(view, index, depth, cls) {
    var node = view.tree.nodes[index];
    var row = el("div", "row " + cls);
    row.dataset.index = String(index);
    row.dataset.depth = String(depth);
    var label = add(row, "div", "label");
    label.style.paddingLeft = (depth * 16 + 4) + "px";
    var toggle = add(label, "button", "toggle", node.c.length ? "" : "");
    toggle.type = "button";
    if (node.c.length) {
      var open = view.isOpen(index);
      row.classList.toggle("open", open);
      row.setAttribute("aria-expanded", String(open));
      toggle.title = "open or close";
      toggle.addEventListener("click", function (event) {
        event.stopPropagation();
        view.toggle(row);
      });
    } else {
      toggle.disabled = true;
      toggle.classList.add("leaf");
    }
    return { row: row, label: label, node: node };
  }

  var NOT_EXACT = { causal: 1, heuristic: 1, ambiguous: 1, orphan: 1 };
  var FLAGGED = { ambiguous: 1, orphan: 1 };

  // -- the build report -------------------------------------------------------------------------

  function buildReport() {
    var summary = data.summary, selected = null;
    document.title = data.title;
    var header = add(app, "header", "top");
    add(header, "h1", null, data.title);
    var line = plural(summary.traces, "trace") + " · " + plural(summary.invocations, "invocation");
    var links = Object.keys(summary.links).filter(function (k) { return summary.links[k]; })
      .map(function (k) { return summary.links[k] + " " + k; });
    add(header, "p", "summary", line + " · links: " + (links.join(", ") || "none") +
      (summary.resolver === "naive" ? " · linked by the upstream helper's rule (--naive)" : ""));
    var controls = add(header, "div", "controls");
    var labelFilter = add(controls, "label", null, "show ");
    labelFilter.title = "non-exact: causal, heuristic, ambiguous, orphan; flagged: ambiguous, orphan " +
      "(what --strict fails on)";
    var filter = add(labelFilter, "select");
    filter.id = "filter";
    [["all", "all links"], ["nonexact", "non-exact links only"], ["flagged", "flagged links only"]].forEach(function (option) {
      var item = add(filter, "option", null, option[1]);
      item.value = option[0];
    });
    var legend = add(controls, "span", "legend");
    ["causal", "heuristic", "ambiguous", "orphan"].forEach(function (r) {
      add(legend, "span", "badge res-" + r, r);
    });
    add(legend, "span", "mark-sample log", "");
    add(legend, "span", null, "log");
    add(legend, "span", "mark-sample exception", "");
    add(legend, "span", null, "exception");

    // The detail panel sticks below the header, whatever height the header wraps to.
    document.documentElement.style.setProperty("--header", header.offsetHeight + "px");
    var layout = add(app, "main", "layout");
    var list = add(layout, "div", "traces");
    var panel = add(layout, "aside", "panel");
    panel.id = "panel";
    add(panel, "p", "hint", "Click a span or invocation to see its attributes, events and, for a link, " +
      "how it was resolved and the evidence behind it.");

    var mode = "all";
    function passes(node) {
      if (mode === "flagged") return node.nf > 0;
      if (mode === "nonexact") return node.nx > 0;
      return true;
    }

    var sections = data.traces.map(function (trace) { return traceSection(trace); });
    var empty = add(list, "p", "empty muted", data.traces.length ? "" : "no traces in the input");
    empty.hidden = data.traces.length > 0;

    filter.addEventListener("change", function () {
      mode = filter.value;
      var shown = sections.filter(function (section) { return section.refilter(); }).length;
      empty.textContent = mode === "flagged" ? "no flagged (ambiguous or orphan) links in the input"
        : "no non-exact links in the input: every link is root or exact";
      empty.hidden = shown > 0 || !data.traces.length;
    });

    function traceSection(trace) {
      var section = add(list, "section", "trace");
      section.dataset.trace = String(trace.n);
      var head = add(section, "button", "trace-head");
      head.type = "button";
      add(head, "span", "caret");
      add(head, "span", "trace-name", "trace " + trace.n);
      add(head, "span", "muted", " · " + plural(trace.invocations, "invocation"));
      add(head, "span", "badge " + (trace.timed ? "clock-time" : "clock-ordinal"),
        trace.timed ? "time axis" : "ordinal layout");
      var roots = trace.roots.map(function (i) { return trace.nodes[i]; });
      var flagged = roots.reduce(function (s, n) { return s + (n.nf || 0); }, 0);
      var nonexact = roots.reduce(function (s, n) { return s + (n.nx || 0); }, 0);
      if (nonexact) add(head, "span", "badge nonexact", nonexact + " non-exact");
      if (flagged) add(head, "span", "badge flagged", flagged + " flagged");
      add(head, "span", "muted id", trace.id);
      var body = add(section, "div", "trace-body");
      var view = null, rowsBox = null;
      var auto = trace.nodes.length <= data.expandLimit;

      function defaultOpen(index) {
        var node = trace.nodes[index];
        if (mode === "flagged") return node.nf > (FLAGGED[(node.link || {}).r] ? 1 : 0);
        if (mode === "nonexact") return node.nx > (NOT_EXACT[(node.link || {}).r] ? 1 : 0);
        return auto;
      }

      function draw() {
        add(body, "p", "clock", trace.clock);
        // What the resolver lacked matters where it had to weigh evidence: non-exact links.
        if (trace.lacks.length && nonexact) {
          add(body, "p", "lacks", "ordering evidence lacking: " + trace.lacks.join("; "));
        }
        var axis = add(body, "div", "row axis");
        add(axis, "div", "label", "invocation / span");
        var track = add(axis, "div", "track");
        var last = -1;
        for (var k = 0; k <= 4; k++) {
          // Ordinal ticks sit on whole events: a trace of three events has three ticks, not five.
          var at = trace.timed ? trace.end * k / 4 : Math.round(trace.end * k / 4);
          if (at === last) continue;
          last = at;
          var tick = add(track, "span", "tick", trace.timed ? ms(at) : "#" + at);
          tick.style.left = (trace.end ? at / trace.end * 100 : 0) + "%";
        }
        rowsBox = add(body, "div", "rows");
        view = new TreeView(trace, drawRow, defaultOpen, passes);
        view.fill(rowsBox);
      }

      function drawRow(index, depth, v) {
        var shell = rowShell(v, index, depth, trace.nodes[index].k === "i" ? "inv" : "span");
        var node = shell.node, row = shell.row, label = shell.label;
        if (node.k === "i") {
          var r = node.link.r;
          row.classList.add("res-" + r);
          add(label, "span", "kind", "⇢");
          // Before the name: a long name is cut at the column's edge, and the label must show.
          if (NOT_EXACT[r]) add(label, "span", "badge lead res-" + r, r);
          add(label, "span", "name", node.label);
          if (node.outcome !== "ok") add(label, "span", "badge bad", node.outcome || "no outcome");
          if (node.status) add(label, "span", "muted", " " + node.status);
          (node.defects || []).forEach(function (d) { add(label, "span", "badge warn", d); });
        } else {
          add(label, "span", "kind", "▪");
          add(label, "span", "name", node.name);
          if (node.unclosed) add(label, "span", "badge warn", "unclosed");
          else if (node.outcome && node.outcome !== "ok") add(label, "span", "badge bad", node.outcome);
          if (node.parentMissing) add(label, "span", "badge warn", "parent span never opened");
        }
        if (node.duration) add(label, "span", "muted", " " + node.duration);
        label.title = node.k === "i" ? node.label : node.name;
        var track = add(row, "div", "track");
        var end = trace.end || 1;
        if (node.x) {
          var bar = add(track, "div", "bar");
          bar.style.left = (node.x[0] / end * 100) + "%";
          bar.style.width = Math.max((node.x[1] - node.x[0]) / end * 100, 0) + "%";
        }
        (node.events || []).forEach(function (event) {
          if (!event.marker || event.x === undefined) return;
          var mark = add(track, "span", "mark " + (event.type === "log" ? "log lv-" + event.level : event.type));
          mark.style.left = (event.x / end * 100) + "%";
          mark.title = event.text;
        });
        row.addEventListener("click", function () {
          if (selected) selected.classList.remove("selected");
          selected = row;
          row.classList.add("selected");
          showDetail(trace, node);
        });
        return row;
      }

      function setOpen(open) {
        section.classList.toggle("open", open);
        head.setAttribute("aria-expanded", String(open));
        if (open && !view) draw();
        body.hidden = !open;
      }

      head.addEventListener("click", function () { setOpen(!section.classList.contains("open")); });
      setOpen(Boolean(data.open));

      return {
        refilter: function () {
          var roots = trace.roots.map(function (i) { return trace.nodes[i]; });
          var shown = roots.some(passes);
          section.hidden = !shown;
          if (!shown) return false;
          if (mode !== "all" && !section.classList.contains("open")) setOpen(true);
          if (view) {
            view.open = new Map();
            view.fill(rowsBox);
          }
          return true;
        }
      };
    }

    function where(trace, x) {
      if (x === null || x === undefined) return "";
      return trace.timed ? "at " + ms(x) : "event #" + x;
    }

    function eventList(parent, trace, title, events) {
      if (!events.length) return;
      add(parent, "h3", null, title);
      var ul = add(parent, "ul", "events");
      events.forEach(function (event) {
        var li = add(ul, "li", "event " + event.type);
        var details = add(li, "details");
        var summary = add(details, "summary");
        add(summary, "span", "badge ev-" + event.type + (event.level ? " lv-" + event.level : ""),
          event.type === "log" ? event.level : event.type);
        add(summary, "span", "muted", " " + where(trace, event.x) + " ");
        add(summary, "span", "event-text", event.text);
        add(details, "pre", null, json(event.body));
      });
    }

    function showDetail(trace, node) {
      panel.textContent = "";
      if (node.k === "i") {
        add(panel, "h2", null, node.label);
        var facts = {
          "invocation id": node.id,
          "outcome": node.outcome || "(none)",
        };
        if (node.status) facts.status = node.status;
        if (node.duration) facts.duration = node.duration;
        if (node.span) facts["top-level span"] = node.span;
        if (node.defects) facts["stream defects"] = node.defects.join("; ");
        pairs(panel, "invocation", facts);
        linkDetail(trace, node.link);
        pairs(panel, "onset", node.onset);
        pairs(panel, "attributes of its top-level span", node.attrs);
        eventList(panel, trace, "events", node.events || []);
        eventList(panel, trace, "stray events (aimed at spans it never opened)", node.stray || []);
      } else {
        add(panel, "h2", null, node.name);
        var span = { "span id": node.id, "outcome": node.unclosed ? "unclosed" : (node.outcome || "(none)") };
        if (node.duration) span.duration = node.duration;
        if (node.parentMissing) span["parent span (never opened)"] = node.parentMissing;
        pairs(panel, "span", span);
        pairs(panel, "attributes", node.attrs);
        eventList(panel, trace, "events", node.events || []);
      }
    }

    function linkDetail(trace, link) {
      add(panel, "h3", null, "link");
      var p = add(panel, "p", "link-line");
      add(p, "span", "badge res-" + link.r, link.r);
      add(p, "span", null, " " + (link.reason || ""));
      if (link.caller) {
        var c = add(panel, "p", "muted");
        c.textContent = "caller: " + (link.callerLabel || "") + " · invocation " + link.caller[0] +
          " · span " + link.caller[1];
      }
      if (link.r !== "root" && link.r !== "exact" && trace.lacks.length) {
        add(panel, "p", "lacks", "ordering evidence lacking: " + trace.lacks.join("; "));
      }
      var strings = trace.strings;
      if (!trace.byId) {
        trace.byId = new Map();
        trace.nodes.forEach(function (n) { if (n.k === "i") trace.byId.set(n.id, n); });
      }
      if (!link.candidates.length && !link.later && !link.more) {
        if (link.r !== "root") add(panel, "p", "muted", "candidates: none");
        return;
      }
      var ul = add(panel, "ul", "candidates");
      // [state, invocation id, span id, span name, score, [[rule, detail, weight, excludes], …]]
      link.candidates.forEach(function (cand) {
        var state = cand[0], owner = trace.byId.get(cand[1]), spanName = strings[cand[3]], score = cand[4];
        var li = add(ul, "li", "candidate " + state);
        var head = add(li, "div", "cand-head");
        add(head, "span", "cand-state", state === "chosen" ? "▶ chosen" :
          state === "excluded" ? "✗ excluded" : "possible");
        add(head, "span", null, " " + (owner ? owner.label : "(not in the trace)") + " · span " + cand[2] +
          " " + (spanName || "(top-level)"));
        add(head, "span", "score", " score " + (score > 0 ? "+" : "") + score);
        var ev = add(li, "ul", "evidence");
        cand[5].forEach(function (item) {
          var weight = item[2], excludes = item[3];
          var e = add(ev, "li", excludes ? "excludes" : weight > 0 ? "for" : weight < 0 ? "against" : "");
          e.title = strings[item[0]];
          add(e, "span", "weight", excludes ? "excludes" : (weight > 0 ? "+" : "") + weight);
          add(e, "span", null, " " + strings[item[1]]);
        });
        if (!cand[5].length) add(ev, "li", "muted", "no evidence either way");
      });
      if (link.more) {
        add(panel, "p", "muted", plural(link.more[0], "more candidate") + " not shown (" + link.more[1] +
          " excluded by hard constraints): `tracetree build --explain` lists every one");
      }
      if (link.later) {
        add(panel, "p", "muted", "✗ " + plural(link.later, "more owner") +
          " of the span id, created after the callee: ruled out by creation order");
      }
    }
  }

  // -- the diff report --------------------------------------------------------------------------

  function diffReport() {
    document.title = data.title;
    var header = add(app, "header", "top");
    add(header, "h1", null, data.expectedName + " → " + data.actualName);
    add(header, "p", "summary", data.summary);
    var legend = add(header, "div", "legend");
    ["moved", "added", "removed", "changed"].forEach(function (m) { add(legend, "span", "badge mark-" + m, m); });

    var layout = add(app, "main", "diff-layout");
    var changesBox = add(layout, "section", "changes");
    add(changesBox, "h2", null, plural(data.changes.length, "change"));
    var changeList = add(changesBox, "ol", "change-list");
    var panes = {};
    ["expected", "actual"].forEach(function (side) {
      var pane = add(layout, "section", "pane " + side);
      pane.dataset.side = side;
      add(pane, "h2", null, side + ": " + (side === "expected" ? data.expectedName : data.actualName));
      var rows = add(pane, "div", "rows");
      panes[side] = makePane(side, data[side], rows);
    });

    var items = data.changes.map(function (change, index) {
      var li = add(changeList, "li", "change kind-" + change.kind);
      li.dataset.index = String(index);
      li.tabIndex = 0;
      add(li, "div", "place", change.place);
      add(li, "div", "sentence", change.sentence);
      function go() { showChange(index); }
      li.addEventListener("click", go);
      li.addEventListener("keydown", function (e) { if (e.key === "Enter") go(); });
      return li;
    });
    if (!data.changes.length) add(changeList, "li", "muted", "no differences");
    var detail = add(changesBox, "div", "node-detail");
    add(detail, "p", "hint", "Click a node of either tree for its attributes and events.");
    var selected = null;

    function showNode(side, node, row) {
      if (selected) selected.classList.remove("selected");
      selected = row;
      row.classList.add("selected");
      detail.textContent = "";
      add(detail, "h2", null, side + ": " + node.label);
      if (node.path) add(detail, "p", "muted", node.path);
      var facts = {};
      if (node.outcome !== undefined && node.outcome !== null) facts.outcome = node.outcome;
      if (node.resolution) facts["link resolution"] = node.resolution;
      pairs(detail, node.k === "i" ? "invocation" : "span", facts);
      pairs(detail, "onset", node.onset);
      pairs(detail, "attributes", node.attrs);
      if (node.events && node.events.length) {
        add(detail, "h3", null, "events");
        var ul = add(detail, "ul", "events");
        node.events.forEach(function (event) {
          var li = add(ul, "li", "event");
          add(li, "span", "badge ev-" + event.type, event.type);
          add(li, "pre", null, json(event.body));
        });
      }
    }

    function showChange(index) {
      var change = data.changes[index];
      items.forEach(function (li) { li.classList.toggle("current", li === items[index]); });
      panes.expected.reveal(change.expected, change.expectedExact);
      panes.actual.reveal(change.actual, change.actualExact);
    }

    function makePane(side, tree, container) {
      var marked = new Array(tree.nodes.length).fill(false);
      for (var i = tree.nodes.length - 1; i >= 0; i--) {
        var node = tree.nodes[i];
        if ((node.marks && node.marks.length) || marked[i]) {
          if (node.p >= 0) marked[node.p] = true;
        }
      }
      var auto = tree.nodes.length <= 400;
      var view = new TreeView(tree, drawRow, function (index) { return auto || marked[index]; },
        function () { return true; });
      view.fill(container);

      function drawRow(index, depth, v) {
        var node = tree.nodes[index];
        var shell = rowShell(v, index, depth, node.k === "t" ? "trace-row" : node.k === "i" ? "inv" : "span");
        var row = shell.row, label = shell.label;
        add(label, "span", "kind", node.k === "t" ? "" : node.k === "i" ? "⇢" : "▪");
        // Marks first: a long label is cut at the pane's edge, and they must stay in view.
        (node.marks || []).forEach(function (m) {
          row.classList.add("mark-" + m[0]);
          var badge = add(label, "button", "badge mark-" + m[0], m[0]);
          badge.type = "button";
          badge.title = data.changes[m[1]].sentence;
          badge.addEventListener("click", function (event) {
            event.stopPropagation();
            showChange(m[1]);
            items[m[1]].scrollIntoView({ block: "nearest" });
          });
        });
        add(label, "span", "name", node.label);
        if (node.outcome && node.outcome !== "ok") add(label, "span", "badge bad", json(node.outcome));
        if (node.resolution && NOT_EXACT[node.resolution]) {
          add(label, "span", "badge res-" + node.resolution, node.resolution);
        }
        if (node.path) label.title = node.path;
        if (node.k !== "t") row.addEventListener("click", function () { showNode(side, node, row); });
        return row;
      }

      return {
        // Open every node above `index`, redraw, and bring its row into view.
        reveal: function (index, exact) {
          container.querySelectorAll(".target").forEach(function (r) { r.classList.remove("target", "near"); });
          if (index < 0) return;
          for (var p = tree.nodes[index].p; p >= 0; p = tree.nodes[p].p) view.open.set(p, true);
          view.fill(container);
          var row = container.querySelector('.row[data-index="' + index + '"]');
          if (row) {
            row.classList.add("target");
            if (!exact) row.classList.add("near");
            row.scrollIntoView({ block: "center" });
          }
        }
      };
    }
  }

  if (data.kind === "diff") diffReport();
  else buildReport();
  document.body.dataset.ready = "true";
  if (window.performance && performance.mark) performance.mark("tracetree-ready");
})();
