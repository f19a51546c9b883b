"""One NUTS attempt on one shard, and the retry schedule.

``run_attempt`` draws per-chain starts with the attempt's init key and runs NumPyro's NUTS
kernel on the shard's NumPyro model (``target.py``), one chain per virtual CPU device, keyed
only by (seed, shard id, attempt) through ``hpcfit.parallel.keys.attempt_keys``. It never
raises: a missing device, a start that stays non-finite, or any exception becomes an
:class:`AttemptResult` with a status.

One compiled program per rank. NumPyro's ``MCMC.run`` with parallel chains maps a new closure
over the data on every call, so XLA compiles the whole sampler again for every shard. Here the
chain loop (the kernel's ``init`` and ``sample``, as ``MCMC`` runs them: the same keys, the same
warmup and collection) is mapped once per (target, preconditioner, K, settings) and takes the
shard's data as an argument. Shards padded to one length (``shard_data(..., size=)``) then
reuse it: a rank's second shard compiles nothing. A retry changes the loop's length and compiles
anew.
"""

from __future__ import annotations

import time
import traceback
import weakref
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import NUTS
from numpyro.infer.util import potential_energy

from hpcfit.cmc.precondition import Preconditioner
from hpcfit.cmc.target import MODES, Mode, ShardTarget, numpyro_model
from hpcfit.parallel.keys import attempt_keys
from hpcfit.runtime.compile_meter import CompileMeter

EXTRA_FIELDS = ("diverging", "accept_prob", "num_steps", "energy")
MAX_REDRAWS = 10  # a non-finite start is redrawn up to 10 times, then bad_init
TARGET_ACCEPT_CAP = 0.99  # each retry halves the distance to 0.99


@dataclass(frozen=True)
class NutsSettings:
    """Sampler settings of one attempt (``cmc.*`` and their defaults)."""

    num_warmup: int = 500
    num_samples: int = 1000
    num_chains: int = 4
    target_accept: float = 0.9
    max_tree_depth: int = 10
    dense_mass: bool = False
    init_jitter: float = 0.5
    precondition: Mode = "whiten"
    thin: int = 1  # keep every thin-th of num_samples·thin iterations (set by retries)

    def __post_init__(self) -> None:
        for name in ("num_warmup", "num_samples", "num_chains", "max_tree_depth", "thin"):
            v, least = getattr(self, name), {"num_warmup": 0, "num_chains": 2}.get(name, 1)
            if isinstance(v, bool) or not isinstance(v, int) or v < least:
                raise ValueError(f"cmc.{name} must be an integer >= {least}, got {v!r}")
        if not 0.0 < self.target_accept < 1.0:
            raise ValueError(f"cmc.target_accept must lie in (0, 1), got {self.target_accept!r}")
        if not self.init_jitter >= 0.0:
            raise ValueError(f"cmc.init_jitter must be >= 0, got {self.init_jitter!r}")
        if self.precondition not in MODES:
            raise ValueError(f"cmc.precondition must be one of {MODES}, got {self.precondition!r}")


ESS_GATES = frozenset({"min_ess_bulk_per_chain", "min_ess_tail_per_chain"})
"""Gates that more draws of healthy chains cure."""


def retry_settings(previous: NutsSettings, failed_gates: Collection[str] = ()) -> NutsSettings:
    """Settings of the attempt after one with ``previous`` that failed.

    * Only ESS gates failed (``failed_gates`` ⊆ :data:`ESS_GATES`): the chains mixed but were
      short, and more warmup does not lengthen them. The next attempt runs twice the kept
      iterations (``thin`` × 2) and keeps every ``thin``-th, so the draw count, the warmup and
      the target acceptance stay; the ESS per kept draw rises where the autocorrelation time
      exceeds the thinning.
    * Anything else (R-hat, divergences, BFMI, non-finite draws, an exception, a bad start, or
      no gate named): warmup × 2 and the target acceptance halfway to 0.99; in float64
      0.9 → 0.9450000000000001 → 0.9675.
    """
    if failed_gates and set(failed_gates) <= ESS_GATES:
        return replace(previous, thin=previous.thin * 2)
    t = previous.target_accept + (TARGET_ACCEPT_CAP - previous.target_accept) / 2
    return replace(previous, target_accept=t, num_warmup=previous.num_warmup * 2)


