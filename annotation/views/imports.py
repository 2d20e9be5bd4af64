"""The import page (managers): upload a file, see the history of imports with every bad line
(the lines that refused a file, or those left out when "skip the bad lines" was ticked).

The upload is saved under UPLOAD_DIR and imported by a worker (annotation.tasks.import_batch_run,
enqueued after commit); the page shows the batch's status and refreshes while one is pending.
"""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods

from annotation.importers import FORMATS, import_upload
from annotation.models import ImportBatch, Role
from annotation.selectors import project_get_for_user

HISTORY = 20


class ImportForm(forms.Form):
    file = forms.FileField(help_text="Native JSONL, CSV or a TRL preference file; .gz accepted.")
    format = forms.ChoiceField(
        choices=[("", "Detect from the file"), *[(f, f.upper()) for f in FORMATS]], required=False, label="Format"
    )
    as_judgments = forms.BooleanField(
        required=False,
        label="Import the preferences as judgments",
        help_text='TRL files: store "chosen over rejected" as a judgment with source "import".',
    )
    skip_invalid = forms.BooleanField(
        required=False,
        label="Skip the bad lines",
        help_text="Import the good lines and list every bad one on the import's page. Unticked, a file with a bad line imports nothing.",
    )


@login_required
@require_http_methods(["GET", "POST"])
def import_page(request, slug: str):
    project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.MANAGER, action="importing items")
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        batch = import_upload(
            project=project,
            upload=form.cleaned_data["file"],
            fmt=form.cleaned_data["format"] or None,
            as_judgments=form.cleaned_data["as_judgments"],
            skip_invalid=form.cleaned_data["skip_invalid"],
            created_by=request.user,
        )
        messages.success(request, f"{batch.filename} is queued for import.")
        return redirect("annotation:project-import", slug=project.slug)
    batches = list(ImportBatch.objects.filter(project=project).select_related("created_by").order_by("-id")[:HISTORY])
    pending = any(b.status in (ImportBatch.Status.QUEUED, ImportBatch.Status.RUNNING) for b in batches)
    return render(request, "annotation/import.html", {"project": project, "form": form, "batches": batches, "pending": pending})


@login_required
def import_detail(request, slug: str, batch_id: int):
    project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.MANAGER, action="importing items")
    batch = get_object_or_404(ImportBatch, project=project, id=batch_id)
    return render(request, "annotation/import_detail.html", {"project": project, "batch": batch})


urlpatterns = [
    path("projects/<slug:slug>/import/", import_page, name="project-import"),
    path("projects/<slug:slug>/import/<id:batch_id>/", import_detail, name="project-import-detail"),
]
