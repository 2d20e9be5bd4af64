"""Projects and members over the API. Scoped by membership (annotation.selectors): an outsider
gets 404 for a project they are not on, a member without the role 403."""
from __future__ import annotations

from collections import defaultdict

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from annotation.models import Membership, Project, Role
from annotation.projects import (
    PROJECT_FIELDS,
    membership_remove,
    membership_set,
    project_create,
    project_statistics,
    project_update,
    user_by_username,
    user_can_create_projects,
)
from annotation.selectors import project_get_for_user, project_list_for_user, user_role


def _drf_error(exc: DjangoValidationError) -> ValidationError:
    return ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages})


class StrictFloatField(serializers.FloatField):
    """DRF's FloatField takes `true` as 1.0 (Python's bool is an int): a boolean is not a number."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class ProjectSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {**serializers.ModelSerializer.serializer_field_mapping, models.FloatField: StrictFloatField}
    role = serializers.SerializerMethodField(help_text="Your role on the project (staff: manager).")

    class Meta:
        model = Project
        fields = ["id", *PROJECT_FIELDS, "created_at", "role"]
        read_only_fields = ["id", "created_at", "role"]
        extra_kwargs = {"slug": {"required": False, "validators": []}}

    def _labels(self, value):
        # JSON `null` (or "null" in a form) parses to None, which the NOT NULL column refuses with a 500.
        if not isinstance(value, list) or not all(isinstance(label, str) for label in value):
            raise serializers.ValidationError("must be a list of labels (strings); [] for none")
        return value

    validate_likert_labels = validate_rating_labels = _labels

    def get_role(self, project) -> str | None:
        roles = self.context.get("roles")  # the list view reads every role in one query
        if roles is not None:
            return roles[project.id]
        return user_role(user=self.context["request"].user, project=project)


class ProjectCreateSerializer(ProjectSerializer):
    raters = serializers.ListField(child=serializers.CharField(), required=False, write_only=True, help_text="Usernames to add as raters.")
    researchers = serializers.ListField(child=serializers.CharField(), required=False, write_only=True, help_text="Usernames to add as researchers.")

    class Meta(ProjectSerializer.Meta):
        fields = [*ProjectSerializer.Meta.fields, "raters", "researchers"]

    def validate(self, attrs):
        members = {}
        for field, role in (("raters", Role.RATER), ("researchers", Role.RESEARCHER)):
            missing = []
            for name in attrs.pop(field, []):
                user = user_by_username(name)
                if user is None:
                    missing.append(name)
                else:
                    members[user] = role
            if missing:
                raise ValidationError({field: [f"no such user: {', '.join(missing)}"]})
        attrs["members"] = members
        return attrs


class ProjectStatisticsSerializer(serializers.Serializer):
    items = serializers.IntegerField()
    gold_items = serializers.IntegerField()
    judgments = serializers.IntegerField()
    imported_judgments = serializers.IntegerField()
    items_complete = serializers.IntegerField()
    done_percent = serializers.FloatField()
    raters = serializers.IntegerField()


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")

    class Meta:
        model = Membership
        fields = ["username", "role", "paused", "paused_reason", "created_at"]
        read_only_fields = ["paused_reason", "created_at"]


class MembershipUpdateSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices, required=False)
    paused = serializers.BooleanField(required=False)


@extend_schema_view(
    get=extend_schema(summary="Projects you are on (staff: all)", tags=["projects"]),
    post=extend_schema(summary="Create a project (managers); you become its manager", tags=["projects"]),
)
class ProjectListCreate(generics.ListCreateAPIView):
    def get_serializer_class(self):
        return ProjectCreateSerializer if self.request.method == "POST" else ProjectSerializer

    def get_queryset(self):
        return project_list_for_user(user=self.request.user)

    def list(self, request, *args, **kwargs):
        # Every role in one query rather than one per listed project; staff act as managers everywhere.
        default = Role.MANAGER if request.user.is_staff else None
        mine = {} if request.user.is_staff else Membership.objects.filter(user=request.user).values_list("project_id", "role")
        self.roles = defaultdict(lambda: default, mine)
        return super().list(request, *args, **kwargs)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if hasattr(self, "roles"):
            context["roles"] = self.roles
        return context

    def create(self, request, *args, **kwargs):
        # Before validation: a user who may not create learns nothing from field errors.
        if not user_can_create_projects(user=request.user):
            raise PermissionDenied("Only managers may create projects")
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        members = data.pop("members", {})
        members.pop(self.request.user, None)
        try:
            serializer.instance = project_create(created_by=self.request.user, members=members, **data)
        except DjangoValidationError as exc:
            raise _drf_error(exc) from exc


@extend_schema_view(
    get=extend_schema(summary="One project (members)", tags=["projects"]),
    put=extend_schema(summary="Replace a project's settings (managers)", tags=["projects"]),
    patch=extend_schema(summary="Change some of a project's settings (managers)", tags=["projects"]),
)
class ProjectDetail(generics.RetrieveUpdateAPIView):
    serializer_class = ProjectSerializer
    lookup_field = "slug"

    def get_object(self):
        role = Role.MANAGER if self.request.method in ("PUT", "PATCH") else Role.RATER
        project, _ = project_get_for_user(user=self.request.user, slug=self.kwargs["slug"], role=role)
        return project

    def perform_update(self, serializer):
        try:
            project_update(project=serializer.instance, fields=dict(serializer.validated_data))
        except DjangoValidationError as exc:
            raise _drf_error(exc) from exc


@extend_schema(summary="Project statistics (researchers and managers)", tags=["projects"], responses=ProjectStatisticsSerializer)
class ProjectStatistics(generics.GenericAPIView):
    serializer_class = ProjectStatisticsSerializer

    def get(self, request, slug: str):
        project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.RESEARCHER)
        return Response(ProjectStatisticsSerializer(project_statistics(project=project)).data)


@extend_schema_view(
    get=extend_schema(summary="Members of a project (managers)", tags=["projects"]),
    post=extend_schema(summary="Add a member or change their role (managers)", tags=["projects"]),
)
class MemberListCreate(generics.ListCreateAPIView):
    serializer_class = MembershipSerializer
    pagination_class = None

    def get_project(self) -> Project:
        project, _ = project_get_for_user(user=self.request.user, slug=self.kwargs["slug"], role=Role.MANAGER)
        return project

    def get_queryset(self):
        return Membership.objects.filter(project=self.get_project()).select_related("user").order_by("user__username")

    def create(self, request, *args, **kwargs):
        project = self.get_project()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = user_by_username(serializer.validated_data["user"]["username"])
        if user is None:
            raise ValidationError({"username": ["no such user"]})
        try:
            membership = membership_set(project=project, user=user, role=serializer.validated_data.get("role", Role.RATER), paused=serializer.validated_data.get("paused"))
        except DjangoValidationError as exc:
            raise _drf_error(exc) from exc
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    get=extend_schema(summary="One member (managers)", tags=["projects"], responses=MembershipSerializer),
    patch=extend_schema(summary="Change a member's role or pause them (managers)", tags=["projects"], request=MembershipUpdateSerializer, responses=MembershipSerializer),
    delete=extend_schema(summary="Take a member off the project (managers); their judgments stay", tags=["projects"]),
)
class MemberDetail(generics.GenericAPIView):
    serializer_class = MembershipSerializer

    def get_membership(self) -> Membership:
        project, _ = project_get_for_user(user=self.request.user, slug=self.kwargs["slug"], role=Role.MANAGER)
        return get_object_or_404(Membership.objects.select_related("user", "project"), project=project, user__username=self.kwargs["username"])

    def get(self, request, slug: str, username: str):
        return Response(MembershipSerializer(self.get_membership()).data)

    def patch(self, request, slug: str, username: str):
        membership = self.get_membership()
        data = MembershipUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            membership = membership_set(
                project=membership.project, user=membership.user, role=data.validated_data.get("role", membership.role), paused=data.validated_data.get("paused")
            )
        except DjangoValidationError as exc:
            raise _drf_error(exc) from exc
        return Response(MembershipSerializer(membership).data)

    def delete(self, request, slug: str, username: str):
        membership = self.get_membership()
        try:
            membership_remove(project=membership.project, user=membership.user)
        except DjangoValidationError as exc:
            raise _drf_error(exc) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("projects/", ProjectListCreate.as_view(), name="api-project-list"),
    path("projects/<slug:slug>/", ProjectDetail.as_view(), name="api-project-detail"),
    path("projects/<slug:slug>/statistics/", ProjectStatistics.as_view(), name="api-project-statistics"),
    path("projects/<slug:slug>/members/", MemberListCreate.as_view(), name="api-project-members"),
    path("projects/<slug:slug>/members/<str:username>/", MemberDetail.as_view(), name="api-project-member"),
]
