"""The reward model of "least certain first" moves from annotation's Project.selection_model to a
training-side row, so that annotation/ depends on nothing of training/. Existing choices are
copied here, before annotation's 0008 drops the old column."""
import django.db.models.deletion
from django.db import migrations, models


def copy_choices(apps, schema_editor):
    Project = apps.get_model("annotation", "Project")
    SelectionChoice = apps.get_model("training", "SelectionChoice")
    rows = Project.objects.filter(selection_model__isnull=False).values_list("pk", "selection_model_id")
    SelectionChoice.objects.bulk_create([SelectionChoice(project_id=pk, model_id=model_id) for pk, model_id in rows])


def copy_back(apps, schema_editor):
    Project = apps.get_model("annotation", "Project")
    SelectionChoice = apps.get_model("training", "SelectionChoice")
    for project_id, model_id in SelectionChoice.objects.values_list("project_id", "model_id"):
        Project.objects.filter(pk=project_id).update(selection_model_id=model_id)


class Migration(migrations.Migration):

    dependencies = [
        ("annotation", "0007_prompt_sets"),
        ("training", "0005_evaluation_generation_jobs"),
    ]

    operations = [
        migrations.CreateModel(
            name="SelectionChoice",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("model", models.ForeignKey(help_text="Reward model that scores pending items for 'least certain first'.", on_delete=django.db.models.deletion.CASCADE, related_name="+", to="training.modelartifact")),
                ("project", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name="selection_choice", to="annotation.project")),
            ],
        ),
        migrations.RunPython(copy_choices, copy_back),
    ]
