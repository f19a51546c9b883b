"""Time spent compiling JAX programs inside a block, from ``jax.monitoring`` duration events.

A sampler or solver that builds its own jitted functions compiles inside the call being
timed; summing JAX's trace, lowering and XLA compile events separates that share, and the count
of backend compiles says whether a second call reused the first one's program.
"""

from __future__ import annotations

from typing import Any


class CompileMeter:
    """Context manager summing tracing, lowering and XLA compile durations (seconds)."""

    EVENTS = {
        "/jax/core/compile/jaxpr_trace_duration": "trace_s",
        "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower_s",
        "/jax/core/compile/backend_compile_duration": "backend_compile_s",
    }

    def __init__(self) -> None:
        self.totals = dict.fromkeys(self.EVENTS.values(), 0.0)
        self.n_backend_compiles = 0

    def _listener(self, event: str, duration_secs: float, **_: Any) -> None:
        key = self.EVENTS.get(event)
        if key is not None:
            self.totals[key] += float(duration_secs)
            if key == "backend_compile_s":
                self.n_backend_compiles += 1

    def __enter__(self) -> CompileMeter:
        import jax.monitoring

        jax.monitoring.register_event_duration_secs_listener(self._listener)
        return self

    def __exit__(self, *exc: object) -> None:
        import jax.monitoring

        jax.monitoring.unregister_event_duration_listener(self._listener)

    @property
    def total_s(self) -> float:
        return sum(self.totals.values())

    def summary(self) -> dict[str, Any]:
        return {
            **self.totals,
            "total_s": self.total_s,
            "n_backend_compiles": self.n_backend_compiles,
        }
