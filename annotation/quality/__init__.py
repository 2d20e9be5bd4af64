"""What the judgments say about the raters and the models: agreement, consensus, gold checks,
the model leaderboard, the quality figures and their plots, AI–human agreement.
Reads annotation's models; nothing in annotation's write path imports it at module level."""
