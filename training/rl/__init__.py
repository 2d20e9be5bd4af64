"""Online RL maths and models: our PPO (ppo.py, top to bottom), loading the policy, reward model
and critic (models.py), sampling with its log-probs (sampling.py), and the one comparison of a
policy with its reference (comparison.py). Imports only training.core; never Django models or views.

Imported only on a worker or by bench/: torch is imported freely here.
"""
