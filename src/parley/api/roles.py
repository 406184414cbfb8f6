"""Site-role dependencies (DESIGN §6.3): ``Staff`` (moderators and administrators) and
``Admin``. The role is read on every request, so a demotion takes effect at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from parley.api.deps import Caller, Services
from parley.errors import Forbidden


@dataclass(frozen=True, slots=True)
class StaffMember:
    user_id: str
    session_id: str
    role: str


async def staff_member(caller: Caller, services: Services) -> StaffMember:
    role = await services.administration.role_of(caller.user_id)
    if role not in ("moderator", "admin"):
        raise Forbidden("Moderators and administrators only")
    return StaffMember(caller.user_id, caller.session_id, role)


async def administrator(caller: Caller, services: Services) -> StaffMember:
    role = await services.administration.role_of(caller.user_id)
    if role != "admin":
        raise Forbidden("Administrators only")
    return StaffMember(caller.user_id, caller.session_id, role)


Staff = Annotated[StaffMember, Depends(staff_member)]
Admin = Annotated[StaffMember, Depends(administrator)]
