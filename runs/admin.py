from django.contrib import admin

from .models import Candidate, Episode, Keyframe, Outbox, PrimitiveCall, Run, Task, WorkerHeartbeat


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ("key", "benchmark", "suite", "arms")
    list_filter = ("benchmark", "suite")
    search_fields = ("key", "instruction")


class CandidateInline(admin.TabularInline):
    model = Candidate
    fields = ("round", "index", "label", "origin", "success_rate", "n_episodes")
    readonly_fields = fields
    extra = 0
    show_change_link = True


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("id", "task", "status", "source", "success_rate", "n_episodes", "worker", "created_at")
    list_filter = ("status", "source", "task__benchmark")
    inlines = [CandidateInline]


@admin.register(Episode)
class EpisodeAdmin(admin.ModelAdmin):
    list_display = ("id", "run", "seed", "split", "status", "success", "attempt", "worker", "duration_s")
    list_filter = ("status", "success", "split")


@admin.register(PrimitiveCall)
class PrimitiveCallAdmin(admin.ModelAdmin):
    list_display = ("episode", "seq", "primitive", "status", "duration_ms", "line")
    list_filter = ("status", "primitive")


admin.site.register(Keyframe)


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("name", "host", "pid", "beat_at", "busy_with", "started_at")
    readonly_fields = ("name", "host", "pid", "queues", "started_at", "beat_at", "busy_with")


@admin.register(Outbox)
class OutboxAdmin(admin.ModelAdmin):
    list_display = ("id", "task_name", "args", "queue", "created_at", "sent_at", "picked_at", "attempts", "last_error")
    list_filter = ("task_name",)
    readonly_fields = (
        "task_name",
        "args",
        "key",
        "queue",
        "created_at",
        "sent_at",
        "picked_at",
        "attempts",
        "broker_id",
    )
