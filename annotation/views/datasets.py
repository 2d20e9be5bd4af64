"""Dataset snapshot pages (researchers, managers and staff; raters 403, outsiders 404).

GET  /projects/<slug>/datasets/                          list, build form, progress of builds
POST /projects/<slug>/datasets/                          build a new snapshot
GET  /projects/<slug>/datasets/v<N>/                     the card, files, manifest
GET  /projects/<slug>/datasets/v<N>/status.json          {status, progress, error} for the poller
GET  /projects/<slug>/datasets/v<N>/download/            the whole folder, streamed tar.gz
GET  /projects/<slug>/datasets/v<N>/files/<name>         one file

The card, the files and the archive hold every project of the snapshot: a snapshot that includes
a project the user may not read is listed, with its status, but its content is a 403
(annotation.exports.selectors.snapshot_get_readable).
"""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_http_methods

from annotation.exports import OptionsError, snapshot_create
from annotation.exports.download import archive_response, file_response, snapshot_file_path, snapshot_files
from annotation.exports.options import AGGREGATIONS, SnapshotOptions
from annotation.exports.selectors import projects_for_research, snapshot_get, snapshot_get_readable, snapshot_list
from annotation.exports.split import split_size_warnings
from annotation.models import Role
from annotation.rendering import render_markdown
from annotation.selectors import project_get_for_user

_defaults = SnapshotOptions()


class SnapshotForm(forms.Form):
    include_ai = forms.BooleanField(required=False, label="Include AI judgments")
    exclude_import = forms.BooleanField(required=False, label="Leave out judgments imported with the items")
    aggregation = forms.ChoiceField(choices=[(a, a.replace("_", "-")) for a in AGGREGATIONS], initial=_defaults.aggregation,
                                    help_text="How several judgments of one item combine.")
    min_agreement = forms.FloatField(min_value=0, max_value=1, initial=_defaults.min_agreement)
    sft_min_agreement = forms.FloatField(min_value=0, max_value=1, initial=_defaults.sft_min_agreement, label="SFT minimum agreement")
    keep_ties = forms.BooleanField(required=False, initial=_defaults.keep_ties)
    keep_both_bad = forms.BooleanField(required=False, initial=_defaults.keep_both_bad, label="Keep 'both bad'")
    keep_gold = forms.BooleanField(required=False, initial=_defaults.keep_gold, label="Keep gold items")
    include_paused = forms.BooleanField(required=False, label="Include paused raters")
    use_adjudicated = forms.BooleanField(required=False, initial=_defaults.use_adjudicated, label="Use adjudicated answers where set",
                                         help_text="A manager's final answer replaces the raters' judgments of that item.")
    leave_out_demonstrations = forms.BooleanField(required=False, label="Leave out demonstrations raters wrote")
    test_share = forms.FloatField(min_value=0, max_value=0.99, initial=_defaults.test_share)
    seed = forms.IntegerField(initial=_defaults.seed)
    extra_projects = forms.MultipleChoiceField(required=False, label="Also include projects", choices=())

    def __init__(self, *args, others=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.others = {p.slug: p for p in others}
        self.fields["extra_projects"].choices = [(p.slug, p.name) for p in others]

    def options(self) -> dict:
        data = self.cleaned_data
        sources = ["human"] + ([] if data["exclude_import"] else ["import"]) + (["ai"] if data["include_ai"] else [])
        return {
            "sources": sources,
            "aggregation": data["aggregation"],
            "min_agreement": data["min_agreement"],
            "sft_min_agreement": data["sft_min_agreement"],
            "keep_ties": data["keep_ties"],
            "keep_both_bad": data["keep_both_bad"],
            "keep_gold": data["keep_gold"],
            "exclude_paused": not data["include_paused"],
            "use_adjudicated": data["use_adjudicated"],
            "keep_demonstrations": not data["leave_out_demonstrations"],
            "test_share": data["test_share"],
            "seed": data["seed"],
        }


@login_required
@require_http_methods(["GET", "POST"])
def dataset_list(request: HttpRequest, slug: str) -> HttpResponse:
    project, membership = project_get_for_user(user=request.user, slug=slug, role=Role.RESEARCHER, action="the datasets page")
    others = projects_for_research(user=request.user, exclude=project)
    form = SnapshotForm(request.POST or None, others=others)
    if request.method == "POST" and form.is_valid():
        try:
            snapshot = snapshot_create(
                project=project,
                options=form.options(),
                created_by=request.user,
                extra_projects=[form.others[s] for s in form.cleaned_data["extra_projects"]],
            )
        except OptionsError as exc:
            for field, message in exc.errors.items():
                form.add_error(field if field in form.fields else None, message)
        else:
            messages.success(request, f"Building version {snapshot.version}.")
            return redirect("annotation:dataset-list", slug=project.slug)
    snapshots = snapshot_list(project=project, user=request.user)
    # The newest ready snapshot's counts tell the build form whether its test share is too small
    # (one the user may read: the counts are of every project inside it).
    latest = next((s for s in snapshots if s.status == "ready" and s.readable), None)
    split_warnings = split_size_warnings(latest.manifest, formats=("preference", "unpaired", "sft")) if latest else []
    return render(request, "annotation/dataset_list.html", {"project": project, "membership": membership, "snapshots": snapshots, "form": form,
                                                            "split_warnings": split_warnings, "latest": latest})


@login_required
@require_GET
def dataset_detail(request: HttpRequest, slug: str, version: int) -> HttpResponse:
    project, membership = project_get_for_user(user=request.user, slug=slug, role=Role.RESEARCHER, action="the datasets page")
    snapshot = snapshot_get_readable(user=request.user, project=project, version=version)
    card = ""
    files = snapshot_files(snapshot)
    if files:
        card = render_markdown(snapshot_file_path(snapshot, "README.md").read_text(encoding="utf-8"))
    sizes = snapshot.manifest.get("files", {})
    return render(
        request,
        "annotation/dataset_detail.html",
        {"project": project, "membership": membership, "snapshot": snapshot, "card": card,
         "files": [(name, sizes.get(name, {}).get("bytes"), sizes.get(name, {}).get("sha256")) for name in files]},
    )


@login_required
@require_GET
def dataset_status(request: HttpRequest, slug: str, version: int) -> JsonResponse:
    project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.RESEARCHER, action="the datasets page")
    snapshot = snapshot_get(project=project, version=version)
    return JsonResponse({"version": snapshot.version, "status": snapshot.status, "progress": snapshot.progress, "error": snapshot.error})


@login_required
@require_GET
def dataset_download(request: HttpRequest, slug: str, version: int):
    project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.RESEARCHER, action="the datasets page")
    return archive_response(snapshot_get_readable(user=request.user, project=project, version=version))


@login_required
@require_GET
def dataset_file(request: HttpRequest, slug: str, version: int, name: str):
    project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.RESEARCHER, action="the datasets page")
    return file_response(snapshot_get_readable(user=request.user, project=project, version=version), name)


urlpatterns = [
    path("projects/<slug:slug>/datasets/", dataset_list, name="dataset-list"),
    path("projects/<slug:slug>/datasets/v<id:version>/", dataset_detail, name="dataset-detail"),
    path("projects/<slug:slug>/datasets/v<id:version>/status.json", dataset_status, name="dataset-status"),
    path("projects/<slug:slug>/datasets/v<id:version>/download/", dataset_download, name="dataset-download"),
    path("projects/<slug:slug>/datasets/v<id:version>/files/<path:name>", dataset_file, name="dataset-file"),
]
