"""Persist the engine's events as rows, one short transaction per event.

Each event commits on its own so a page (or a crashed worker's successor) sees every finished call
and episode as soon as it exists; once it has committed, the event is broadcast to open pages
(runs.live), so what a page is told is always already in the database it would reload from.

With a ``claim`` (runs.work.claim_episode made the row), the sink reuses the claimed row and writes only
while that attempt still owns it and it is RUNNING: a cancelled episode, or one another worker retook
(its owner was thought dead), is not overwritten, and the program is stopped at its next robot call.
Without one (tests writing rows directly), ``episode_started`` creates or restarts the row itself.
"""

from __future__ import annotations

from datetime import datetime, timezone

from django.db import transaction
from django.utils import timezone as djtz

from worker.events import CallRecord, EpisodeResult, EpisodeStart, KeyframeRecord
from worker.robot.status import EpisodeStatus
from worker.sandbox.host import ApiError

from . import live
from .models import Candidate, Episode, Keyframe, PrimitiveCall, Run


class EpisodeTakenAway(ApiError):
    """The claimed episode is no longer this attempt's (cancelled, or retaken): the program stops."""

    def __init__(self, episode_id: int):
        super().__init__(
            f"episode {episode_id} was cancelled or taken over; the program was stopped",
            status=EpisodeStatus.CANCELLED,
            terminal=True,
        )


