"""Skills pages: list with filters, detail with evidence and versions, markdown export, import (staff).
Thin: parse, delegate to skills.exchange, render."""

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from . import exchange
from .evidence import evidence_rows
from .forms import MAX_FILES, MAX_MARKDOWN_BYTES, SkillFilterForm, SkillImportForm
from .highlight import code_html
from .markdown import export_skill_markdown
from .models import Skill
from .rendering import markdown_html


def filter_skills(queryset, *, status="", kind="", embodiment="", q=""):
    """Skills matching the list filters (the pages and the REST API share them)."""
    if status:
        queryset = queryset.filter(status=status)
    if kind:
        queryset = queryset.filter(kind=kind)
    if embodiment:
        queryset = queryset.filter(Q(embodiment__iexact=embodiment) | Q(embodiment=""))
    for word in q.split():
        queryset = queryset.filter(
            Q(name__icontains=word)
            | Q(title__icontains=word)
            | Q(description__icontains=word)
            | Q(symptom__icontains=word)
        )
    return queryset


def shown_fields(skill: Skill) -> dict[str, str]:
    """The text fields the page shows as sections: all of them, except, for a skill with imported
    guidance (rendered whole), those whose text the guidance or the description already shows."""
    out = {}
    for key in ("symptom", "when_to_apply", "when_not_to_apply", "repair_strategy", "notes", "validated_context"):
        value = getattr(skill, key).strip()
        if value and not (skill.guidance and (value in skill.guidance or value == skill.description.strip())):
            out[key] = value
    return out


@login_required
@require_GET
def skill_list(request):
    form = SkillFilterForm(request.GET or None)
    skills = Skill.objects.all()
    if form.is_bound and form.is_valid():
        skills = filter_skills(skills, **form.cleaned_data)
    elif form.is_bound:
        skills = Skill.objects.none()
    page = Paginator(skills.order_by("name", "-version"), 50).get_page(request.GET.get("page"))
    counts = dict(Skill.objects.values_list("status").annotate(n=Count("id")))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "counts": counts, "query": query.urlencode()}
    return render(request, "skills/list.html", context)


@login_required
@require_GET
def skill_detail(request, pk):
    skill = get_object_or_404(Skill.objects.select_related("parent", "source_task", "source_run", "reviewed_by"), pk=pk)
    validations = [{"validation": v, "rows": evidence_rows(v)} for v in skill.validations.select_related("run")]
    versions = Skill.objects.filter(name=skill.name).select_related("parent").order_by("-version")
    return render(
        request,
        "skills/detail.html",
        {
            "skill": skill,
            "shown": shown_fields(skill),
            "guidance_html": markdown_html(skill.guidance) if skill.guidance else "",
            "sketch_html": code_html(skill.code_sketch) if skill.code_sketch else "",
            "validations": validations,
            "versions": versions,
            "episodes": skill.source_episodes.order_by("seed")[:50],
            "uses": skill.uses.select_related("run", "candidate")[:20],
        },
    )


@login_required
@require_GET
def skill_export(request, pk):
    skill = get_object_or_404(Skill.objects.select_related("parent"), pk=pk)
    response = HttpResponse(export_skill_markdown(skill), content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{skill.name}-v{skill.version}.md"'
    return response


@login_required
@require_GET
def library_export(request):
    response = HttpResponse(exchange.export_library_zip(), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="aspire-skills-{timezone.now():%Y%m%d}.zip"'
    return response


@staff_member_required
def skill_import(request):
    outcomes = None
    if request.method == "POST":
        form = SkillImportForm(request.POST, request.FILES)
        if form.is_valid():
            files = [(f.name, f.read()) for f in form.cleaned_data["files"]]
            outcomes = exchange.import_skill_files(
                files,
                proposed_by=f"upload by {request.user.get_username()}",
                default_kind=form.cleaned_data["default_kind"],
                max_file_bytes=MAX_MARKDOWN_BYTES,
                max_files=MAX_FILES,
            )
    else:
        form = SkillImportForm()
    return render(
        request,
        "skills/import.html",
        {"form": form, "outcomes": outcomes},
        status=400 if request.method == "POST" and not form.is_valid() else 200,
    )
