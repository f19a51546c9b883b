"""Process-level setup that must happen before the JAX backend starts."""
