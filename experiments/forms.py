"""The experiment launch form (/experiments/new/)."""

import functools
import json

from django import forms
from django.conf import settings as django_settings

from accounts.services import teams_of
from runs.forms import TaskMultipleChoiceField, default_perception_mode, recording_field
from runs.models import Run, Task
from worker.search.core import SearchSettings
from worker.sim.catalog import SeedError, validate_seeds

from .services import KIND_DEFAULTS, estimate_episodes

#: The search settings each kind of experiment reads from the form; the others are the kind's fixed
#: values (services.KIND_DEFAULTS: a zero-shot run is one candidate, one round) or SearchSettings'
#: defaults, and are hidden on the form (static/js/experiment.js) and not sent.
KIND_FIELDS = {
    Run.Kind.FIX_LOOP: ("max_rounds", "max_replays", "target_success"),
    Run.Kind.SEARCH: ("candidates_per_round", "max_rounds", "survivors", "target_success", "plateau_points"),
    Run.Kind.ZERO_SHOT: (),
    Run.Kind.SCALING: (
        "candidates_per_round",
        "max_rounds",
        "survivors",
        "target_success",
        "plateau_points",
        "library_sizes",
    ),
}
SEARCH_FIELDS = ("candidates_per_round", "max_rounds", "survivors", "target_success", "plateau_points", "max_replays")
#: Fields shown only with some agents.
AGENT_FIELDS = {"model": ("claude", "openai"), "base_url": ("openai",)}
THROUGHPUT_FILE = django_settings.BASE_DIR / "bench" / "results" / "eval_throughput.json"


