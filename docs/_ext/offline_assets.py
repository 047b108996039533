"""A site that works offline: local MathJax, and a check for remote assets.

Two parts:

* MathJax is served from the built site.  The ``sphinx-mathjax-offline``
  package (in the ``[docs]`` extra) ships MathJax 3.2.2 as plain files; at
  ``config-inited`` its ``static`` folder is added to ``html_static_path``,
  so Sphinx copies them to ``_static/mathjax/``, and ``mathjax_path`` (set in
  ``conf.py`` to ``mathjax/tex-mml-chtml.js``) points there.  MathJax loads
  its fonts and any extension it needs relative to that script, so the
  browser asks no other host.  (The package is used for its files only; its
  own Sphinx extension is not loaded.)
* At ``build-finished`` every built page is parsed and the build fails
  (an error per offending reference and exit status 1, also without ``-W``) if a page
  loads a script, a stylesheet or any other resource from another host
  (``<script src>``, ``<link rel="stylesheet" | "preload" | "icon" ...
  href>``, ``<img src>``, ``<iframe src>``, ...; ``http://``, ``https://``
  and protocol-relative ``//host`` URLs alike), or a script or stylesheet
  that is missing from the build.  Ordinary hyperlinks (``<a href>``) are not
  requests and are allowed.
"""

import os
import posixpath
from html.parser import HTMLParser
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sphinx.errors import ConfigError
from sphinx.util import logging

logger = logging.getLogger(__name__)

MATHJAX_PACKAGE = "sphinx-mathjax-offline"  # the import name has hyphens, as its folder
# folders of the output that hold assets or copies, not pages
SKIP_DIRS = {"_static", "_sources", "_images", "_downloads", ".doctrees"}
# <link rel=...> values that make the browser fetch the href
FETCHING_RELS = {"stylesheet", "preload", "modulepreload", "prefetch", "icon",
                 "shortcut", "apple-touch-icon", "manifest", "preconnect", "dns-prefetch"}
# elements whose src (or data) the browser fetches
SRC_TAGS = {"script", "img", "iframe", "audio", "video", "source", "track", "embed",
            "input", "object"}


def mathjax_static_dir():
    """The folder that holds ``mathjax/tex-mml-chtml.js``, from the installed package."""
    spec = find_spec(MATHJAX_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"the docs need a local MathJax: install the {MATHJAX_PACKAGE!r} package, "
            "which the [docs] extra lists (pip install -e \".[docs]\")")
    static = Path(next(iter(spec.submodule_search_locations))) / "static"
    if not (static / "mathjax" / "tex-mml-chtml.js").is_file():
        raise ConfigError(f"{static} has no mathjax/tex-mml-chtml.js")
    return static


def is_remote(url):
    """True for a URL on another host: ``scheme://...`` or ``//host/...``."""
    url = url.strip()
    if url.startswith("//"):
        return True
    parts = urlsplit(url)
    return bool(parts.scheme) and parts.scheme.lower() not in {"data", "blob", "about",
                                                                "javascript", "mailto"}


class _AssetParser(HTMLParser):
    """Collect ``(what, url)`` for every resource a page makes the browser fetch."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.fetched = []

    def handle_starttag(self, tag, attrs):
        attrs = {name: (value or "") for name, value in attrs}
        if tag == "link" and attrs.get("href"):
            rels = set(attrs.get("rel", "").lower().split())
            if rels & FETCHING_RELS:
                what = "stylesheet" if "stylesheet" in rels else f'link rel="{attrs["rel"]}"'
                self.fetched.append((what, attrs["href"]))
        elif tag in SRC_TAGS:
            for name in ("src", "data", "poster"):
                if attrs.get(name):
                    self.fetched.append((tag, attrs[name]))
            for candidate in attrs.get("srcset", "").split(","):
                if candidate.strip():
                    self.fetched.append((tag, candidate.split()[0]))

    handle_startendtag = handle_starttag


def page_problems(page, outdir):
    """Remote resources of one built page, and local scripts/stylesheets it lacks."""
    parser = _AssetParser()
    parser.feed(page.read_text(encoding="utf-8"))
    problems = []
    for what, url in parser.fetched:
        if is_remote(url):
            problems.append(f"{what} from another host: {url}")
        elif what in ("script", "stylesheet"):
            path = unquote(urlsplit(url).path)
            if not path:
                continue
            target = Path(posixpath.normpath(posixpath.join(
                page.parent.relative_to(outdir).as_posix(), path)))
            if not (outdir / target).is_file():
                problems.append(f"{what} missing from the build: {url}")
    return problems


def check_offline(app, exception):
    """Fail the build if a built page needs another host (or a missing local asset)."""
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    found = {}
    for root, dirs, files in os.walk(outdir):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(files):
            if name.endswith(".html"):
                page = Path(root) / name
                problems = page_problems(page, outdir)
                if problems:
                    found[page.relative_to(outdir).as_posix()] = problems
    for page, problems in found.items():
        for problem in problems:
            logger.error("offline_assets: %s: %s", page, problem, type="offline_assets")
    if found:
        app.statuscode = 1  # a failed build with or without -W
        logger.error("offline_assets: %d built page(s) would not work offline: a page "
                     "must load nothing from another host (docs/_ext/offline_assets.py)",
                     len(found), type="offline_assets")
        return
    logger.info("offline_assets: no built page loads anything from another host")


def add_mathjax_files(app, config):
    static = str(mathjax_static_dir())
    if static not in config.html_static_path:
        config.html_static_path.append(static)
    if is_remote(config.mathjax_path):
        raise ConfigError(f"mathjax_path {config.mathjax_path!r} is on another host")


def setup(app):
    app.connect("config-inited", add_mathjax_files)
    app.connect("build-finished", check_offline)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
