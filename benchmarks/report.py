"""Report at scale: 50 runs x 5,000 documents. Build time, file size, browser load time.

Run from the checkout: ``.venv/bin/python benchmarks/report.py [--runs 50] [--docs 5000]
[--work DIR]``. Fake run folders come from ``tests/fixtures_runs.py`` (one image per document,
real PNGs); ``--work`` keeps them between invocations. Measured:

* build: ``build_report`` wall time and the process's peak RSS;
* size: report.html bytes, and how much of it is plotly.js, thumbnails and drill-down data;
* browser (headless Chromium over the DevTools pipe): seconds from navigation until the load
  event, until report.js has rendered the first drill-down page (``data-ready-ms``) and until
  every plotly chart has drawn; then the time of one "errors only" filter pass and one page
  turn in the drill-down; JS errors (must be none).

Measured 2026-11-28 on the shared 2-core dev box (load average ~3-5), runs reused: build 14.5 s,
peak RSS 481 MB; report.html 23.3 MB (plotly.js 4.8, thumbnails 7.4, drill-down text 8.4,
charts 2.6); drill-down 1,642 of 5,000 documents (the ~400k-cell budget); in Chromium 156:
load event 3.8 s, all 6 charts drawn 3.8 s, errors-only filter 0.05 s, page turn 0.04 s,
JS heap 103 MB, no JS errors.
"""

from __future__ import annotations

import argparse
import random
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures_runs import RunSpec, make_dataset, write_run  # noqa: E402
from tests.test_report_browser import Chromium  # noqa: E402
from vlmhb.report import build_report  # noqa: E402

MODELS = [
    ("Qwen/Qwen2-VL-2B-Instruct", 6_000),
    ("Qwen/Qwen2-VL-7B-Instruct", 18_000),
    ("Qwen/Qwen2.5-VL-3B-Instruct", 9_000),
    ("Qwen/Qwen2.5-VL-7B-Instruct", 19_000),
    ("OpenGVLab/InternVL2-2B", 5_500),
    ("OpenGVLab/InternVL2-8B", 20_000),
    ("llava-hf/llava-1.5-7b-hf", 16_000),
    ("google/paligemma-3b", 8_000),
    ("HuggingFaceTB/SmolVLM-Instruct", 4_500),
    ("microsoft/Phi-3.5-vision", 9_500),
]


def campaign_specs(n_runs: int, seed: int = 1) -> list[RunSpec]:
    """``n_runs`` varied runs: models x backends x prompts, with the usual gaps sprinkled in."""
    rng = random.Random(seed)
    specs = [
        RunSpec("tesseract-rus", "tesseract", skill=0.55, gpus=0, samples_per_s=12.0, vram_mb=0)
    ]
    combos = [
        (m, v, b, p, mode)
        for m, v in MODELS
        for b in ("hf", "vllm", "sglang")
        for p, mode in (("default", "field"), ("short", "field"), ("default", "document"))
    ]
    rng.shuffle(combos)
    for i, (model, vram, backend, prompts, mode) in enumerate(combos[: n_runs - 1]):
        specs.append(
            RunSpec(
                model,
                backend,
                prompts=prompts,
                mode=mode,
                skill=rng.uniform(0.4, 0.95),
                error_rate=rng.uniform(0, 0.03),
                samples_per_s=rng.uniform(3, 40),
                vram_mb=vram * rng.uniform(1, 1.6),
                gpus=2 if vram > 15_000 else 1,
                has_metrics=i % 17 != 5,
                has_resources=i % 13 != 7,
            )
        )
    return specs


