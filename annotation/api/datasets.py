"""Dataset snapshots over the API (token or session; researchers, managers, staff of the project).

GET  /api/projects/<slug>/datasets/                       list (cursor-paginated, newest first)
POST /api/projects/<slug>/datasets/                       {"options": {...}, "extra_projects": ["slug"]} -> 201
GET  /api/projects/<slug>/datasets/<version>/             status, progress, options, manifest, file urls
GET  /api/projects/<slug>/datasets/<version>/archive/     the whole folder, streamed tar.gz
GET  /api/projects/<slug>/datasets/<version>/files/<name> one file, e.g. preference/train.parquet

A snapshot that includes a project the user may not read is listed (readable: false, no file
urls); its detail, files and archive are a 403 (annotation.exports.selectors.snapshot_get_readable).
"""
from __future__ import annotations

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.exports import OptionsError, snapshot_create
from annotation.exports.download import archive_response, file_response, snapshot_files
from annotation.exports.selectors import snapshot_get_readable, snapshot_list, snapshot_readable
from annotation.models import DatasetSnapshot, Role
from annotation.selectors import project_get_for_user


class SnapshotSerializer(serializers.ModelSerializer):
    project = serializers.CharField(source="project.slug")
    extra_projects = serializers.SlugRelatedField(many=True, read_only=True, slug_field="slug")
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)
    readable = serializers.SerializerMethodField(help_text="Whether you may read every project in the snapshot, "
                                                 "so its files and archive; false: they are a 403 to you.")
    files = serializers.SerializerMethodField()
    archive_url = serializers.SerializerMethodField()

    class Meta:
        model = DatasetSnapshot
        fields = ["version", "project", "extra_projects", "status", "progress", "options", "error", "created_by", "created_at", "finished_at",
                  "readable", "files", "archive_url"]

    def _base(self, obj) -> str:
        return f"/api/projects/{obj.project.slug}/datasets/{obj.version}/"

    def get_readable(self, obj) -> bool:
        # snapshot_list(user=...) annotates it in the list's one query; else ask the selector.
        if not hasattr(obj, "readable"):
            obj.readable = snapshot_readable(user=self.context["request"].user, snapshot=obj)
        return obj.readable

    def _files(self, obj) -> list[str]:
        return snapshot_files(obj) if self.get_readable(obj) else []

    def get_files(self, obj) -> dict[str, str]:
        return {name: f"{self._base(obj)}files/{name}" for name in self._files(obj)}

    def get_archive_url(self, obj) -> str | None:
        return f"{self._base(obj)}archive/" if self._files(obj) else None


class SnapshotDetailSerializer(SnapshotSerializer):
    class Meta(SnapshotSerializer.Meta):
        fields = SnapshotSerializer.Meta.fields + ["manifest"]


class SnapshotCreateSerializer(serializers.Serializer):
    options = serializers.DictField(required=False, default=dict)
    extra_projects = serializers.ListField(child=serializers.SlugField(), required=False, default=list)


class VersionPagination(CursorPagination):
    ordering = "-version"
    page_size = 50


class SnapshotListCreate(APIView):
    serializer_class = SnapshotSerializer

    @extend_schema(
        operation_id="projects_datasets_list",
        # A cursor page, as every list: the APIView does not tell drf-spectacular so by itself.
        responses=inline_serializer(
            "PaginatedSnapshotList",
            {
                "next": serializers.CharField(allow_null=True),
                "previous": serializers.CharField(allow_null=True),
                "results": SnapshotSerializer(many=True),
            },
        ),
    )
    def get(self, request: Request, slug: str) -> Response:
        project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.RESEARCHER)
        paginator = VersionPagination()
        page = paginator.paginate_queryset(snapshot_list(project=project, user=request.user), request, view=self)
        return paginator.get_paginated_response(SnapshotSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(operation_id="projects_datasets_create", request=SnapshotCreateSerializer, responses={201: SnapshotDetailSerializer})
    def post(self, request: Request, slug: str) -> Response:
        project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.RESEARCHER)
        body = SnapshotCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        # Every extra project needs the same role; an unknown one is a 404, like the main one.
        extra = [project_get_for_user(user=request.user, slug=s, role=Role.RESEARCHER)[0] for s in body.validated_data["extra_projects"]]
        try:
            snapshot = snapshot_create(project=project, options=body.validated_data["options"], created_by=request.user, extra_projects=extra)
        except OptionsError as exc:
            return Response({"options": exc.errors}, status=status.HTTP_400_BAD_REQUEST)
        return Response(SnapshotDetailSerializer(snapshot, context={"request": request}).data, status=status.HTTP_201_CREATED)


class SnapshotDetail(APIView):
    serializer_class = SnapshotDetailSerializer

    @extend_schema(operation_id="projects_datasets_retrieve")
    def get(self, request: Request, slug: str, version: int) -> Response:
        project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.RESEARCHER)
        snapshot = snapshot_get_readable(user=request.user, project=project, version=version)
        return Response(SnapshotDetailSerializer(snapshot, context={"request": request}).data)


class SnapshotArchive(APIView):
    @extend_schema(operation_id="projects_datasets_archive", responses={(200, "application/gzip"): OpenApiResponse(OpenApiTypes.BINARY, description="tar.gz of the snapshot folder, streamed")})
    def get(self, request: Request, slug: str, version: int):
        project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.RESEARCHER)
        return archive_response(snapshot_get_readable(user=request.user, project=project, version=version))


class SnapshotFile(APIView):
    @extend_schema(operation_id="projects_datasets_file", responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, description="one file of the snapshot")})
    def get(self, request: Request, slug: str, version: int, name: str):
        project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.RESEARCHER)
        return file_response(snapshot_get_readable(user=request.user, project=project, version=version), name)


urlpatterns = [
    path("projects/<slug:slug>/datasets/", SnapshotListCreate.as_view(), name="api-dataset-list"),
    path("projects/<slug:slug>/datasets/<id:version>/", SnapshotDetail.as_view(), name="api-dataset-detail"),
    path("projects/<slug:slug>/datasets/<id:version>/archive/", SnapshotArchive.as_view(), name="api-dataset-archive"),
    path("projects/<slug:slug>/datasets/<id:version>/files/<path:name>", SnapshotFile.as_view(), name="api-dataset-file"),
]
