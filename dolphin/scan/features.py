"""Scan outputs: one bar (`ScanFeatures`, live) and many bars (`ScanFeatureArrays`, history).

Columns follow the window order; `vel_div` is velocity of the first (shortest) window
minus velocity of the last (longest) one — v50 − v750 with the default windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dolphin.scan.definitions import vel_div


def _window_index(windows: tuple[int, ...], w: int) -> int:
    try:
        return windows.index(int(w))
    except ValueError:
        raise KeyError(f"window {w} not in {windows}") from None


@dataclass(frozen=True, slots=True)
class ScanFeatures:
    """The scan of one bar. Per-window arrays are indexed like `windows`.

    Features of a window with fewer than two eligible assets are NaN; `loadings[k]` is the
    unit top eigenvector of window k over all assets (sign: loadings sum ≥ 0), NaN for an
    asset that was not eligible in that window. The five float features are stored as one
    (nw, 5) block — one copy per bar on the live path — and exposed as named views.
    """

    windows: tuple[int, ...]
    values: np.ndarray        # (nw, 5): lambda_max, share, velocity, acceleration, instability
    n_eligible: np.ndarray    # (nw,) int64
    vel_div: float
    loadings: np.ndarray      # (nw, n_assets)

    @property
    def lambda_max(self) -> np.ndarray:
        """Largest eigenvalue of the window's correlation matrix, in [1, n_eligible]."""
        return self.values[:, 0]

    @property
    def share(self) -> np.ndarray:
        """lambda_max / n_eligible: the market-mode share, in [1/n, 1]."""
        return self.values[:, 1]

    @property
    def velocity(self) -> np.ndarray:
        """share(t) − share(t−1)."""
        return self.values[:, 2]

    @property
    def acceleration(self) -> np.ndarray:
        """velocity(t) − velocity(t−1)."""
        return self.values[:, 3]

    @property
    def instability(self) -> np.ndarray:
        """1 − |u_t · u_{t−1}| over the assets eligible at both bars, in [0, 1]."""
        return self.values[:, 4]

    def index(self, w: int) -> int:
        """Position of window w in the per-window arrays."""
        return _window_index(self.windows, w)

    def to_dict(self) -> dict[str, object]:
        """Plain-Python form (for JSON payloads): per-window values keyed ``w{window}``."""
        out: dict[str, object] = {"vel_div": float(self.vel_div)}
        for k, w in enumerate(self.windows):
            out[f"w{w}"] = {
                "lambda_max": float(self.lambda_max[k]),
                "share": float(self.share[k]),
                "velocity": float(self.velocity[k]),
                "acceleration": float(self.acceleration[k]),
                "instability": float(self.instability[k]),
                "n_eligible": int(self.n_eligible[k]),
            }
        return out


@dataclass(frozen=True, slots=True)
class ScanFeatureArrays:
    """The scan of a span of bars: each per-window array is (bars, nw)."""

    windows: tuple[int, ...]
    lambda_max: np.ndarray
    share: np.ndarray
    velocity: np.ndarray
    acceleration: np.ndarray
    instability: np.ndarray
    n_eligible: np.ndarray   # int64
    vel_div: np.ndarray      # (bars,)

    @property
    def bars(self) -> int:
        return int(self.vel_div.shape[0])

    def index(self, w: int) -> int:
        """Column of window w in the per-window arrays."""
        return _window_index(self.windows, w)

    def column(self, name: str, w: int) -> np.ndarray:
        """One feature of one window over all bars, e.g. ``column("velocity", 750)``."""
        return getattr(self, name)[:, self.index(w)]

    @classmethod
    def from_kernel(cls, windows: tuple[int, ...], out: np.ndarray, nel: np.ndarray) -> ScanFeatureArrays:
        """Wrap the kernels' (bars, nw, 5) output block."""
        vel = np.ascontiguousarray(out[:, :, 2])
        return cls(windows=windows,
                   lambda_max=np.ascontiguousarray(out[:, :, 0]),
                   share=np.ascontiguousarray(out[:, :, 1]),
                   velocity=vel,
                   acceleration=np.ascontiguousarray(out[:, :, 3]),
                   instability=np.ascontiguousarray(out[:, :, 4]),
                   n_eligible=nel.copy(),
                   vel_div=vel_div(vel[:, 0], vel[:, -1]))

    @classmethod
    def concat(cls, parts: list[ScanFeatureArrays]) -> ScanFeatureArrays:
        """Join consecutive spans (all with the same windows)."""
        if not parts:
            raise ValueError("concat: no parts")
        first = parts[0]
        return cls(windows=first.windows,
                   **{name: np.concatenate([getattr(p, name) for p in parts])
                      for name in ("lambda_max", "share", "velocity", "acceleration",
                                   "instability", "n_eligible", "vel_div")})
