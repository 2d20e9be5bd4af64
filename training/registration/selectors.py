"""Who sees a registration: staff every one, anyone else the ones they asked for."""
from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from training.registration.models import RegistrationJob
from training.runs.lifecycle import ACTIVE


def registrations_for_user(*, user) -> QuerySet[RegistrationJob]:
    jobs = RegistrationJob.objects.select_related("model", "created_by")
    return jobs if user.is_staff else jobs.filter(created_by=user)


def registration_get_for_user(*, user, job_id: int) -> RegistrationJob:
    """404 for a registration the user may not see (as for a missing one: no probing)."""
    job = registrations_for_user(user=user).filter(pk=job_id).first()
    if job is None:
        raise Http404("No such registration")
    return job


def registrations_active_for_user(*, user) -> QuerySet[RegistrationJob]:
    return registrations_for_user(user=user).filter(status__in=ACTIVE).order_by("created_at")
