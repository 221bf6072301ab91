"""A picture of the energy: one self-contained HTML file with an icicle chart per model.

``pytest --energy --energy-html PATH`` and ``irene report REPORT.json --html OUT`` write it.
Each model's tree is drawn as an icicle (the root across the top, each node's children below it,
widths proportional to predicted energy); clicking a node zooms into it, clicking the bar above
zooms out; hovering shows its energy, its share of the model, MFLOPs, MiB, whether the profile
extrapolated it and, with a base report, its change (``page.html#node=NAME`` opens zoomed into
that node with its details pinned). With a base report nodes are coloured by change (red grew,
green shrank, blue new), else by level.

The file needs no network (inline script and styles, and a Content-Security-Policy that forbids
loading anything). User strings (model names, fqns, messages) are data: the report is embedded
as JSON inside ``<script type="application/json">`` with ``<``, ``>`` and ``&`` written as
``\\u003c`` ... (so a name holding ``</script>`` cannot close the element), and the script puts
them on the page with ``textContent`` and ``setAttribute`` only, never as HTML. Energies are
formatted here, by the package's one formatter (:func:`predictor.gate.units.format_energy`).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any

from predictor.gate.checks import ModelResult
from predictor.gate.report import Report
from predictor.gate.scope import energy_scope
from predictor.gate.units import format_energy, format_percent
from predictor.trace.tree import Node

__all__ = ["render_html"]


@dataclass(frozen=True)
class _Base:
    """A base report's energies by node path (``root/child#0/...``), for one model."""

    energies: dict[str, float | None]


def _paths(root: Node) -> list[tuple[str, Node]]:
    """Every node with a path that names it uniquely (functional ops repeat names, so each
    name is numbered among its siblings)."""
    out: list[tuple[str, Node]] = []

    def visit(node: Node, path: str) -> None:
        out.append((path, node))
        seen: dict[str, int] = {}
        for child in node.children:
            k = seen.get(child.name, 0)
            seen[child.name] = k + 1
            visit(child, f"{path}/{child.name}#{k}")

    visit(root, "")
    return out


def _change(head: float | None, base: float | None, has_base: bool) -> dict[str, Any]:
    if not has_base:
        return {}
    if base is None:
        return {"s": "new", "dt": "new"}
    if head is None:
        return {"s": "same", "dt": "no prediction"}
    delta = head - base
    ratio = head / base - 1.0 if base > 0 else None
    text = "0" if delta == 0 else ("+" if delta > 0 else "-") + format_energy(abs(delta))
    if ratio is not None and delta != 0:
        text += f" ({format_percent(ratio)})"
    return {"bt": format_energy(base), "dt": text, "r": ratio, "s": "changed" if delta else "same"}


def _node_data(node: Node, path: str, base: _Base | None, total: float) -> dict[str, Any]:
    energy = node.energy_j
    data: dict[str, Any] = {
        "n": node.name,
        "f": node.fqn,
        "t": node.type,
        "l": node.level,
        "e": energy if energy is not None and energy > 0 else 0.0,
        "et": format_energy(energy) if energy is not None else "no prediction",
        "sh": f"{100.0 * energy / total:.1f}%" if energy is not None and total > 0 else "?",
        "fl": f"{node.flops:,.3f}",
        "mb": f"{node.mem_bytes:,.3f}",
        "x": bool(node.extrapolated),
    }
    if base is not None:
        data.update(_change(energy, base.energies.get(path), True) if path in base.energies
                    else _change(energy, None, True))  # fmt: skip
    return data


def _tree_data(result: ModelResult, base: ModelResult | None) -> dict[str, Any]:
    """The model's tree as nested dicts with short keys (a 7B model's tree stays small)."""
    total = result.energy_j or 0.0
    base_index = (
        _Base({p: n.energy_j for p, n in _paths(base.tree.root)}) if base is not None else None
    )
    by_id: dict[int, dict[str, Any]] = {}
    for path, node in _paths(result.tree.root):
        by_id[id(node)] = _node_data(node, path, base_index, total)
    for node in result.tree.walk():
        by_id[id(node)]["c"] = [by_id[id(c)] for c in node.children]
    return by_id[id(result.tree.root)]


def _model_data(result: ModelResult, base: ModelResult | None) -> dict[str, Any]:
    return {
        "name": result.name,
        "inputs": result.inputs or f"batch {result.tree.batch_size}, seq {result.tree.seq_len}",
        "passed": result.passed,
        "checks": len(result.checks),
        "violations": [c.message() for c in result.violations],
        "base": None if base is None else format_energy(base.energy_j or 0.0),
        "tree": _tree_data(result, base),
    }


