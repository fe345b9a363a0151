from django import forms

from worker.sim.catalog import parse_seeds

from accounts.services import teams_of

from .models import Run, Task


class LaunchForm(forms.Form):
    task = forms.ModelChoiceField(queryset=Task.objects.all(), empty_label=None)
    program_source = forms.ChoiceField(
        choices=[("starter", "Built-in starter program for the task"), ("pasted", "Paste a program")],
        initial="starter",
        widget=forms.RadioSelect,
    )
    program = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false", "class": "code"}),
        help_text="Python that calls the robot API; numpy is np, math is math. No imports, files or simulator state.",
    )
    seeds = forms.CharField(initial="101-103", help_text='Ranges and lists, e.g. "101-103" or "1,4,9".')
    wall_seconds = forms.FloatField(initial=120, min_value=1, max_value=3600, label="Episode time limit (s)")
    team = forms.ModelChoiceField(queryset=None, required=False, empty_label="Only me",
                                  help_text="Members of the team can watch the run and its traces.")

    DEFAULT_TASK = "robosuite:Lift"

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams_of(user)
        if not self.fields["team"].queryset.exists():
            del self.fields["team"]
        default = Task.objects.filter(key=self.DEFAULT_TASK).first()
        if default is not None:
            self.fields["task"].initial = default.pk

    def clean_seeds(self):
        try:
            return parse_seeds(self.cleaned_data["seeds"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self):
        data = super().clean()
        task = data.get("task")
        if data.get("program_source") == "pasted":
            if not (data.get("program") or "").strip():
                self.add_error("program", "Paste a program, or choose the built-in starter program.")
        elif task is not None and not task.starter_program:
            self.add_error("program_source", f"{task.key} has no built-in starter program; paste one.")
        return data


class ExperimentForm(forms.Form):
    """Launch a search over tasks: fix loop, evolutionary search, zero-shot transfer or library scaling."""

    kind = forms.ChoiceField(choices=[(k, label) for k, label in Run.Kind.choices if k != Run.Kind.PROGRAM],
                             initial=Run.Kind.SEARCH)
    tasks = forms.ModelMultipleChoiceField(queryset=Task.objects.all(), required=False,
                                           widget=forms.SelectMultiple(attrs={"size": 12}),
                                           help_text="One actor searches each task, in parallel on the worker pool.")
    suite = forms.ChoiceField(required=False, help_text="Or every task of a suite (e.g. a LIBERO-Pro suite).")
    agent = forms.ChoiceField(choices=[("offline", "Offline search agent (no key)"), ("claude", "Claude (ANTHROPIC_API_KEY)"),
                                       ("openai", "OpenAI-compatible endpoint")], initial="offline")
    model = forms.CharField(required=False, help_text="Claude model (default: the current Opus) or the endpoint's model name.")
    base_url = forms.URLField(required=False, label="Endpoint base URL", help_text="OpenAI-compatible servers, e.g. http://localhost:8000/v1")
    candidates_per_round = forms.IntegerField(initial=8, min_value=1, max_value=32, label="Candidates per round (K)")
    max_rounds = forms.IntegerField(initial=5, min_value=1, max_value=20, label="Round budget")
    survivors = forms.IntegerField(initial=3, min_value=1, max_value=16, label="Survivors (S)")
    target_success = forms.FloatField(initial=1.0, min_value=0.01, max_value=1.0, label="Target debug success rate")
    plateau_points = forms.FloatField(initial=5.0, min_value=0, max_value=100, label="Plateau (points over two rounds)")
    max_replays = forms.IntegerField(initial=3, min_value=1, max_value=10, label="Fix loop: replays per failed seed")
    library_sizes = forms.CharField(required=False, initial="0,1,2,4",
                                    help_text="Scaling runs: numbers of source tasks whose skills each actor may use.")
    wall_seconds = forms.FloatField(initial=120, min_value=1, max_value=3600, label="Episode time limit (s)")
    team = forms.ModelChoiceField(queryset=None, required=False, empty_label="Only me")

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams_of(user)
        if not self.fields["team"].queryset.exists():
            del self.fields["team"]
        suites = Task.objects.order_by("suite").values_list("suite", flat=True).distinct()
        self.fields["suite"].choices = [("", "—")] + [(s, s) for s in suites]

    def clean_library_sizes(self):
        text = self.cleaned_data["library_sizes"].strip()
        if not text:
            return []
        try:
            return [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise forms.ValidationError("give comma-separated whole numbers, e.g. 0,1,2,4") from None

    def clean(self):
        data = super().clean()
        tasks = list(data.get("tasks") or [])
        if data.get("suite"):
            tasks += [t for t in Task.objects.filter(suite=data["suite"]) if t not in tasks]
        if not tasks and not self.errors:
            self.add_error("tasks", "Choose tasks or a suite.")
        data["task_list"] = tasks
        return data
