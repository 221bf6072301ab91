"""The HTML picture of the energy: self-contained, escaped, and drawn by a real browser.

The rendering tests run headless Chromium (Debian's ``chromium`` package; ``.ci/run`` installs
it) on the written file: the screenshot must not be blank and must show the nodes' colours, and
the DOM after the script ran must hold one element per node of the tree, the hover details of a
node, and a hostile model name as text only. Without Chromium they skip, saying so.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from png import read_png

from predictor.cli.main import main
from predictor.gate.budgets import Inputs, ModelBudget
from predictor.gate.checks import check_tree
from predictor.gate.html import render_html
from predictor.gate.report import Report, profile_identity, write_report
from predictor.trace.tree import EnergyTree

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY_BERT = "examples.tiny_models:tiny_bert"
HOSTILE = "bert</script><img src=x onerror=alert(1)>"

_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((b for b in map(shutil.which, _BROWSERS) if b), None)
needs_chromium = pytest.mark.skipif(
    BROWSER is None,
    reason="headless Chromium not installed (apt-get install chromium; .ci/run installs it)",
)


def _report(seq_len: int, budget_j: float, name: str = HOSTILE) -> Report:
    from predictor.gate.engine import predict_spec
    from predictor.learn.profile import load_profile

    profile = load_profile(None)
    entry = ModelBudget(name, TINY_BERT, Inputs(2, seq_len), budget_j=budget_j)
    tree = predict_spec(entry, profile)
    result = check_tree(tree, entry)
    return Report(models=[result], profile=profile_identity(profile))


@pytest.fixture(scope="module")
def reports() -> tuple[Report, Report]:
    """A head over its whole-model budget, and a base at a shorter sequence."""
    return _report(16, 0.001), _report(8, 1.0)


def _chromium(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    assert BROWSER is not None
    command = [
        BROWSER,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        *args,
        url,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _dom(tmp_path: Path, page: Path, fragment: str = "") -> str:
    done = _chromium(tmp_path, page.as_uri() + fragment, "--dump-dom")
    assert done.returncode == 0, done.stderr
    return done.stdout


def _tree_size(tree: EnergyTree) -> int:
    return sum(1 for _ in tree.walk())


def test_page_is_self_contained_and_names_are_data(reports: tuple[Report, Report]) -> None:
    head, base = reports
    page = render_html(head, base)
    # nothing to fetch: no external script, style, image or font, and a CSP that forbids it
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "default-src 'none'" in page
    # the hostile name cannot close the data element or add markup
    assert HOSTILE not in page and "<img" not in page
    data = page.split('<script type="application/json" id="irene-data">', 1)[1]
    data = data.split("</script>", 1)[0]
    parsed = json.loads(data)
    assert parsed["models"][0]["name"] == HOSTILE
    node = parsed["models"][0]["tree"]
    assert {"et", "sh", "fl", "mb", "x", "bt", "dt"} <= set(node)  # hover fields, and change


@needs_chromium
def test_chromium_draws_every_node_and_the_screenshot_is_not_blank(
    tmp_path: Path, reports: tuple[Report, Report]
) -> None:
    head, base = reports
    page = tmp_path / "energy.html"
    page.write_text(render_html(head, base), encoding="utf-8")

    dom = _dom(tmp_path, page)
    assert 'data-rendered="1"' in dom  # the script ran to its end
    nodes = re.findall(r'<div class="node[^"]*" data-name="([^"]*)"', dom)
    tree = head.models[0].tree
    assert len(nodes) == _tree_size(tree)  # one element per node of the tree
    names = {html.unescape(n) for n in nodes}
    assert {"encoder.layer.0:BertLayer", "encoder.layer.1.attention.self:MatMul"} <= names
    # the hostile name is text: shown, escaped, and no element was made of it
    assert html.escape(HOSTILE, quote=False) in dom
    assert "<img" not in dom
    # coloured by change against the base (an inline colour on every node)
    assert len(re.findall(r'class="node " [^>]*style="[^"]*background', dom)) == len(nodes)

    shot = tmp_path / "energy.png"
    done = _chromium(tmp_path, page.as_uri(), f"--screenshot={shot}", "--window-size=900,600")
    assert done.returncode == 0 and shot.is_file(), done.stderr
    width, height, pixels = read_png(shot)
    assert (width, height) == (900, 600)
    colours = {p[:3] for p in pixels}
    assert len(colours) > 20, "the screenshot is blank or nearly"
    inked = sum(1 for p in pixels if p[:3] != (255, 255, 255))
    assert inked > 0.05 * len(pixels), f"only {inked} of {len(pixels)} pixels are not white"


@needs_chromium
def test_a_link_to_a_node_zooms_in_and_pins_its_details(
    tmp_path: Path, reports: tuple[Report, Report]
) -> None:
    head, _ = reports
    head = Report.from_dict(head.to_dict())  # a copy: the fixture is shared
    layer0 = next(n for n in head.models[0].tree.walk() if n.name == "encoder.layer.0:BertLayer")
    next(n for n in layer0.walk() if n.level == "ml").extrapolated = True  # one to draw apart
    page = tmp_path / "energy.html"
    page.write_text(render_html(head), encoding="utf-8")
    dom = _dom(tmp_path, page, "#node=encoder.layer.0%3ABertLayer")
    tip = re.search(r'<div id="tip"[^>]*data-pinned="([^"]*)"[^>]*>(.*?)</div>', dom, re.S)
    assert tip is not None and tip.group(1) == "encoder.layer.0:BertLayer"
    details = html.unescape(tip.group(2))
    assert re.search(r"energy: \S+ [µm]?J \(\d+\.\d% of the model\)", details)
    assert "MFLOPs: " in details and "MiB: " in details and "level: module" in details
    # zoomed: the layer is the top row, its children below, the rest of the tree is gone
    nodes = re.findall(r'data-name="([^"]*)"', dom)
    layer = next(n for n in head.models[0].tree.walk() if n.name == "encoder.layer.0:BertLayer")
    assert nodes[0] == "encoder.layer.0:BertLayer" and len(nodes) == sum(1 for _ in layer.walk())
    # without a base: coloured by level, extrapolated nodes apart
    assert 'class="node module"' in dom and 'class="node xp"' in dom


def test_irene_report_html_and_every_format(
    tmp_path: Path, reports: tuple[Report, Report], capsys: pytest.CaptureFixture[str]
) -> None:
    head, base = reports
    write_report(head, tmp_path / "head.json")
    write_report(base, tmp_path / "base.json")
    out = tmp_path / "out" / "energy.html"
    assert main(["report", str(tmp_path / "head.json"), "--html", str(out)]) == 0
    assert "<title>Energy per module (IrEne prediction)</title>" in out.read_text()
    args = ["report", str(tmp_path / "head.json"), "--base", str(tmp_path / "base.json")]
    assert main([*args, "--format", "markdown", "--html", str(out)]) == 0
    markdown = capsys.readouterr().out
    assert markdown.startswith("<!-- irene-energy-diff -->")
    assert "Picture of the energy per module: <code>energy.html</code>" in markdown
    assert main([*args, "--format", "text"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("verdict: FAILED, 1 of 1 models over a limit")
    assert main([*args, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["passed"] is False
    assert main([*args, "--format", "github"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("::error title=energy over budget::bert</script>")


def test_gate_writes_the_picture_and_the_summary_links_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(REPO_ROOT / "examples", pytester.path / "examples")
    (pytester.path / "energy_budgets.yaml").write_text(
        f"version: 1\nmodels:\n  tiny:\n    model: {TINY_BERT}\n"
        "    inputs: {batch_size: 2, seq_len: 16}\n    budget: 1 J\n"
    )
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "octo/repo")
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--energy", "--energy-html", "energy.html",
        "--energy-markdown", "summary.md",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["energy HTML picture written to *energy.html"])
    page = (pytester.path / "energy.html").read_text()
    assert '"name":"tiny"' in page
    summary = (pytester.path / "summary.md").read_text()
    assert (
        "Picture of the energy per module: <code>energy.html</code>, in "
        "[this run's artifacts](https://github.com/octo/repo/actions/runs/42#artifacts)"
    ) in summary
