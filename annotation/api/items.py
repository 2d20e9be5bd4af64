"""Items over the API: list and detail (researchers and managers; raters get their items one at a
time from /next/, never the list), bulk import (managers) and the import history.

POST /api/projects/<slug>/items/import/
- JSON body {"items": [<native or TRL record>, ...], "as_judgments": false, "skip_invalid": false}:
  imported now, all or nothing; 201 with the batch, or 400 with every bad record as
  {"line": <1-based index>, ...}. With "skip_invalid": true the good records are imported (201)
  and every bad one is listed in the batch's `errors` (`lines_invalid` counts them).
- multipart with a `file` (JSONL, CSV or TRL; .gz accepted) and optional `format`,
  `as_judgments`, `skip_invalid`: the file is saved and imported by a worker; 202 with the queued
  batch, whose status and errors are at /api/projects/<slug>/imports/<id>/.
"""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.pagination import IdCursorPagination
from annotation.importers import FORMATS, ImportFailed, import_records, import_upload
from annotation.models import Candidate, ImportBatch, Item, Role
from annotation.selectors import project_get_for_user
from config.parsers import SafeJSONParser


class CandidateSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model_name")

    class Meta:
        model = Candidate
        fields = ["position", "text", "model", "metadata"]


class ItemSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="external_id", help_text="The id the item was imported with.")
    pk = serializers.IntegerField(source="id", read_only=True)
    candidates = CandidateSerializer(many=True, read_only=True)
    prompt = serializers.JSONField(help_text="Text, or a list of {role, content} chat messages.")

    class Meta:
        model = Item
        fields = ["pk", "id", "prompt", "candidates", "metadata", "is_gold", "gold", "judgment_count", "import_batch", "created_at"]


class ImportBatchSerializer(serializers.ModelSerializer):
    class Meta:
        model = ImportBatch
        fields = [
            "id",
            "filename",
            "format",
            "as_judgments",
            "status",
            "lines_read",
            "items_created",
            "items_skipped",
            "judgments_created",
            "skip_invalid",
            "lines_invalid",
            "errors",
            "created_at",
            "finished_at",
        ]


class ImportRequestSerializer(serializers.Serializer):
    items = serializers.ListField(child=serializers.JSONField(), required=False, help_text="Records in the native or TRL format.")
    file = serializers.FileField(required=False, help_text="A JSONL, CSV or TRL file (.gz accepted), imported by a worker.")
    format = serializers.ChoiceField(choices=FORMATS, required=False, help_text="Default: from the file name, then the content.")
    as_judgments = serializers.BooleanField(default=False, help_text='Store TRL preferences as judgments with source "import".')
    skip_invalid = serializers.BooleanField(
        default=False, help_text="Import the good records and list each bad one in the batch's errors, instead of refusing them all."
    )

    def validate(self, attrs):
        if ("items" in attrs) == ("file" in attrs):
            raise serializers.ValidationError({"detail": 'send either "items" (JSON) or a "file" (multipart), not both'})
        if "items" in attrs and not attrs["items"]:
            raise serializers.ValidationError({"items": "must not be empty"})
        return attrs


@extend_schema(tags=["items"], summary="Items of a project (researchers and managers), cursor-paginated by id")
class ItemList(generics.ListAPIView):
    serializer_class = ItemSerializer

    def get_queryset(self):
        project, _ = project_get_for_user(user=self.request.user, slug=self.kwargs["slug"], role=Role.RESEARCHER)
        queryset = Item.objects.filter(project=project).prefetch_related("candidates")
        if self.request.query_params.get("gold") in ("1", "true"):
            queryset = queryset.filter(is_gold=True)
        return queryset


@extend_schema(tags=["items"], summary="One item by its database id (researchers and managers)")
class ItemDetail(generics.RetrieveAPIView):
    serializer_class = ItemSerializer

    def get_object(self):
        project, _ = project_get_for_user(user=self.request.user, slug=self.kwargs["slug"], role=Role.RESEARCHER)
        return get_object_or_404(Item.objects.prefetch_related("candidates"), project=project, id=self.kwargs["pk"])


class ItemImport(APIView):
    parser_classes = [SafeJSONParser, MultiPartParser, FormParser]

    @extend_schema(
        tags=["items"],
        summary="Bulk import (managers): a JSON list now, or a file through a worker",
        request={"application/json": ImportRequestSerializer, "multipart/form-data": ImportRequestSerializer},
        responses={
            201: ImportBatchSerializer,
            202: ImportBatchSerializer,
            400: OpenApiResponse(
                response=inline_serializer(
                    "ImportErrors",
                    {
                        "detail": serializers.JSONField(required=False),  # a message, or a list of them
                        "errors": serializers.ListField(child=serializers.DictField(), required=False),
                        "batch": serializers.IntegerField(required=False, allow_null=True),
                    },
                ),
                description=(
                    "Nothing was imported. Either every bad record with its line (1-based index), field and reason "
                    "(`detail`, `errors`, `batch`), or a malformed request: `{field: [messages]}`."
                ),
            ),
        },
    )
    def post(self, request, slug: str):
        project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.MANAGER)
        form = ImportRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        if "file" in data:
            batch = import_upload(project=project, upload=data["file"], fmt=data.get("format"), as_judgments=data["as_judgments"],
                                  skip_invalid=data["skip_invalid"], created_by=request.user)
            return Response(ImportBatchSerializer(batch).data, status=status.HTTP_202_ACCEPTED)
        try:
            batch = import_records(project=project, records=data["items"], as_judgments=data["as_judgments"],
                                   skip_invalid=data["skip_invalid"], created_by=request.user)
        except ImportFailed as exc:
            body = {"detail": str(exc), "errors": exc.errors, "batch": exc.batch.id if exc.batch else None}
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        return Response(ImportBatchSerializer(batch).data, status=status.HTTP_201_CREATED)


class NewestFirst(IdCursorPagination):
    ordering = "-id"


@extend_schema(tags=["items"], summary="Import history of a project (managers), newest first")
class ImportBatchList(generics.ListAPIView):
    serializer_class = ImportBatchSerializer
    pagination_class = NewestFirst

    def get_queryset(self):
        project, _ = project_get_for_user(user=self.request.user, slug=self.kwargs["slug"], role=Role.MANAGER)
        return ImportBatch.objects.filter(project=project)


@extend_schema(tags=["items"], summary="One import: status, counts and per-line errors (managers)")
class ImportBatchDetail(generics.RetrieveAPIView):
    serializer_class = ImportBatchSerializer

    def get_object(self):
        project, _ = project_get_for_user(user=self.request.user, slug=self.kwargs["slug"], role=Role.MANAGER)
        return get_object_or_404(ImportBatch, project=project, id=self.kwargs["pk"])


urlpatterns = [
    path("projects/<slug:slug>/items/", ItemList.as_view(), name="api-item-list"),
    path("projects/<slug:slug>/items/import/", ItemImport.as_view(), name="api-item-import"),
    path("projects/<slug:slug>/items/<id:pk>/", ItemDetail.as_view(), name="api-item-detail"),
    path("projects/<slug:slug>/imports/", ImportBatchList.as_view(), name="api-import-list"),
    path("projects/<slug:slug>/imports/<id:pk>/", ImportBatchDetail.as_view(), name="api-import-detail"),
]
