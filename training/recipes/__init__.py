"""Training methods: one module per method, registered in catalog.py (config dataclass, the
snapshot format it reads, the base kinds it accepts, what it produces, its metrics).
Imports only training.core and training.rl; never Django models or views."""
