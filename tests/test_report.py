"""`groklab report`: one self-contained HTML file for a run, a sweep or a reproduction. Its content is checked
from the file itself; then in a real headless Chromium (Debian's, which .ci/run installs): the page loads
with no console error and no request, every figure draws all its series, and a screenshot is not blank."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from groklab.cli.main import main
from groklab.store import Store
from helpers import TINY

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    """A run, a sweep and a tiny grokfast reproduction, each with its report."""
    root = tmp_path_factory.mktemp("report")
    runs = str(root / "runs")
    assert main(["sweep", *TINY, "--grid", "optim.weight_decay=0.1,1", "--seeds", "2", "--quiet", "--runs-dir", runs]) == 0
    tiny = [o for o in TINY if not o.startswith(("schedule.steps", "run.device"))]
    args = ["reproduce", "grokfast", *tiny, "schedule.steps=20", "schedule.batch_size=32", "--quick", "--seeds", "2", "--quiet"]
    assert main([*args, "--runs-dir", runs, "--out", str(root / "repro")]) == 0
    store = Store(runs)
    sweep = store.sweeps()[0]
    run_id = store.sweep_runs(sweep.id)[0]
    assert main(["report", run_id, "--runs-dir", runs, "-o", str(root / "run.html")]) == 0
    assert main(["report", sweep.id, "--runs-dir", runs, "-o", str(root / "sweep.html")]) == 0
    return {"root": root, "runs": Path(runs), "run": root / "run.html", "sweep": root / "sweep.html",
            "reproduction": root / "repro" / "report.html", "run_id": run_id, "sweep_id": sweep.id}  # fmt: skip


def figures(page: str) -> list[dict]:
    specs = re.findall(r'<script type="application/json" id="fig\d+-spec">(.*?)</script>', page, re.S)
    return [json.loads(s) for s in specs]


def test_the_page_is_self_contained(reports):
    for kind in ("run", "sweep", "reproduction"):
        page = reports[kind].read_text()
        assert "Plotly" in page and "<link" not in page
        markup = re.sub(r"<script.*?</script>", "", page, flags=re.S)  # plotly.js's own strings name sites it never loads here
        assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', markup), f"the {kind} report references the network"
        assert page.count("<script>") == 2  # plotly.js and the drawing code, both inline (the browser test sees no request)


def test_a_run_report_has_every_metric_its_changes_and_events(reports):
    store = Store(reports["runs"])
    rid = reports["run_id"]
    page = reports["run"].read_text()
    names = {t["name"] for f in figures(page) for t in f["data"]}
    assert names == set(store.metrics(rid))  # every logged measure is a series
    acc = next(f for f in figures(page) if f["layout"]["title"]["text"] == "accuracy")
    steps, values = store.metrics(rid, ["test_acc"])["test_acc"]
    test = next(t for t in acc["data"] if t["name"] == "test_acc")
    assert test["customdata"] == steps and test["y"] == values and acc["layout"]["xaxis"]["type"] == "log"
    assert '<td class="">schedule.steps</td>' in page and '<td class="">optim.weight_decay</td>' in page  # changed from the preset
    assert "t_fit" in page and "Grokking events" in page


def test_a_sweep_report_has_one_series_per_run(reports):
    page = reports["sweep"].read_text()
    test_acc = next(f for f in figures(page) if f["layout"]["title"]["text"] == "test_acc")
    assert len(test_acc["data"]) == 4
    assert all("optim.weight_decay=" in t["name"] for t in test_acc["data"])
    assert "Across seeds" in page


def test_a_reproduction_report_has_its_claims_figures_and_sweeps(reports):
    page = reports["reproduction"].read_text()
    claims = json.loads((reports["root"] / "repro" / "claims.json").read_text())
    for c in claims["claims"]:
        assert html.escape(c["claim"]) in page
        assert f'<td class="{c["result"].replace("/", "")}">{c["result"]}</td>' in page
    markup = re.sub(r"<script.*?</script>", "", page, flags=re.S)
    assert markup.count('src="data:image/png;base64,') == len(list((reports["root"] / "repro").glob("*.png"))) >= 1
    assert all(f"[{sid}]" in page for sid in claims["sweeps"].values())  # each arm's sweep has its section
    assert [arm for arm in claims["sweeps"] if f"<h2>Sweep {arm}</h2>" in page] == list(claims["sweeps"])


def test_the_default_report_sits_beside_what_it_reports(reports, capsys):
    runs = reports["runs"]
    assert main(["report", reports["sweep_id"], "--runs-dir", str(runs)]) == 0
    assert main(["report", reports["run_id"], "--runs-dir", str(runs)]) == 0
    assert main(["report", str(reports["root"] / "repro"), "--runs-dir", str(runs)]) == 0
    printed = capsys.readouterr().out.split()
    expected = [runs / "sweeps" / f"{reports['sweep_id']}.html", runs / "runs" / reports["run_id"] / "report.html"]
    assert printed == [str(p) for p in expected] + [str(reports["root"] / "repro" / "report.html")]
    assert all(Path(p).stat().st_size > 1_000_000 for p in printed)  # plotly.js inlined


def test_refusals_are_one_line_and_write_nothing(reports, tmp_path, capsys):
    from groklab.config import resolve_config
    from groklab.store.records import create_run

    runs = str(reports["runs"])
    cases = [
        (["report", reports["run_id"], "-o", str(tmp_path / "missing" / "r.html")], "does not exist"),
        (["report", reports["run_id"], "-o", str(tmp_path)], "is a folder"),
        (["report", reports["run_id"], "-o", str(tmp_path / "r.txt")], "an HTML file"),
        (["report", "nothing-like-this", "-o", str(tmp_path / "r.html")], "no run, sweep or reproduction"),
    ]
    empty = create_run(Store(tmp_path / "other"), resolve_config(None, TINY), "cpu")  # a run with no metrics yet
    cases.append((["report", empty, "--runs-dir", str(tmp_path / "other"), "-o", str(tmp_path / "r.html")], "has no metrics yet"))
    for argv, message in cases:
        full = argv if "--runs-dir" in argv else [*argv, "--runs-dir", runs]
        assert main(full) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other"]


@pytest.mark.skipif(not CHROMIUM and not os.environ.get("CI"), reason="no Chromium here (.ci/run installs it)")
def test_the_reports_render_in_headless_chromium(reports, tmp_path):
    if not os.environ.get("CI"):  # in CI a missing browser or driver fails the test rather than skipping it
        pytest.importorskip("playwright")
    import numpy as np
    from PIL import Image
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "CI must have Chromium: .ci/run installs Debian's chromium"
    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--disable-quic"]  # fmt: skip
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=flags)
        try:
            for kind in ("run", "sweep", "reproduction"):
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                errors, requests = [], []
                page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
                page.on("request", lambda r, requests=requests: requests.append(r.url))
                url = reports[kind].as_uri()
                page.goto(url)
                page.wait_for_function("document.body.dataset.figuresRendered !== undefined", timeout=60_000)
                drawn = page.evaluate(
                    "() => [...document.querySelectorAll('div.figure')].map(d => "
                    "[Number(d.dataset.series), Number(d.dataset.rendered), d.querySelectorAll('.scatterlayer .trace').length])"
                )
                expected = figures(reports[kind].read_text())
                assert len(drawn) == len(expected) > 0
                for (series, rendered, traces), spec in zip(drawn, expected, strict=True):
                    assert series == rendered == traces == len(spec["data"]) > 0, kind
                assert errors == [], f"{kind}: {errors}"
                assert requests == [url], f"{kind} fetched {requests}"
                shot = tmp_path / f"{kind}.png"
                page.locator("div.figure").first.screenshot(path=str(shot))
                pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=int).reshape(-1, 3)
                colours = {t["line"]["color"] for t in expected[0]["data"]}  # the series' colours (curves can overlap)
                rgbs = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in colours])
                inked = int((np.abs(pixels[:, None, :] - rgbs[None]).sum(-1) < 60).any(1).sum())
                distinct = len(np.unique(pixels, axis=0))
                assert distinct > 50 and inked > 300, f"{kind}: the first figure looks blank ({inked} pixels in its series' colours)"
                page.close()
        finally:
            browser.close()
