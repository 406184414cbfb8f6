"""Reports (DESIGN §6.3): any member reports a message; moderators and administrators
work the queue under ``/api/v1/admin/reports``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status
from pydantic import Field

from parley.api.deps import Caller, Client, RequestModel, Services
from parley.api.roles import Staff
from parley.fields import Id

router = APIRouter(prefix="/api/v1", tags=["moderation"])


class ReportBody(RequestModel):
    reason: str = Field(max_length=1000)


class ResolveBody(RequestModel):
    action: Literal["dismiss", "delete_message", "deactivate_sender"]


@router.post("/messages/{message_id}/report", status_code=status.HTTP_201_CREATED)
async def report_message(
    message_id: Id, body: ReportBody, caller: Caller, services: Services, client: Client
) -> dict[str, Any]:
    """Once per message and reporter (``409 ALREADY_REPORTED``); not one's own message."""
    report = await services.reports.report(
        caller.user_id, message_id, body.reason, ip_address=client.ip_address
    )
    return {"report": report.to_reporter()}


@router.get("/admin/reports")
async def list_reports(
    staff: Staff,
    services: Services,
    status: Literal["open", "resolved"] = "open",
    before: Annotated[str | None, Query(max_length=26)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> dict[str, Any]:
    found, has_more = await services.reports.list(status=status, before=before, limit=limit)
    return {"reports": found, "has_more": has_more}


@router.post("/admin/reports/{report_id}/resolve")
async def resolve_report(
    report_id: Id, body: ResolveBody, staff: Staff, services: Services, client: Client
) -> dict[str, Any]:
    """Closes every open report of the message; each reporter gets ``report.resolved``."""
    report = await services.reports.resolve(
        staff.user_id, staff.role, report_id, body.action, ip_address=client.ip_address
    )
    return {"report": report.to_staff()}
