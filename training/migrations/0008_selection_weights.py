"""Weights for a multi-objective reward model ordering "least certain first" (training/selection/models.py).
The model becomes optional: a row may keep weights for "the newest model of the project". Existing rows keep
their model and get {} (the weights the model was saved with), so nothing orders differently."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('training', '0007_jobs_phase_registration'),
    ]

    operations = [
        migrations.AddField(
            model_name='selectionchoice',
            name='weights',
            field=models.JSONField(blank=True, default=dict, help_text="How a multi-objective reward model's heads combine, {attribute: weight} ({}: the weights it was saved with)."),
        ),
        migrations.AlterField(
            model_name='selectionchoice',
            name='model',
            field=models.ForeignKey(blank=True, help_text="Reward model that scores pending items for 'least certain first' (empty: the newest of the project).", null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='training.modelartifact'),
        ),
    ]
