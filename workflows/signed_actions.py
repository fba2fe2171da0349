"""Signed actions (patch v4): who a refund believes, and why.

A refund trusts the people directory as an activity read it when the refund started waiting for
a person (a review, or an operator), recorded in its history, and read again each time it is told
the directory changed. The signal says only that: whoever sends it can at most cause a reload.
Every action a person sends carries their Ed25519 signature, checked here against that directory
with the refund's own clock, so a name typed by whoever reaches Temporal proves nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.people import PeopleActivities, PeopleLookup
    from domain.signatures import ActionSignature, Person, Role, fingerprint, signature_problem
    from workflows.contract import RefundState, ReviewAction

from workflows.progress import RefundProgress
from workflows.review_checks import DIRECTORY_PENDING

LOAD_TIMEOUT = timedelta(seconds=30)
LOAD_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)
DIRECTORY_ACTOR = "people-directory"
ROLE_FOR: dict[ReviewAction, Role | None] = {
    ReviewAction.APPROVE: Role.REVIEWER,
    ReviewAction.REJECT: Role.REVIEWER,
    ReviewAction.CANCEL: None,  # the requester, whatever else they are
    ReviewAction.RETRY: Role.OPERATOR,
    ReviewAction.RESOLVE: Role.OPERATOR,
}
WAITING = frozenset({RefundState.VALIDATING_APPLICATION, RefundState.NEEDS_ATTENTION})


class SignedActions:
    def __init__(self, progress: RefundProgress) -> None:
        self.progress = progress
        self.required = False
        """Patch v4: actions must be signed, and the lists come from the directory."""
        self._wanted = False
        self._loading = False

    @property
    def reading(self) -> bool:
        """Signed actions are required and the directory has not been read yet."""
        return self.required and self.progress.people is None

    def allowed(self, role: Role, listed: Sequence[str]) -> tuple[str, ...] | None:
        """Who may act in ``role``: the directory's holders (``None`` until it is read), or, for
        a refund started before signed actions, the list its rules recorded (``listed``)."""
        if not self.required:
            return tuple(listed)
        people = self.progress.people
        if people is None:
            return None
        return tuple(sorted(pid for pid, person in people.items() if person.role is role))

    def refusal(
        self,
        action: ReviewAction,
        actor: str,
        text: str,
        signature: ActionSignature | None,
    ) -> str | None:
        """Why this action's signature does not prove ``actor`` sent it, or ``None``."""
        if not self.required:
            return None
        progress = self.progress
        if progress.people is None:
            return DIRECTORY_PENDING
        return signature_problem(
            progress.people,
            ROLE_FOR[action],
            progress.refund_id,
            action.value,
            actor,
            text,
            signature,
            workflow.now(),
            progress.used_signatures,
            not_before=progress.submitted_at,
        )

    def spend(self, signature: ActionSignature | None) -> None:
        """An accepted action's signature may not be used again on this refund."""
        if self.required and signature is not None:
            self.progress.used_signatures.append(fingerprint(signature))

    async def waiting_for_a_person(self) -> None:
        """Read the directory afresh as the refund starts waiting for a review or an operator."""
        if self.required:
            await self.refresh()

    async def directory_changed(self) -> None:
        """The ``people_changed`` signal: read again if this refund waits for someone (or is
        reading right now: the change may have come after that read)."""
        progress = self.progress
        waiting = progress.state in WAITING and progress.people is not None
        if self.required and (waiting or self._loading):
            await self.refresh()

    async def refresh(self) -> None:
        """Read the directory; requests that come during a read are served by one more read."""
        self._wanted = True
        if self._loading:
            await workflow.wait_condition(lambda: not self._loading)
            return
        self._loading = True
        try:
            while self._wanted:
                self._wanted = False
                await self._load()
        finally:
            self._loading = False

    async def _load(self) -> None:
        progress = self.progress
        found: list[Person] = await workflow.execute_activity_method(
            PeopleActivities.load_people,
            PeopleLookup(refund_id=progress.refund_id, requester=progress.request.requester),
            start_to_close_timeout=LOAD_TIMEOUT,
            retry_policy=LOAD_RETRY,
            summary="who may act on this refund",
        )
        before, after = progress.people, {person.person_id: person for person in found}
        progress.people = after
        if before is not None:
            change = describe_change(before, after)
            if change:
                progress.record(DIRECTORY_ACTOR, "people directory changed", detail=change)


def describe_change(before: dict[str, Person], after: dict[str, Person]) -> str:
    """What changed for this refund: who came, who left, whose key or role changed."""
    parts = []
    for person_id in sorted(before.keys() | after.keys()):
        old, new = before.get(person_id), after.get(person_id)
        if old is None and new is not None:
            parts.append(f"added {person_id} ({new.role.value})")
        elif new is None and old is not None:
            parts.append(f"removed {person_id} ({old.role.value})")
        elif old is not None and new is not None and old != new:
            parts.append(f"new key for {person_id} ({new.role.value})")
    return "; ".join(parts)
