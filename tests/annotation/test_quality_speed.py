"""The quality page answers fast from a cold start: its leaderboard fit is numpy only (importing
choix pulled in scipy.stats, 3-5 s on the first quality page after a start, for 79 judgments), and
it gives the same strengths choix does."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from annotation.quality.leaderboard import REGULARISATION, ilsr_dense


@pytest.mark.dbless
def test_its_fit_matches_choix():
    choix = pytest.importorskip("choix")
    rng = np.random.default_rng(0)
    for trial in range(60):
        n = int(rng.integers(2, 9))
        wins = rng.poisson(rng.uniform(0, 6), size=(n, n)).astype(float)
        np.fill_diagonal(wins, 0)
        if trial % 5 == 0:
            wins[0, :] = 0  # a model that never won still gets a finite score
        expected = choix.ilsr_pairwise_dense(wins, alpha=REGULARISATION, max_iter=200)
        np.testing.assert_allclose(ilsr_dense(wins, alpha=REGULARISATION), expected - expected.mean(), atol=1e-9)


@pytest.mark.dbless
def test_a_leaderboard_fit_imports_no_scipy():
    code = (
        "import sys, django, numpy as np\n"
        "django.setup()\n"
        "from annotation.quality.leaderboard import bradley_terry\n"
        "bradley_terry(np.array([[0., 6., 2.], [3., 0., 4.], [1., 2., 0.]]), rounds=20)\n"
        "print(sorted(m for m in sys.modules if m.startswith(('scipy', 'choix'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"})
    assert out.stdout.strip() == "[]", out.stdout
