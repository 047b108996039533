"""Render ``benchmarks/README.md`` into the performance page, with a plot.

Design: the benchmark numbers live in one place, the Markdown README next to
the benchmark scripts.  When the build starts, this extension converts that
README (headings, paragraphs, lists, fenced code, pipe tables) into a reST
fragment ``<bench_table_output>/README.inc`` that
``user_guide/performance.rst`` includes, and draws every table that has
ratio columns (header mentioning "ratio", "speedup", "vs", "x", "faster" or a
quotient such as ``scipy/ours``, or cells such as ``3.1x``) as a horizontal
bar chart placed right after it.
Tables without ratio columns are drawn from their numeric columns instead.
Anything it cannot do (missing README, nothing to plot) is a Sphinx warning,
so the ``-W`` build fails instead of publishing a stale page.
"""

import re
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

_RATIO_CELL = re.compile(r"^\s*[-+]?(?:\d+\.?\d*|\.\d+)\s*[x×]\s*$")
_RATIO_HEADER = re.compile(r"ratio|speed-?up|\bvs\.?\b|faster|slower|\bx\b|×|\S\s*/\s*\S", re.I)
_TIME_UNITS = {"ns": 1e-3, "us": 1.0, "µs": 1.0, "μs": 1.0, "ms": 1e3, "s": 1e6}
_CAPTIONS = {
    "ratio": ("The ratio columns of the table above (log scale; the dashed line marks 1). "
              "For peer/ours columns above 1 means softmax-core is faster; for ours/reference "
              "columns (out=/copyto, fused/softmax) above 1 means slower than the reference."),
    "time (µs)": "The time columns of the table above, in microseconds.",
    "value": "The numeric columns of the table above.",
}
_HEADING_CHARS = {2: "~", 3: "^", 4: '"', 5: "'", 6: "'"}


# -- Markdown -> reST ----------------------------------------------------------

