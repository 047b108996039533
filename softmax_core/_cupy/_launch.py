"""Launch configuration for the row kernels (pure Python, no CuPy needed).

Two kernel shapes cover every row length:

* ``"warp"`` -- rows of at most :data:`WARP_MAX_COLS` elements.  A group of
  ``group`` lanes (a power of two, at most one warp of 32) owns one row and
  holds it in registers, ``items`` elements per lane, so the row is read
  from global memory exactly once and written once.  Rows shorter than 32
  (e.g. 10 classes) use a sub-warp group (16 lanes for 10 classes) so a warp
  still serves several rows and no lane idles on a whole warp's worth of
  padding.
* ``"block"`` -- longer rows.  One thread block owns one row: pass 1 reads
  the row once and keeps an online ``(max, sum)`` pair per thread (merged by
  a tree reduction across the block), pass 2 reads it again and writes the
  result.  That is two reads instead of the three of max / sum / write, and
  the second read of a row mostly hits L2.  Loads are vectorised to 16 bytes
  (``vec`` elements) when every row start is 16-byte aligned.
"""

from dataclasses import dataclass

__all__ = ["WARP_MAX_COLS", "WARP_BLOCK_THREADS", "MAX_THREADS", "MIN_BLOCK_THREADS",
           "LaunchConfig", "launch_config", "next_pow2", "reduce_threads"]

WARP_SIZE = 32
WARP_MAX_COLS = 1024  # longest row kept in registers: 32 lanes x 32 items
WARP_BLOCK_THREADS = 128  # threads per block for the warp kernels
MIN_BLOCK_THREADS = 128
MAX_THREADS = 1024
VEC_BYTES = 16  # widest load
CHUNK_ELEMENTS = 8  # elements a thread has in flight per iteration of pass 1
ITEMS_PER_THREAD = 8  # target elements per thread per row in the block kernel
REDUCE_THREADS = 1024  # single-block reductions (loss sums, denominators)
MAX_GRID = 2**31 - 1


@dataclass(frozen=True)
class LaunchConfig:
    """How to launch a row kernel over ``n_rows`` rows of ``n_cols`` elements.

    Attributes
    ----------
    kind : {"warp", "block"}
    threads : int
        Threads per block.
    group : int
        Threads that cooperate on one row (``threads`` for ``"block"``).
    items : int
        Register elements per thread (``"warp"``; 0 for ``"block"``).
    vec : int
        Elements per vector load (``"block"``; 1 for ``"warp"``).
    unroll : int
        Vector loads in flight per thread and iteration (``"block"``).
    rows_per_block : int
    grid : int
        Blocks to launch.
    """

    kind: str
    threads: int
    group: int
    items: int
    vec: int
    unroll: int
    rows_per_block: int
    grid: int

    @property
    def key(self):
        """The compile-time part of the configuration (what a kernel is built for)."""
        if self.kind == "warp":
            return ("warp", self.threads, self.group, self.items)
        return ("block", self.threads, self.vec, self.unroll)


def next_pow2(n):
    """Smallest power of two >= ``n`` (1 for ``n <= 1``)."""
    n = int(n)
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def _cdiv(a, b):
    return -(-a // b)


def launch_config(n_rows, n_cols, itemsize, aligned=True, *, max_cols_warp=WARP_MAX_COLS):
    """Choose the launch configuration for a row-wise kernel.

    Parameters
    ----------
    n_rows, n_cols : int
        Number of rows (>= 1) and row length (>= 1).
    itemsize : int
        Bytes per element of the stored array (2, 4 or 8).
    aligned : bool
        Whether the array's first element is 16-byte aligned.  Rows are then
        aligned too when ``n_cols * itemsize`` is a multiple of 16.
    max_cols_warp : int
        Longest row that takes the register-resident warp kernel.

    Returns
    -------
    LaunchConfig
    """
    n_rows = int(n_rows)
    n_cols = int(n_cols)
    if n_rows < 1 or n_cols < 1:
        raise ValueError(f"launch_config needs n_rows >= 1 and n_cols >= 1, got "
                         f"({n_rows}, {n_cols})")
    if itemsize not in (2, 4, 8):
        raise ValueError(f"itemsize must be 2, 4 or 8, got {itemsize}")
    if n_cols <= max_cols_warp:
        width = next_pow2(n_cols)
        group = min(WARP_SIZE, width)
        items = width // group
        rows_per_block = WARP_BLOCK_THREADS // group
        grid = _cdiv(n_rows, rows_per_block)
        if grid > MAX_GRID:
            raise ValueError(f"too many rows for one launch: {n_rows}")
        return LaunchConfig("warp", WARP_BLOCK_THREADS, group, items, 1, 1, rows_per_block,
                            grid)
    if n_rows > MAX_GRID:
        raise ValueError(f"too many rows for one launch: {n_rows}")
    vec = VEC_BYTES // itemsize
    if not aligned or n_cols % vec:
        vec = 1
    unroll = max(1, CHUNK_ELEMENTS // vec)
    threads = next_pow2(_cdiv(n_cols, ITEMS_PER_THREAD))
    threads = max(MIN_BLOCK_THREADS, min(MAX_THREADS, threads))
    return LaunchConfig("block", threads, threads, 0, vec, unroll, 1, n_rows)


def reduce_threads(n):
    """Threads for a single-block reduction over ``n`` elements (a multiple of 32)."""
    return max(WARP_SIZE, min(REDUCE_THREADS, next_pow2(n)))
