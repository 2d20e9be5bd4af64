"""Training: reward models, DPO/SFT/KTO, online RL, and the loop back to raters.

Packages, lowest first (each imports only those below it, and annotation/ and config/):
core (prompts, the one reward scorer, intervals, paths, access) → recipes, rl (the learning code)
→ registry (models) → runs (the run lifecycle) → judge, loop, selection → views, api, management.
The top level holds only what Django and Celery look for: apps, models, urls, tasks, admin.
"""
