"""The AI judge (RLAIF): a registered model answers a project's items like a rater.

    prompts.py   the prompt templates (project instructions + principles + the item), their keys
    answers.py   from answer probabilities (both on-screen orders) to a canonical judgment value
    models.py    the model side: answer-token log-probabilities of a causal LM, reward-model scores (torch inside)
    services.py  the web side: create, cancel, find stale jobs (no torch)
    job.py       the job on the gpu worker: claim, judge, store, heartbeat, cancel, resume
    tasks.py     the Celery tasks (thin)
"""