def make_campaign(work: Path, n_runs: int, n_docs: int) -> Path:
    """Write (or reuse) the fake campaign under ``work``; return its runs folder."""
    runs = work / "runs"
    if runs.is_dir() and len(list(runs.glob("*/run.json"))) == n_runs:
        print(f"reusing {runs}")
        return runs
    started = time.perf_counter()
    refs = make_dataset(work, n_docs, seed=1)
    print(f"dataset: {n_docs} documents with images in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    for spec in campaign_specs(n_runs):
        write_run(work, spec, refs, seed=1)
    print(f"runs: {n_runs} run folders in {time.perf_counter() - started:.0f} s")
    return runs


def size_breakdown(html: str) -> dict[str, float]:
    """MB of the page taken by plotly.js, thumbnails, the drill-down blob and the rest."""
    total = len(html.encode())
    thumbs = sum(len(m) for m in re.findall(r"data:image/jpeg;base64,[A-Za-z0-9+/=]+", html))
    start = html.find('<script type="application/json" id="drill-data">')
    drill = html.find("</script>", start) - start
    plotly_start = html.find("<script>")
    plotly = html.find("</script>", plotly_start) - plotly_start
    mb = 1 / 1e6
    return {
        "total": total * mb,
        "plotly.js": plotly * mb,
        "thumbnails": thumbs * mb,
        "drill-down text": (drill - thumbs) * mb,
        "charts + rest": (total - drill - plotly) * mb,
    }


def browser_timings(page: Path) -> dict[str, float]:
    """Load, render and interaction timings of the page in headless Chromium (seconds)."""
    browser = Chromium(timeout=300)
    try:
        started = time.monotonic()
        browser.call("Page.navigate", session=True, url=page.resolve().as_uri())
        browser.wait_for("document.readyState === 'complete'", timeout=300)
        loaded = time.monotonic() - started
        browser.wait_for("document.documentElement.hasAttribute('data-ready-ms')", timeout=300)
        n_plots = browser.evaluate("document.querySelectorAll('.js-plotly-plot').length")
        browser.wait_for(
            f"document.querySelectorAll('svg.main-svg').length >= {n_plots}", timeout=300
        )
        drawn = time.monotonic() - started
        ready_ms = float(browser.evaluate("document.documentElement.getAttribute('data-ready-ms')"))
        filt = browser.evaluate(
            "(() => { const t = performance.now(); const d = window.vlmhbDrill;"
            " d.errorsOnly = true; d.render(); return performance.now() - t; })()"
        )
        turn = browser.evaluate(
            "(() => { const t = performance.now(); const d = window.vlmhbDrill;"
            " d.page += 1; d.render(); return performance.now() - t; })()"
        )
        heap = browser.evaluate("performance.memory ? performance.memory.usedJSHeapSize : 0")
        errors = browser.errors()
        browser.screenshot(page.with_name("report-benchmark.png"))
    finally:
        browser.close()
    return {
        "load event s": loaded,
        "drill-down ready s (performance.now)": ready_ms / 1000,
        "all charts drawn s": drawn,
        "plots": n_plots,
        "errors-only filter s": filt / 1000,
        "page turn s": turn / 1000,
        "JS heap MB": heap / 1e6,
        "JS errors": len(errors),
    }


def main() -> None:
    """Build the campaign, the report, and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--max-docs", type=int, default=5000)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="vlmhb-report-bench-"))
    runs = make_campaign(work, args.runs, args.docs)

    started = time.perf_counter()
    result = build_report([runs], work / "out" / "report.html", max_docs=args.max_docs)
    build_s = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    html = result.html.read_text("utf-8")
    shown = re.search(r"drill-down shows (\d+) of (\d+)", html)
    print(f"\n{args.runs} runs x {args.docs} documents -> {result.html}")
    print(f"build: {build_s:.1f} s, peak RSS {peak_mb:.0f} MB (generation included unless reused)")
    print(
        "drill-down: "
        + (f"{shown.group(1)} of {shown.group(2)} documents" if shown else "all documents")
    )
    for name, value in size_breakdown(html).items():
        print(f"size {name}: {value:.1f} MB")
    for name, value in browser_timings(result.html).items():
        print(
            f"browser {name}: {value:.2f}"
            if isinstance(value, float)
            else f"browser {name}: {value}"
        )


if __name__ == "__main__":
    main()