def _inline(text, base_dir):
    """Convert Markdown inline markup of one line of text to reST."""
    parts = re.split(r"(`[^`]+`)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(f"``{part[1:-1]}``")
            continue
        part = re.sub(r"!\[([^\]]*)\]\(([^)]+)\)", r"\1", part)

        def link(m):
            label, url = m.group(1), m.group(2)
            if re.match(r"^[a-z]+://", url):
                return f"`{label} <{url}>`__"
            path = (base_dir / url).relative_to(base_dir.parent).as_posix() if base_dir else url
            return f"{label} (``{path}``)" if label and label != url else f"``{path}``"

        part = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", link, part)
        part = re.sub(r"(?<=\w)_(?=\W|$)", r"\\_", part)  # foo_ is a reST reference
        part = re.sub(r"\|", r"\\|", part)
        out.append(part)
    return "".join(out)


def _split_row(line):
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|"):
        line = line[:-1]
    return [c.strip() for c in re.split(r"(?<!\\)\|", line)]


def _is_separator(line):
    cells = _split_row(line)
    return bool(cells) and all(re.fullmatch(r":?-{2,}:?", c) for c in cells)


def parse_markdown(text):
    """Split Markdown into blocks: ("heading", level, text), ("table", rows),
    ("code", lang, lines), ("list", lines), ("para", lines)."""
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            i += 1
        elif stripped.startswith("```"):
            lang = stripped[3:].strip() or "text"
            body = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                body.append(lines[i])
                i += 1
            blocks.append(("code", lang, body))
            i += 1
        elif re.match(r"^#{1,6}\s", stripped):
            level = len(stripped) - len(stripped.lstrip("#"))
            blocks.append(("heading", level, stripped[level:].strip()))
            i += 1
        elif stripped.startswith("|") and i + 1 < len(lines) and _is_separator(lines[i + 1]):
            rows = [_split_row(line)]
            i += 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(_split_row(lines[i]))
                i += 1
            blocks.append(("table", rows))
        elif re.match(r"^([-*+]|\d+\.)\s", stripped):
            items = []
            while i < len(lines) and lines[i].strip():
                items.append(lines[i].rstrip())
                i += 1
            blocks.append(("list", items))
        else:
            para = []
            while (i < len(lines) and lines[i].strip()
                   and not lines[i].strip().startswith(("```", "#", "|"))
                   and not re.match(r"^([-*+]|\d+\.)\s", lines[i].strip())):
                para.append(lines[i].strip())
                i += 1
            blocks.append(("para", para))
    return blocks


def _rst_table(rows, base_dir):
    width = max(len(r) for r in rows)
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in rows:
        row = row + [""] * (width - len(row))
        for j, cell in enumerate(row):
            prefix = "   * - " if j == 0 else "     - "
            out.append(prefix + _inline(cell, base_dir) if cell else prefix.rstrip())
    return out


def markdown_to_rst(blocks, base_dir, figures):
    """reST for ``blocks``; ``figures[k]`` is ``(image, caption)`` shown after table k."""
    out = []
    table_no = 0
    for block in blocks:
        kind = block[0]
        if kind == "heading":
            level, title = block[1], _inline(block[2], base_dir)
            if level == 1:
                continue  # the including page has its own title
            out += [title, _HEADING_CHARS[level] * len(title)]
        elif kind == "table":
            out += _rst_table(block[1], base_dir)
            if figures.get(table_no):
                path, caption = figures[table_no]
                out += ["", f".. figure:: {path}", "   :width: 90%", "", "   " + caption]
            table_no += 1
        elif kind == "code":
            out += [f".. code-block:: {block[1]}", ""] + ["   " + ln for ln in block[2]]
        elif kind == "list":
            out += [_inline(ln, base_dir) for ln in block[1]]
        else:
            out += [_inline(ln, base_dir) for ln in block[1]]
        out.append("")
    return "\n".join(out) + "\n"


# -- plots ---------------------------------------------------------------------

_NUMERIC_CELL = re.compile(r"^[~≈]?\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
                           r"\s*([a-zA-Zµμ×%/]{0,6})$")


def _number(cell):
    """The value of a cell such as ``3.1``, ``3.1x``, ``**12 us**`` or ``1,024``; else None.

    Times (``ns``, ``us``, ``ms``, ``s``) are converted to microseconds.
    """
    m = _NUMERIC_CELL.match(cell.replace(",", "").strip("*_` "))
    if not m:
        return None
    return float(m.group(1)) * _TIME_UNITS.get(m.group(2), 1.0)


def plot_columns(rows):
    """Pick the columns to draw: ratio columns if any, else numeric ones.

    Returns ``(labels, {column header: values}, axis label)`` or ``None``; the
    axis label is "ratio" for ratio columns.
    """
    header, body = rows[0], [r + [""] * (len(rows[0]) - len(r)) for r in rows[1:]]
    if not body:
        return None
    numeric = [j for j in range(len(header))
               if all(_number(r[j]) is not None for r in body if r[j].strip("*_ -"))
               and any(_number(r[j]) is not None for r in body)]
    ratio = [j for j in numeric
             if _RATIO_HEADER.search(header[j])
             or all(_RATIO_CELL.match(r[j].strip("*_ ")) for r in body if r[j].strip("*_ -"))]
    columns = ratio or numeric
    label_cols = [j for j in range(len(header)) if j not in numeric] or [0]
    if not columns:
        return None
    labels = [" / ".join(r[j].strip("*` ") for j in label_cols) for r in body]
    data = {header[j].strip("*` "): [_number(r[j]) for r in body] for j in columns}
    if ratio:
        return labels, data, "ratio"
    timed = any(_is_time(r[j]) for r in body for j in columns)
    return labels, data, "time (µs)" if timed else "value"


def _is_time(cell):
    m = _NUMERIC_CELL.match(cell.replace(",", "").strip("*_` "))
    return bool(m) and m.group(2) in _TIME_UNITS


def draw(labels, data, quantity, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import FuncFormatter

    is_ratio = quantity == "ratio"
    n_rows, n_cols = len(labels), len(data)
    height = 0.8 / n_cols
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.8 + 0.3 * n_rows * max(1, n_cols / 2))))
    y = np.arange(n_rows)
    for k, (name, values) in enumerate(data.items()):
        vals = [np.nan if v is None else v for v in values]
        ax.barh(y + (k - (n_cols - 1) / 2) * height, vals, height=height, label=name)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    positive = [v for vs in data.values() for v in vs if v is not None and v > 0]
    if positive and (is_ratio or max(positive) / min(positive) > 50):
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(
            lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else ""))
    if is_ratio:
        ax.axvline(1.0, color="k", linestyle="--", linewidth=1)
    ax.legend(fontsize="small", loc="best")
    ax.set_xlabel(quantity)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# -- Sphinx hook ---------------------------------------------------------------

def _generate(app):
    source = Path(app.config.bench_table_source)
    out_dir = Path(app.srcdir) / app.config.bench_table_output
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "README.inc"
    if not source.is_file():
        logger.warning("bench_table: %s does not exist; the performance page has no "
                       "benchmark table", source, type="bench_table")
        target.write_text("*The benchmark table is not available in this build.*\n")
        return
    blocks = parse_markdown(source.read_text(encoding="utf-8"))
    figures = {}
    tables = [b for b in blocks if b[0] == "table"]
    for k, (_, rows) in enumerate(tables):
        picked = plot_columns(rows)
        if picked is None:
            continue
        png = out_dir / f"table_{k}.png"
        draw(*picked, png)
        rel = png.relative_to(Path(app.srcdir)).as_posix()
        figures[k] = ("/" + rel, _CAPTIONS.get(picked[2], _CAPTIONS["value"]))
    if not figures:
        logger.warning("bench_table: no table with numeric columns in %s, nothing to plot",
                       source, type="bench_table")
    target.write_text(markdown_to_rst(blocks, source.parent, figures), encoding="utf-8")


def setup(app):
    app.add_config_value("bench_table_source", "", "env")
    app.add_config_value("bench_table_output", "generated/benchmarks", "env")
    app.connect("builder-inited", _generate)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
