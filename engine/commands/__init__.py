"""Sub-commands of ``kjobs``; each module has ``register(subparsers)``."""
