"""JAX's persistent compilation cache: compiled functions kept on disk, so that a restart loads
them instead of compiling again (README, "Start-up")."""

from __future__ import annotations

from pathlib import Path

import jax

# A compiled batch shape takes ~100 KB (the weights are arguments, not constants), so this
# holds many models and JAX versions; past it, the least recently used entries go.
MAX_CACHE_BYTES = 256 << 20


def use_compilation_cache(folder: Path) -> None:
    """Keep every function JAX compiles from now on in ``folder``, and load it from there next
    time. Call it before the first compilation.

    Several processes may share the folder, even starting at once on an empty one: with a
    size limit set, JAX takes a file lock (``filelock``) around each entry's read and write,
    so that no process reads an entry another is still writing, and two writers of one entry
    take turns (the second finds it written). Without the limit JAX writes unlocked.
    """
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_compilation_cache_max_size", MAX_CACHE_BYTES)
    # By default only compilations over 1 s are kept; ours all count at start-up.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
