"""Open a report.html in headless Chromium: a screenshot, and a list of problems (script errors,
images that did not load, resources fetched from anywhere but the file itself).

Used by the tests (``tests/test_report_html.py``) and by hand::

    python -m trialbayes.report.browser_check outputs/mirocals/report.html shot.png

A copy of the page gets a small probe script (first in <head>, so it sees every error) that, once
the page has loaded, writes its findings into a <pre id="tb-browser-check"> element; Chromium's
``--dump-dom`` prints the resulting DOM. The report itself is not changed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROBE = """<script>
window.__tbErrors = [];
window.addEventListener("error", function (e) {
  var t = e.target;
  window.__tbErrors.push(String(e.message || (t && (t.src || t.href)) || e.type));
}, true);
window.addEventListener("unhandledrejection", function (e) {
  window.__tbErrors.push(String(e.reason));
});
window.addEventListener("load", function () {
  var broken = [];
  document.querySelectorAll("img").forEach(function (im) {
    if (!im.complete || im.naturalWidth === 0)
      broken.push(im.getAttribute("data-figure") || im.alt || "?");
  });
  var fetched = performance.getEntriesByType("resource").map(function (r) { return r.name; })
    .filter(function (n) { return n.indexOf("data:") !== 0; });
  var out = document.createElement("pre");
  out.id = "tb-browser-check";
  out.textContent = JSON.stringify({errors: window.__tbErrors, broken_images: broken,
    fetched: fetched, images: document.querySelectorAll("img").length,
    missing_figures: document.querySelectorAll(".missing").length,
    height: document.body.scrollHeight});
  document.body.appendChild(out);
});
</script>"""

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
]


def chromium() -> str | None:
    """Path of a Chromium or Chrome executable on PATH, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(exe: str, args: list[str], profile: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [exe, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def check(
    html: Path,
    screenshot: Path | None = None,
    width: int = 1200,
    height: int = 2400,
    timeout: float = 120,
) -> dict:
    """Load ``html`` in headless Chromium; return the probe's findings plus ``problems`` (a list of
    strings, empty when the page is fine). Raises RuntimeError if Chromium is missing or fails."""
    exe = chromium()
    if exe is None:
        raise RuntimeError("no chromium on PATH")
    html = Path(html).resolve()
    with tempfile.TemporaryDirectory(prefix="tb-chromium-") as tmp:
        probe = Path(tmp) / html.name
        text = html.read_text(encoding="utf-8")
        probe.write_text(text.replace("<head>", "<head>\n" + PROBE, 1), encoding="utf-8")
        res = _run(
            exe,
            ["--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
            f"{tmp}/profile",
            timeout,
        )
        m = re.search(r'<pre id="tb-browser-check">(.*?)</pre>', res.stdout, re.S)
        if not m:
            raise RuntimeError(
                f"chromium printed no probe result (exit {res.returncode}): {res.stderr[-800:]}"
            )
        found = json.loads(
            m.group(1)
            .replace("&quot;", '"')
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
        )
        if screenshot is not None:
            shot = _run(
                exe,
                [
                    f"--screenshot={Path(screenshot).resolve()}",
                    f"--window-size={width},{height}",
                    html.as_uri(),
                ],
                f"{tmp}/profile2",
                timeout,
            )
            if not Path(screenshot).is_file():
                raise RuntimeError(
                    f"chromium wrote no screenshot (exit {shot.returncode}): {shot.stderr[-800:]}"
                )
    found["problems"] = problems(found, text)
    return found


def problems(found: dict, text: str) -> list[str]:
    """The problems a check found, one line each: page errors, images that did not load, anything
    fetched from outside the file, figures marked missing, and network addresses in ``text``."""
    out = [f"page error: {e}" for e in found["errors"]]
    out += [f"image did not load: {b}" for b in found["broken_images"]]
    out += [f"fetched from outside the file: {u}" for u in found["fetched"]]
    if found["missing_figures"]:
        out.append(f"{found['missing_figures']} figure(s) marked missing")
    if re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text) or "url(http" in text:
        out.append("the page references a network address")
    return out


USAGE = "usage: python -m trialbayes.report.browser_check REPORT.html [SCREENSHOT.png]"


def main(argv: list[str]) -> int:
    """Exit 0: no problems; 1: problems (listed); 2: wrong arguments or no such report."""
    if not argv or len(argv) > 2 or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    if not Path(argv[0]).is_file():
        print(f"no such report: {argv[0]}\n{USAGE}", file=sys.stderr)
        return 2
    found = check(Path(argv[0]), Path(argv[1]) if len(argv) > 1 else None)
    print(json.dumps(found, indent=2))
    return 1 if found["problems"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