@functools.cache
def measured_throughput() -> dict | None:
    """Episodes per second measured by bench/eval_throughput (bench/results/eval_throughput.json), on one
    and on two workers, for the form's time estimate; None when the file is missing or unreadable."""
    try:
        doc = json.loads(THROUGHPUT_FILE.read_text())
        return {
            "one_worker": float(doc["one_worker"]["episodes_per_s"]),
            "two_workers": float(doc["two_workers"]["episodes_per_s"]),
            "task": str(doc.get("task", "")),
            "measured_at": str(doc.get("measured_at", ""))[:10],
        }
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _split_or_default(text):
    """A seed override from the experiment form: blank keeps each task's own split."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return validate_seeds(text, limit=django_settings.ASPIRE["MAX_SEEDS_PER_RUN"])
    except SeedError as exc:
        raise forms.ValidationError(str(exc)) from None


class ExperimentForm(forms.Form):
    """Launch a search over tasks: fix loop, evolutionary search, zero-shot transfer or library scaling."""

    kind = forms.ChoiceField(
        choices=[(k, label) for k, label in Run.Kind.choices if k != Run.Kind.PROGRAM], initial=Run.Kind.SEARCH
    )
    tasks = TaskMultipleChoiceField(
        required=False,
        help_text="One actor searches each task, in parallel on the "
        "worker pool. Type in the filter to search the catalog; ctrl-click for several.",
    )
    suite = forms.ChoiceField(required=False, help_text="Or every task of a suite (e.g. a LIBERO-Pro suite).")
    agent = forms.ChoiceField(
        choices=[
            ("offline", "Offline search agent (no key)"),
            ("claude", "Claude (ANTHROPIC_API_KEY)"),
            ("openai", "OpenAI-compatible endpoint"),
            ("mcp", "Your own agent over MCP (Claude Code, Codex, ...)"),
        ],
        initial="offline",
    )
    model = forms.CharField(
        required=False, help_text="Claude model (default: the current Opus) or the endpoint's model name."
    )
    base_url = forms.URLField(
        required=False, label="Endpoint base URL", help_text="OpenAI-compatible servers, e.g. http://localhost:8000/v1"
    )
    candidates_per_round = forms.IntegerField(initial=8, min_value=1, max_value=32, label="Candidates per round (K)")
    max_rounds = forms.IntegerField(initial=5, min_value=1, max_value=20, label="Round budget")
    survivors = forms.IntegerField(initial=3, min_value=1, max_value=16, label="Survivors (S)")
    target_success = forms.FloatField(initial=1.0, min_value=0.01, max_value=1.0, label="Target debug success rate")
    plateau_points = forms.FloatField(initial=5.0, min_value=0, max_value=100, label="Plateau (points over two rounds)")
    max_replays = forms.IntegerField(initial=3, min_value=1, max_value=10, label="Fix loop: replays per failed seed")
    library_sizes = forms.CharField(
        required=False,
        initial="0,1,2,4",
        help_text="Scaling runs: numbers of source tasks whose skills each actor may use.",
    )
    debug_seeds = forms.CharField(
        required=False, max_length=5000, help_text="Blank: each task's own split (robosuite 101-125, LIBERO 51-65)."
    )
    heldout_seeds = forms.CharField(
        required=False,
        max_length=5000,
        label="Held-out seeds",
        help_text="Blank: each task's own split (robosuite 1-100, LIBERO 1-50).",
    )
    wall_seconds = forms.FloatField(initial=120, min_value=1, max_value=300, label="Episode time limit (s)")
    perception_mode = forms.ChoiceField(
        choices=Run.PerceptionMode.choices,
        required=False,  # blank: ASPIRE["PERCEPTION_MODE"] (realistic unless the site says otherwise)
        initial=default_perception_mode,
        label="Perception",
        help_text="Realistic: segmentation with a model's errors and noisy depth, as a real robot's cameras give. "
        "Oracle: the simulator's exact masks, object names and depth (an upper bound, not comparable).",
    )
    recording = recording_field()
    record = forms.BooleanField(
        required=False,
        initial=False,
        label="Record the agent's conversation",
        help_text="Keep every request and response of a Claude or OpenAI-compatible agent in full (API keys "
        "stripped), to replay, download and share from the actor's conversation page. Off: a short log of "
        "each turn only.",
    )
    team = forms.ModelChoiceField(queryset=None, required=False, empty_label="Only me")

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams_of(user)
        if not self.fields["team"].queryset.exists():
            del self.fields["team"]
        self.fields["tasks"].group()
        self.fields["tasks"].widget.attrs["size"] = 14
        suites = Task.objects.order_by("suite").values_list("suite", flat=True).distinct()
        self.fields["suite"].choices = [("", "—")] + [(s, s) for s in suites]
        # Which kinds (agents) show a field: static/js/experiment.js hides the rest.
        for kind, names in KIND_FIELDS.items():
            for name in names:
                attrs = self.fields[name].widget.attrs
                attrs["data-kinds"] = " ".join(filter(None, [attrs.get("data-kinds"), kind]))
        for name in SEARCH_FIELDS + ("library_sizes",):
            self.fields[name].widget.attrs.setdefault("data-kinds", "")
            self.fields[name].required = False  # blank: the kind's own value or SearchSettings' default
        for name, agents in AGENT_FIELDS.items():
            self.fields[name].widget.attrs["data-agents"] = " ".join(agents)
        self.fields["kind"].widget.attrs["data-defaults"] = json.dumps(
            {kind: {k: v for k, v in values.items() if k != "mode"} for kind, values in KIND_DEFAULTS.items()}
        )
        self.fields["kind"].widget.attrs["data-modes"] = json.dumps(
            {kind: values.get("mode", "search") for kind, values in KIND_DEFAULTS.items()}
        )

    def throughput(self) -> dict | None:
        return measured_throughput()

    def search_overrides(self) -> dict:
        """The search settings the chosen kind takes from the form (KIND_FIELDS); the rest stay the kind's
        own (KIND_DEFAULTS) or SearchSettings' defaults. Call after is_valid()."""
        data = self.cleaned_data
        return {
            k: data[k] for k in KIND_FIELDS.get(data.get("kind"), SEARCH_FIELDS) if k in SEARCH_FIELDS and k in data
        }

    def clean_debug_seeds(self):
        return _split_or_default(self.cleaned_data["debug_seeds"])

    def clean_heldout_seeds(self):
        return _split_or_default(self.cleaned_data["heldout_seeds"])

    def clean_library_sizes(self):
        text = self.cleaned_data["library_sizes"].strip()
        if not text:
            return []
        most = django_settings.ASPIRE["MAX_TASKS_PER_EXPERIMENT"]
        values = [v.strip() for v in text.split(",") if v.strip()]
        if not all(v.isascii() and v.isdecimal() and len(v) <= 6 for v in values) or len(values) > 50:
            raise forms.ValidationError("give comma-separated whole numbers, e.g. 0,1,2,4")
        sizes = [int(v) for v in values]
        if any(n > most for n in sizes):
            raise forms.ValidationError(f"library sizes are whole numbers from 0 to {most}")
        return sizes

    def clean(self):
        data = super().clean()
        # A field the chosen kind does not use is hidden and ignored: its errors are not the user's problem.
        used = KIND_FIELDS.get(data.get("kind"), SEARCH_FIELDS)
        for name in (*SEARCH_FIELDS, "library_sizes"):
            if name not in used and name in self._errors:
                del self._errors[name]
        tasks = list(data.get("tasks") or [])
        if data.get("suite"):
            tasks += [t for t in Task.objects.filter(suite=data["suite"]) if t not in tasks]
        if not tasks and not self.errors:
            self.add_error("tasks", "Choose tasks or a suite.")
        data["task_list"] = tasks
        return data

    def episode_estimate(self) -> int | None:
        """experiments.services.estimate_episodes for what the form holds (the bound shown beside the
        launch button; create_experiment refuses one over ASPIRE["MAX_EXPERIMENT_EPISODES"]), or None
        while a field it needs is missing or invalid. Call after is_valid()."""
        data = getattr(self, "cleaned_data", None) or {}
        needed = ("kind", "debug_seeds", "heldout_seeds")
        if not data.get("task_list") or any(name not in data for name in needed):
            return None
        kind = data["kind"]
        if any(name not in data for name in KIND_FIELDS.get(kind, ()) if name in SEARCH_FIELDS):
            return None
        search = {**SearchSettings().as_dict(), **KIND_DEFAULTS.get(kind, {}), **self.search_overrides()}
        return estimate_episodes(
            data["task_list"],
            search["candidates_per_round"],
            search["max_rounds"],
            data["debug_seeds"],
            data["heldout_seeds"],
            mode=KIND_DEFAULTS.get(kind, {}).get("mode", "search"),
            library_sizes=data.get("library_sizes") if kind == Run.Kind.SCALING else None,
        )