@dataclass(frozen=True)
class AttemptResult:
    """Outcome of one attempt. Draw arrays are float64 (chains, samples, P), extra fields
    (chains, samples); all are None unless ``status == "ok"``.

    ``status``: "ok", "failed" (an exception or too few devices; ``error_type`` and
    ``traceback`` set for an exception) or "bad_init" (starts non-finite after 10 redraws).
    ``init_redraws`` counts the redraw rounds used; ``wall_s`` is the attempt's wall time (s).
    Draws hold ``target.output_names``: a target with a :class:`Completion` samples fewer
    quantities and the rest are drawn back per draw (keyed ``fold_in(k_mcmc, 1)``).
    """

    status: str
    message: str
    shard_id: int
    attempt: int
    names: tuple[str, ...]
    target_accept: float
    num_warmup: int
    num_samples: int
    num_chains: int
    wall_s: float
    thin: int = 1
    draws_u: np.ndarray | None = None
    draws_theta: np.ndarray | None = None
    diverging: np.ndarray | None = None
    accept_prob: np.ndarray | None = None
    num_steps: np.ndarray | None = None
    energy: np.ndarray | None = None
    init_redraws: int = 0
    step_size: np.ndarray | None = None  # adapted NUTS step size per chain
    warmup_steps: np.ndarray | None = None  # leapfrog steps of each chain's warmup (all of it)
    completion_margin_sd: float | None = None  # see ``Completion``; None without one
    n_compiles: int = 0  # XLA backend compiles during the attempt (0: a reused program)
    compile_s: float = 0.0  # tracing, lowering and compiling during the attempt (s)
    error_type: str | None = None
    traceback: str | None = field(default=None, repr=False)

    @property
    def extra(self) -> dict[str, np.ndarray]:
        """The NUTS extra fields by name, for ``diagnostics.shard_diagnostics``."""
        return {k: getattr(self, k) for k in EXTRA_FIELDS}


def initial_params(
    target: ShardTarget,
    data: Any,
    precond: Preconditioner,
    energy: Callable[[dict[str, jax.Array], Any], jax.Array],
    s: NutsSettings,
    k_init,
) -> tuple[dict[str, jax.Array] | None, int]:
    """Per-chain starts in sampler coordinates, redrawing non-finite ones.

    z₀,c = init_jitter·ε_c with ε ~ N(0, I) from ``k_init``; round j = 1…10 redraws the chains
    whose potential is not finite from ``fold_in(k_init, j)`` (finite starts are kept). In mass
    / none mode the start is u₀ = û + L z₀, one (chains,) array per site.

    Returns
    -------
    (params, redraws)  params is a dict with a leading chain axis, or None after 10 redraws
    """
    chol, u_hat = jnp.asarray(precond.chol), jnp.asarray(precond.u_hat)

    def to_params(z):
        if s.precondition == "whiten":
            return {"z": z}
        u = u_hat[None, :] + z @ chol.T
        return {n: u[:, p] for p, n in enumerate(target.names)}

    def draw(j: int) -> jax.Array:
        key = k_init if j == 0 else jax.random.fold_in(k_init, j)
        return s.init_jitter * jax.random.normal(key, (s.num_chains, target.size), jnp.float64)

    z = draw(0)
    for j in range(MAX_REDRAWS + 1):
        bad = ~jnp.isfinite(energy(to_params(z), data))
        if not bool(jnp.any(bad)):
            return to_params(z), j
        if j < MAX_REDRAWS:
            z = jnp.where(bad[:, None], draw(j + 1), z)
    return None, MAX_REDRAWS


@dataclass(frozen=True)
class Program:
    """The compiled pieces of one (target, preconditioner, K, settings), data as an argument.

    energy : (params with a chain axis, data) -> Float64[Array, "C"]  potential of each start
    chains : (keys (C,), starts, data) -> ((u, θ, diverging, accept_prob, num_steps, energy),
        step size, warmup leapfrog steps)  every chain's warmup and kept draws, mapped over the
        local devices
    """

    energy: Callable[..., Any]
    chains: Callable[..., Any]


_PROGRAMS: weakref.WeakKeyDictionary[ShardTarget, dict[tuple, Program]] = (
    weakref.WeakKeyDictionary()
)


def program(
    target: ShardTarget, precond: Preconditioner, n_shards: int, s: NutsSettings
) -> Program:
    """The program for these inputs, built on first use and kept while ``target`` lives."""
    key = (
        n_shards,
        s,
        tuple(precond.names),
        *(a.tobytes() for a in (precond.u_hat, precond.chol, precond.cov_w)),
    )
    per_target = _PROGRAMS.setdefault(target, {})
    if key not in per_target:
        per_target[key] = _build_program(target, precond, n_shards, s)
    return per_target[key]