class DjangoSink:
    def __init__(self, candidate: Candidate, split: str = Episode.Split.CUSTOM, claim=None):
        """``claim``: a runs.work.Claim of the row to write (None: make or restart the row here)."""
        self.candidate = candidate
        self.split = split
        self.claim = claim

    def _mine(self, episode_id: int):
        """The row's queryset, narrowed to this claim's RUNNING attempt when there is a claim."""
        rows = Episode.objects.filter(pk=episode_id)
        if self.claim is not None:
            rows = rows.filter(status=Episode.RUNNING, worker=self.claim.worker, attempt=self.claim.attempt)
        return rows

    def episode_started(self, start: EpisodeStart) -> int:
        if self.claim is not None:
            return self._claimed_started(start)
        with transaction.atomic():
            episode, created = Episode.objects.select_for_update().get_or_create(
                candidate=self.candidate,
                split=self.split,
                seed=start.seed,
                defaults={"run_id": self.candidate.run_id, "program_hash": start.program_hash},
            )
            if not created:
                # A re-run of an unfinished episode (its worker died): start its trace afresh.
                episode.calls.all().delete()
                episode.keyframes.all().delete()
                Episode.objects.filter(pk=episode.pk).update(
                    status=Episode.RUNNING,
                    success=None,
                    error="",
                    error_line=0,
                    stdout="",
                    stderr="",
                    n_calls=0,
                    recording="",
                    recording_index={},
                    scene3d="",
                    started_at=djtz.now(),
                    finished_at=None,
                    program_hash=start.program_hash,
                )
            run_id, episode_id = self.candidate.run_id, episode.pk
            seq = live.bump_run_seq(run_id)
            # "reset" tells open trace pages to drop the calls of the attempt that died.
            event = "started" if created else "reset"
            live.publish_on_commit(
                run_id,
                lambda: {
                    "type": "live.episode",
                    "event": event,
                    "episode": episode_id,
                    "candidate": self.candidate.pk,
                    "run_seq": seq,
                    "n_calls": 0,
                },
            )
        return episode.pk

    def _claimed_started(self, start: EpisodeStart) -> int:
        claim = self.claim
        with transaction.atomic():
            # The run's row first (bump_run_seq updates it), then the episode's: the order claims take.
            run_id, seq = self.candidate.run_id, live.bump_run_seq(self.candidate.run_id)
            self._mine(claim.episode_id).update(program_hash=start.program_hash)
            # "reset" tells open trace pages to drop the calls of the attempt that died.
            event = "started" if claim.attempt == 1 else "reset"
            live.publish_on_commit(
                run_id,
                lambda: {
                    "type": "live.episode",
                    "event": event,
                    "episode": claim.episode_id,
                    "candidate": self.candidate.pk,
                    "run_seq": seq,
                    "n_calls": 0,
                },
            )
        return claim.episode_id

    def media_prefix(self, episode_id: int) -> str:
        prefix = f"runs/{self.candidate.run_id}/episodes/{episode_id}"
        if self.claim is not None and self.claim.attempt > 1:
            prefix += f"/attempt-{self.claim.attempt}"  # a wrongly-dead earlier attempt writes elsewhere
        return prefix

    def call_recorded(self, episode_id: int, record: CallRecord) -> None:
        with transaction.atomic():
            if self.claim is not None and not self._mine(episode_id).exists():
                raise EpisodeTakenAway(episode_id)
            call = PrimitiveCall.objects.create(
                episode_id=episode_id,
                seq=record.seq,
                primitive=record.primitive,
                args=record.args,
                result=record.result,
                status=record.status,
                message=record.message,
                error=record.error,
                line=record.line,
                stack=record.stack,
                started_at=datetime.fromtimestamp(record.started_at, tz=timezone.utc),
                duration_ms=record.duration_ms,
                sim_time=record.sim_time,
                artifacts=record.artifacts,
            )
            keyframes = _save_keyframes(episode_id, call, record.keyframes)
            live.publish_on_commit(self.candidate.run_id, lambda: _call_event(call, keyframes))

    def episode_finished(self, episode_id: int, result: EpisodeResult) -> None:
        """Store the result unless the episode ended meanwhile (cancelled) or another attempt owns it;
        the run's row is locked first so concurrent episodes of one run sum their counts exactly."""
        with transaction.atomic():
            Run.objects.select_for_update().filter(pk=self.candidate.run_id).first()
            stored = (
                self._mine(episode_id)
                .filter(status=Episode.RUNNING)
                .update(
                    status=result.status,
                    success=result.success,
                    reward=result.reward,
                    error=result.error,
                    error_line=result.error_line,
                    stdout=result.stdout,
                    stderr=result.stderr,
                    duration_s=result.duration_s,
                    sim_time=result.sim_time,
                    n_calls=result.n_calls,
                    control_steps=result.control_steps,
                    step_budget=result.step_budget,
                    api_profile=result.api_profile,
                    api_profile_reason=result.api_profile_reason[:400],
                    sandbox=result.sandbox,
                    recording=result.recording,
                    recording_index=result.recording_index,
                    scene3d=result.scene3d,
                    finished_at=djtz.now(),
                )
            )
            if not stored:
                return
            _save_keyframes(episode_id, None, result.keyframes)
            self.candidate.refresh_stats()
            run_id, seq = self.candidate.run_id, live.bump_run_seq(self.candidate.run_id)
            live.publish_on_commit(
                run_id,
                lambda: {
                    "type": "live.episode",
                    "event": "finished",
                    "episode": episode_id,
                    "candidate": self.candidate.pk,
                    "run_seq": seq,
                    "n_calls": result.n_calls,
                },
            )


def _call_event(call: PrimitiveCall, keyframes: list[Keyframe]) -> dict:
    from .api.serializers import PrimitiveCallSerializer

    data = PrimitiveCallSerializer(call, context={"keyframes": {call.pk: keyframes}}).data
    return {"type": "live.call", "episode": call.episode_id, "seq": call.seq, "call": data}


def _save_keyframes(episode_id: int, call: PrimitiveCall | None, records: list[KeyframeRecord]) -> list[Keyframe]:
    if not records:
        return []
    return Keyframe.objects.bulk_create(
        Keyframe(
            episode_id=episode_id,
            call=call,
            kind=k.kind,
            camera=k.camera,
            label=k.label,
            image=k.path,
            width=k.width,
            height=k.height,
        )
        for k in records
    )
