"""SoftmaxRegression's HTML representation links to its API page, as scikit-learn's do."""

import re
from pathlib import Path

from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from softmax_core import SoftmaxRegression

ROOT = Path(__file__).resolve().parents[1]
PAGE = "generated/softmax_core.SoftmaxRegression.html"


def docs_base_url():
    """``html_baseurl`` of docs/conf.py, read as text (importing conf.py needs Sphinx)."""
    text = (ROOT / "docs" / "conf.py").read_text()
    return re.search(r'^html_baseurl = "([^"]+)"', text, flags=re.M).group(1)


def doc_links(html):
    return re.findall(r'<a class="sk-estimator-doc-link[^"]*"[^>]*href="([^"]+)"', html)


def test_doc_link_is_the_api_page_of_the_docs():
    link = SoftmaxRegression()._get_doc_link()
    assert link == docs_base_url() + PAGE
    # the page autosummary writes for the class listed in docs/api.rst
    api = (ROOT / "docs" / "api.rst").read_text()
    assert ":toctree: generated/" in api and "   SoftmaxRegression\n" in api
    assert ".. currentmodule:: softmax_core" in api


def test_html_repr_holds_the_link():
    html = SoftmaxRegression(alpha=1e-3)._repr_html_()
    assert doc_links(html) == [docs_base_url() + PAGE]
    assert 'target="_blank"' in html
    # scikit-learn's per-parameter links point into the same page
    assert re.search(r'href="' + re.escape(docs_base_url() + PAGE) + r'#:~:text=alpha', html)


def test_html_repr_of_a_pipeline_links_each_step_to_its_own_docs():
    html = make_pipeline(StandardScaler(), SoftmaxRegression())._repr_html_()
    links = doc_links(html)
    assert docs_base_url() + PAGE in links
    assert any(link.startswith("https://scikit-learn.org/") and "StandardScaler" in link
               for link in links)
