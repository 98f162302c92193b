"""History: the scan of a whole price matrix in one numba loop (no per-bar Python).

`advance_block` moves a `ScanState` forward by a block of bars; `build_scan_features`
runs it over a matrix in chunks (for progress reporting). Chunking and the live
updater drive the same kernels on the same state, so the numbers do not depend on how
the bars were fed — the tests check that bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numba
import numpy as np

from dolphin.scan import kernels as K
from dolphin.scan.definitions import DEFAULT_WINDOWS, as_price_matrix
from dolphin.scan.features import ScanFeatureArrays
from dolphin.scan.state import ScanState

ProgressFn = Callable[[int, int], None]


def advance_block(state: ScanState, prices: np.ndarray, *, parallel: bool | None = None) -> ScanFeatureArrays:
    """Feed `prices` (bars, n_assets) to `state`; return the features of those bars.

    parallel: spread the windows over numba threads (default: when there are several
    windows and several threads). Threads never share a window, so the result is the
    same either way.
    """
    block = as_price_matrix(prices, state.n_assets)
    T = block.shape[0]
    nw = state.windows.shape[0]
    out = np.empty((T, nw, K.N_OUT))
    nel = np.zeros((T, nw), dtype=np.int64)
    if T == 0:
        return ScanFeatureArrays.from_kernel(tuple(int(w) for w in state.windows), out, nel)
    if parallel is None:
        parallel = nw > 1 and numba.get_num_threads() > 1
    g0 = state.bars
    buf, vbuf, base = K.prepare_block(block, state.last_price, state.gst, state.ring, state.vring)
    if parallel:
        K.run_windows_parallel(g0, T, state.windows, buf, vbuf, base, *state.window_arrays(),  # type: ignore[call-arg,arg-type]
                               out, nel, numba.get_num_threads())
    else:
        K.run_windows_serial(g0, T, state.windows, buf, vbuf, base, *state.window_arrays(), out, nel)  # type: ignore[call-arg]
    K.finish_block(buf, vbuf, base, T, state.gst, state.ring, state.vring)
    return ScanFeatureArrays.from_kernel(tuple(int(w) for w in state.windows), out, nel)


def build_scan_features(prices: np.ndarray, windows: Sequence[int] = DEFAULT_WINDOWS, *,
                        chunk_rows: int | None = None, progress: ProgressFn | None = None,
                        parallel: bool | None = None, state: ScanState | None = None) -> ScanFeatureArrays:
    """The scan of every bar of `prices` (bars, assets), from an empty state or from `state`.

    chunk_rows: bars per kernel call (default: all at once, or 4096 when `progress` is
    given); progress(done_bars, total_bars) is called after each chunk. `state` (its
    windows win over `windows`) is advanced in place: a long history can be scanned
    piece by piece with the same numbers as in one call.
    """
    matrix = as_price_matrix(prices)
    T, n = matrix.shape
    if n == 0:
        raise ValueError("prices: need at least one asset column")
    if state is None:
        state = ScanState.new(n, windows)
    elif state.n_assets != n:
        raise ValueError(f"prices: expected {state.n_assets} asset columns, got {n}")
    if chunk_rows is not None and int(chunk_rows) < 1:
        raise ValueError(f"chunk_rows must be ≥ 1, got {chunk_rows}")
    step = max(T, 1) if chunk_rows is None and progress is None else int(chunk_rows or 4096)
    parts: list[ScanFeatureArrays] = []
    for start in range(0, T, step):
        parts.append(advance_block(state, matrix[start:start + step], parallel=parallel))
        if progress is not None:
            progress(min(start + step, T), T)
    if not parts:
        return advance_block(state, matrix, parallel=parallel)
    return parts[0] if len(parts) == 1 else ScanFeatureArrays.concat(parts)
