"""Thin Celery tasks: ids in, one service call."""

from celery import shared_task

from domains import services
from domains.models import Domain


@shared_task(name="domains.recheck_due", ignore_result=True)
def domains_recheck_due() -> int:
    """Beat: enqueue a check for every domain whose ``next_check_at`` has come."""
    ids = services.domains_claim_due()
    for domain_id in ids:  # claimed and committed above: safe to enqueue now
        domain_recheck.delay(domain_id)
    return len(ids)


@shared_task(name="domains.recheck", ignore_result=True)
def domain_recheck(domain_id: int) -> None:
    domain = Domain.objects.filter(pk=domain_id).first()
    if domain is not None:  # deleted since it was claimed
        services.domain_verify(domain=domain, on_demand=False)
