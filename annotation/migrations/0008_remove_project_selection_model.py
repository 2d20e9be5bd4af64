"""Project.selection_model moves to training (training/migrations/0006_selection_choice.py, which
copies the existing choices first): annotation/ keeps the setting and the priority column."""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("annotation", "0007_prompt_sets"),
        ("training", "0006_selection_choice"),
    ]

    operations = [
        migrations.RemoveField(model_name="project", name="selection_model"),
    ]