def _json_for_script(data: Any) -> str:
    """JSON that is inert inside ``<script type="application/json">``: nothing in it can
    close the element or open a comment (``<``, ``>``, ``&`` and the JavaScript line
    separators as ``\\u`` escapes)."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escape)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def render_html(report: Report, base: Report | None = None, *, title: str | None = None) -> str:
    """The report as one self-contained HTML page; with ``base``, nodes coloured by change
    (models matched by name and inputs, as :func:`predictor.gate.diff.diff_reports` does)."""
    scope = energy_scope(report.profile)
    models = []
    for result in report.models:
        match = base.model(result.name, result.inputs, result.nodeid) if base is not None else None
        models.append(_model_data(result, match))
    failed = sum(1 for m in report.models if not m.passed)
    verdict = (
        "configuration errors: the gate could not check every model"
        if report.errors
        else f"{failed} of {len(report.models)} models over budget"
        if failed
        else f"all {len(report.models)} models within their budgets"
    )
    data = {
        "models": models,
        "compared": base is not None,
        "errors": list(report.errors),
        "warnings": list(report.warnings),
    }
    heading = title or "Energy per module (IrEne prediction)"
    return (
        _TEMPLATE.replace("@TITLE@", html.escape(heading))
        .replace("@SCOPE@", html.escape(f"Joules of {scope.line()}."))
        .replace("@VERDICT@", html.escape(verdict))
        .replace("@VERDICT_CLASS@", "bad" if failed or report.errors else "good")
        .replace("@LEGEND@", _LEGEND_CHANGE if base is not None else _LEGEND_LEVEL)
        .replace("@DATA@", _json_for_script(data))
        .replace("@SCRIPT@", _SCRIPT)
    )


_LEGEND_LEVEL = (
    '<span class="sw model"></span>model <span class="sw module"></span>module '
    '<span class="sw ml"></span>ML primitive <span class="sw xp"></span>extrapolated'
)
_LEGEND_CHANGE = (
    '<span class="sw up"></span>grew <span class="sw down"></span>shrank '
    '<span class="sw same"></span>unchanged <span class="sw new"></span>new (not in the base)'
)

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>@TITLE@</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 16px 24px; color: #1f2328; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 24px 0 4px; }
.scope, .inputs, .crumb { color: #57606a; }
.verdict { font-weight: 600; margin: 8px 0; }
.verdict.good { color: #1a7f37; } .verdict.bad { color: #cf222e; }
.violations { color: #cf222e; margin: 4px 0 8px 18px; padding: 0; }
.legend { margin: 8px 0; color: #57606a; }
.sw { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 10px;
      vertical-align: -1px; border-radius: 2px; }
.icicle { position: relative; width: 100%; border: 1px solid #d0d7de; border-radius: 4px;
          overflow: hidden; background: #f6f8fa; }
.node { position: absolute; box-sizing: border-box; border: 1px solid #fff; overflow: hidden;
        white-space: nowrap; text-overflow: ellipsis; font-size: 12px; line-height: 26px;
        padding: 0 4px; cursor: pointer; color: #1f2328; }
.node:hover { outline: 2px solid #1f2328; z-index: 2; }
.model, .sw.model { background: #8fb8de; } .module, .sw.module { background: #b6d7a8; }
.ml, .sw.ml { background: #ffe599; } .xp, .sw.xp { background: #f9cb9c; }
.sw.up { background: #e06666; } .sw.down { background: #6aa84f; }
.sw.same { background: #cccccc; } .sw.new { background: #6fa8dc; }
.crumb { cursor: pointer; margin: 2px 0; }
#tip { position: fixed; display: none; pointer-events: none; background: #1f2328; color: #fff;
       padding: 6px 8px; border-radius: 4px; font-size: 12px; max-width: 480px; z-index: 10;
       white-space: pre-line; }
.messages { color: #9a6700; }
</style>
</head>
<body>
<h1>@TITLE@</h1>
<div class="scope">@SCOPE@</div>
<div class="verdict @VERDICT_CLASS@">@VERDICT@</div>
<div class="legend">@LEGEND@ &nbsp; Click a node to zoom in, the bar above to zoom out.</div>
<div id="models"></div>
<div id="tip" role="tooltip"></div>
<script type="application/json" id="irene-data">@DATA@</script>
<script>
@SCRIPT@
</script>
</body>
</html>
"""

