"""Online RL: rollouts from a policy scored by a reward model.

- ppo.py     our PPO (maths + loop, one module, top to bottom)
- models.py  loading the policy, the reward model and the critic; scoring texts; prompt sets

Imported only on a worker or by bench/rl_throughput.py: torch is imported freely here.
"""