def _build_program(
    target: ShardTarget, precond: Preconditioner, n_shards: int, s: NutsSettings
) -> Program:
    """NUTS on ``numpyro_model``: dense mass over all sampled sites with ``dense_mass``, Σ_w as
    the inverse mass matrix in ``mass`` mode; the loop of ``MCMC.run`` (keys split per chain,
    ``num_warmup`` adapting steps, then ``num_samples`` kept) with the data as an argument."""
    model = numpyro_model(target, precond, n_shards, s.precondition)
    names = ("z",) if s.precondition == "whiten" else target.names
    inverse_mass = None
    if s.precondition == "mass":
        cov = jnp.asarray(precond.cov_w)
        inverse_mass = {names: cov if s.dense_mass else jnp.diag(cov)}

    def one_chain(key: jax.Array, start: dict[str, jax.Array], data: Any):
        kernel = NUTS(
            model,
            target_accept_prob=s.target_accept,
            max_tree_depth=s.max_tree_depth,
            dense_mass=[names] if s.dense_mass else [],
            inverse_mass_matrix=inverse_mass,
        )
        args: tuple[Any, ...] = (data,)
        state = kernel.init(key, s.num_warmup, start, model_args=args, model_kwargs={})
        sites = kernel.postprocess_fn(args, {})

        def step(st, _):
            st = kernel.sample(st, args, {})
            out = sites(st.z)
            return st, (out["u"], out["theta"], *(getattr(st, k) for k in EXTRA_FIELDS))

        # One loop over warmup and sampling, as MCMC.run's: the kernel adapts while its
        # iteration counter is below num_warmup. One NUTS body to compile, not two (one loop per
        # phase doubled the compile time); the warmup rows are dropped, and of the sampling
        # rows the last of every ``thin`` is kept.
        length = s.num_warmup + s.num_samples * s.thin
        state, rows = jax.lax.scan(step, state, None, length=length)
        kept = tuple(r[s.num_warmup + s.thin - 1 :: s.thin] for r in rows)
        warmup_steps = jnp.sum(rows[2 + EXTRA_FIELDS.index("num_steps")][: s.num_warmup])
        return kept, state.adapt_state.step_size, warmup_steps

    energy = jax.jit(jax.vmap(lambda prm, d: potential_energy(model, (d,), {}, prm), (0, None)))
    return Program(energy=energy, chains=jax.pmap(one_chain, in_axes=(0, 0, None)))


def run_attempt(
    target: ShardTarget,
    data: Any,
    precond: Preconditioner,
    *,
    n_shards: int,
    seed: int,
    shard_id: int,
    attempt: int,
    settings: NutsSettings,
) -> AttemptResult:
    """Run attempt r of shard s with the settings of that attempt (never raises).

    Parameters
    ----------
    target : ShardTarget  priors, bounds and likelihood
    data : pytree  the shard's data, passed to ``target.loglik`` (equal shapes reuse the
        compiled sampler)
    precond : Preconditioner  û, L (and Σ_w for mass mode)
    n_shards : int  K: the prior exponent is 1/K
    seed, shard_id, attempt : int  keys ``attempt_keys(seed, shard_id, attempt)``
    settings : NutsSettings  already those of this attempt (see :func:`retry_settings`)

    Returns
    -------
    AttemptResult  draws (chains, num_samples, P) with status "ok", or a failure record
    """
    t0 = time.perf_counter()
    s = settings
    head: dict[str, Any] = {
        "shard_id": shard_id,
        "attempt": attempt,
        "names": target.output_names,
        "target_accept": s.target_accept,
        "num_warmup": s.num_warmup,
        "num_samples": s.num_samples,
        "num_chains": s.num_chains,
        "thin": s.thin,
    }
    meter = CompileMeter()

    def record(status: str, message: str = "", **fields: Any) -> AttemptResult:
        return AttemptResult(
            status,
            message,
            wall_s=time.perf_counter() - t0,
            n_compiles=meter.n_backend_compiles,
            compile_s=meter.total_s,
            **head,
            **fields,
        )

    try:
        devices = jax.local_device_count()
        if devices < s.num_chains:
            return record(
                "failed",
                f"{s.num_chains} parallel chains need {s.num_chains} local devices, JAX has "
                f"{devices}: set --xla_force_host_platform_device_count before JAX starts",
            )
        k_init, k_mcmc = attempt_keys(seed, shard_id, attempt)
        with meter:
            prog = program(target, precond, n_shards, s)
            start, redraws = initial_params(target, data, precond, prog.energy, s, k_init)
            if start is None:
                msg = f"potential energy not finite at some chain's start after {redraws} redraws"
                return record("bad_init", msg, init_redraws=redraws)
            keys = jax.random.split(k_mcmc, s.num_chains)
            kept, step_size, warmup_steps = prog.chains(keys, start, data)
            u, theta, *extra = (np.asarray(x) for x in kept)
            extra_fields: dict[str, Any] = dict(zip(EXTRA_FIELDS, extra, strict=True))
            u, theta, margin = u.astype(np.float64), theta.astype(np.float64), None
            if target.completion is not None:
                k_rest = jax.random.fold_in(k_mcmc, 1)
                theta, u, margin = target.completion.complete(theta, data, k_rest)
        return record(
            "ok",
            draws_u=u,
            draws_theta=theta,
            completion_margin_sd=margin,
            **extra_fields,
            init_redraws=redraws,
            step_size=np.atleast_1d(np.asarray(step_size, float)),
            warmup_steps=np.atleast_1d(np.asarray(warmup_steps, np.int64)),
        )
    except Exception as exc:  # guarded shard work: failures are records
        return record(
            "failed",
            f"{type(exc).__name__}: {exc}",
            error_type=type(exc).__name__,
            traceback=traceback.format_exc(),
        )