# The page's behaviour. Strings from the report only ever reach the page through
# textContent / setAttribute.
_SCRIPT = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("irene-data").textContent);
  var ROW = 28;
  var tip = document.getElementById("tip");

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function depth(node) {
    var d = 0;
    for (var i = 0; i < node.c.length; i++) { d = Math.max(d, depth(node.c[i])); }
    return d + 1;
  }
  function colour(node) {
    if (data.compared) {
      if (node.s === "new") { return "#6fa8dc"; }
      if (node.s !== "changed" || node.r === null || node.r === undefined) { return "#cccccc"; }
      var k = Math.min(1, Math.abs(node.r) / 0.25);
      var light = Math.round(85 - 35 * k);
      return node.r > 0 ? "hsl(0, 65%, " + light + "%)" : "hsl(120, 40%, " + light + "%)";
    }
    return "";
  }
  function describe(node) {
    var lines = [node.n, "energy: " + node.et + " (" + node.sh + " of the model)",
                 "MFLOPs: " + node.fl + "   MiB: " + node.mb,
                 "level: " + node.l + ", type " + node.t];
    if (node.x) { lines.push("extrapolated: a type the profile never saw"); }
    if (data.compared) {
      lines.push(node.s === "new" ? "new: not in the base report"
                 : "base: " + node.bt + ", change " + node.dt);
    }
    return lines.join("\n");
  }
  function draw(box, crumbs, model, focus, trail) {
    box.textContent = "";
    crumbs.textContent = "";
    var rows = depth(focus);
    box.style.height = (rows * ROW) + "px";
    crumbs.appendChild(el("span", null, trail.map(function (n) { return n.n; }).join("  >  ")));
    crumbs.onclick = function () {
      if (trail.length > 1) { draw(box, crumbs, model, trail[trail.length - 2], trail.slice(0, -1)); }
    };
    var total = focus.e > 0 ? focus.e : 1;
    function place(node, left, width, level, path, parent) {
      // the label drops what the parent's name already says: layer.3:BertLayer, not
      // encoder.layer.3:BertLayer (the tooltip has the whole name)
      var label = node.n;
      if (parent && parent.f && node.n.indexOf(parent.f + ".") === 0) {
        label = node.n.slice(parent.f.length + 1);
      }
      var div = el("div", "node " + (data.compared ? "" : (node.x ? "xp" : node.l)),
                   label + "  " + node.et);
      div.setAttribute("data-name", node.n);
      div.setAttribute("data-level", node.l);
      div.setAttribute("data-energy", node.et);
      var bg = colour(node);
      if (bg) { div.style.background = bg; }
      div.style.left = (100 * left) + "%";
      div.style.width = (100 * width) + "%";
      div.style.top = (level * ROW) + "px";
      div.style.height = ROW + "px";
      div.onmousemove = function (ev) {
        tip.textContent = describe(node);
        tip.style.display = "block";
        tip.style.left = (ev.clientX + 12) + "px";
        tip.style.top = (ev.clientY + 12) + "px";
      };
      div.onmouseleave = function () { tip.style.display = "none"; };
      div.onclick = function (ev) {
        ev.stopPropagation();
        if (node !== focus && node.c.length) { draw(box, crumbs, model, node, path); }
      };
      box.appendChild(div);
      var x = left;
      var sum = 0;
      for (var i = 0; i < node.c.length; i++) { sum += node.c[i].e; }
      var scale = node.e > 0 ? Math.max(node.e, sum) : sum || 1;
      for (var j = 0; j < node.c.length; j++) {
        var child = node.c[j];
        var w = width * child.e / scale;
        place(child, x, w, level + 1, path.concat([child]), node);
        x += w;
      }
    }
    place(focus, 0, focus.e / total, 0, trail, null);
  }
  var root = document.getElementById("models");
  var views = [];
  data.models.forEach(function (model) {
    var section = el("section", "model-section");
    section.setAttribute("data-model", model.name);
    section.appendChild(el("h2", null, model.name + ": " + model.tree.et +
                           (model.base ? " (base " + model.base + ")" : "")));
    section.appendChild(el("div", "inputs", "inputs: " + model.inputs + "; " +
                           (model.checks ? (model.passed ? "within its budgets" :
                             model.violations.length + " of " + model.checks + " checks failed")
                            : "no budget")));
    if (model.violations.length) {
      var list = el("ul", "violations");
      model.violations.forEach(function (v) { list.appendChild(el("li", null, v)); });
      section.appendChild(list);
    }
    var crumbs = el("div", "crumb");
    var box = el("div", "icicle");
    section.appendChild(crumbs);
    section.appendChild(box);
    root.appendChild(section);
    draw(box, crumbs, model, model.tree, [model.tree]);
    views.push({box: box, crumbs: crumbs, model: model});
  });
  // A link to one node: page.html#node=NAME zooms into it and pins its details.
  function find(node, name, trail) {
    var here = trail.concat([node]);
    if (node.n === name) { return here; }
    for (var i = 0; i < node.c.length; i++) {
      var hit = find(node.c[i], name, here);
      if (hit) { return hit; }
    }
    return null;
  }
  var wanted = /^#node=(.+)$/.exec(window.location.hash);
  if (wanted) {
    var name = decodeURIComponent(wanted[1]);
    for (var v = 0; v < views.length; v++) {
      var trail = find(views[v].model.tree, name, []);
      if (trail) {
        var node = trail[trail.length - 1];
        draw(views[v].box, views[v].crumbs, views[v].model, node, trail);
        tip.textContent = describe(node);
        tip.style.display = "block";
        tip.style.right = "16px";
        tip.style.top = "16px";
        tip.setAttribute("data-pinned", name);
        break;
      }
    }
  }
  var notes = data.errors.map(function (e) { return "error: " + e; })
    .concat(data.warnings.map(function (w) { return "warning: " + w; }));
  if (notes.length) {
    var box = el("ul", "messages");
    notes.forEach(function (n) { box.appendChild(el("li", null, n)); });
    root.appendChild(box);
  }
  document.body.setAttribute("data-rendered", String(data.models.length));
})();
"""
