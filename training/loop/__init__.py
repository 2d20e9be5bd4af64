"""The loop back to raters: policy evaluation jobs and generation batches (the Job row), the
prompts they read, and the requests that start them. May import core, rl, registry and runs."""
