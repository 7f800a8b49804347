"""Reports across runs: one self-contained HTML page and a Markdown summary.

``build_report(run_dirs, out_html, out_md=None, *, max_docs=5000)`` reads only saved run
folders (docs/architecture.md), so a report can be rebuilt at any time.
"""

from vlmhb.report.build import ReportResult, build_report

__all__ = ["ReportResult", "build_report"]
