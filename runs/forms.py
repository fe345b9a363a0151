from django import forms
from django.conf import settings as django_settings
from django.urls import reverse

from accounts.services import teams_of
from worker.sim.catalog import SeedError, format_seeds, validate_seeds

from .models import Run, Task
from .services import LaunchError, check_program


class _TaskOptionData:
    """Options that carry the task's instruction, cameras, arms and seed split as data-* attributes, so
    the launch page can filter the catalog and describe the chosen task without another request."""

    option_data: dict = {}

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        option["attrs"].update(self.option_data.get(str(value), {}))
        return option


class TaskSelect(_TaskOptionData, forms.Select):
    pass


class TaskSelectMultiple(_TaskOptionData, forms.SelectMultiple):
    pass


class _GroupedTasks:
    """Catalog tasks chosen by key, grouped by suite (297 tasks are too many for one flat list)."""

    def label_from_instance(self, task):
        instruction = task.instruction if len(task.instruction) <= 90 else task.instruction[:87] + "..."
        return f"{task.name} — {instruction}"

    def group(self):
        """Set grouped choices and per-option data on the widget; call once per form instance."""
        groups, data = {}, {}
        for task in self.queryset.order_by("benchmark", "suite", "name"):
            groups.setdefault(f"{task.benchmark} · {task.suite}", []).append((task.key, self.label_from_instance(task)))
            data[task.key] = {
                "data-instruction": task.instruction,
                "data-suite": task.suite,
                "data-cameras": ", ".join(task.cameras),
                "data-arms": str(task.arms),
                "data-debug-seeds": format_seeds(task.debug_seeds),
                "data-heldout-seeds": format_seeds(task.heldout_seeds),
                "data-starter": "1" if task.starter_program else "",
            }
        self.widget.choices = list(groups.items())
        self.widget.option_data = data


class TaskChoiceField(_GroupedTasks, forms.ModelChoiceField):
    widget = TaskSelect

    def __init__(self, **kwargs):
        super().__init__(queryset=Task.objects.all(), empty_label=None, to_field_name="key", **kwargs)


class TaskMultipleChoiceField(_GroupedTasks, forms.ModelMultipleChoiceField):
    widget = TaskSelectMultiple

    def __init__(self, **kwargs):
        super().__init__(queryset=Task.objects.all(), to_field_name="key", **kwargs)


def default_perception_mode() -> str:
    """The site's default perception mode (``ASPIRE["PERCEPTION_MODE"]``), preselected on launch forms."""
    return django_settings.ASPIRE.get("PERCEPTION_MODE", "realistic")


def engine_overrides(cleaned_data: dict) -> dict:
    """The engine-setting overrides (runs.services.engine_settings) of a launch form's choices: time limit,
    perception mode and API profile (none when left blank) and episode recording."""
    out = {"wall_seconds": cleaned_data["wall_seconds"]}
    if cleaned_data.get("perception_mode"):
        out["perception_mode"] = cleaned_data["perception_mode"]
    if cleaned_data.get("api_profile"):
        out["api_profile"] = cleaned_data["api_profile"]
    if "recording" in cleaned_data:
        out["recording"] = bool(cleaned_data["recording"])
    return out


def recording_field() -> forms.BooleanField:
    """The launch forms' "record a video of each episode" box: on by default from the browser."""
    return forms.BooleanField(
        required=False,
        initial=True,
        label="Record a video of each episode",
        help_text="The keyframe camera at 2 frames per simulated second during motions, plus a frame before and "
        "after every motion and gripper call, as an MP4 the trace page plays in sync with the calls "
        "(bench/results/trace_overhead.json measures its cost).",
    )


class LaunchForm(forms.Form):
    task = TaskChoiceField(help_text="Type in the filter to search the catalog by suite, task name or instruction.")
    program_source = forms.ChoiceField(
        choices=[("starter", "Built-in starter program for the task"), ("pasted", "Paste a program")],
        initial="starter",
        widget=forms.RadioSelect,
    )
    program = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false", "class": "code"}),
        help_text="Python that calls the robot API (ours, or the published CaP-X / ASPIRE reduced API's); np, "
        "numpy and math are predefined; numpy, math, time and scipy.spatial.transform may be imported. No files "
        "or simulator state. Shows the chosen task's starter program; edit it to launch your own. A program "
        "that fails the sandbox policy is refused before launch, naming the line.",
    )
    seeds = forms.CharField(
        initial="101-103",
        max_length=5000,
        help_text='Ranges and lists, e.g. "101-103" or "1,4,9"; "debug" or "heldout" for the task\'s whole split.',
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
    api_profile = forms.ChoiceField(
        choices=[
            ("auto", "Auto: from what the program calls"),
            ("native", "Native (this API's forms)"),
            ("published", "Published CaP-X / ASPIRE reduced API"),
        ],
        initial="auto",
        required=False,
        label="API profile",
        help_text="Which calling conventions the program runs under where the two APIs differ (see the API "
        "reference); auto picks the published one when the program uses a published-only function or form.",
    )
    recording = recording_field()
    team = forms.ModelChoiceField(
        queryset=None,
        required=False,
        empty_label="Only me",
        help_text="Members of the team can watch the run and its traces.",
    )

    DEFAULT_TASK = "robosuite:Lift"

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams_of(user)
        if not self.fields["team"].queryset.exists():
            del self.fields["team"]
        self.fields["task"].group()
        wanted = self.initial.get("task") or self.DEFAULT_TASK
        default = Task.objects.filter(key=wanted).first() or Task.objects.filter(key=self.DEFAULT_TASK).first()
        if default is not None:
            self.initial["task"] = default.key
            if "seeds" not in self.initial:
                self.initial["seeds"] = format_seeds(default.debug_seeds[:3])
            # The starter program is shown (and editable) without JS too; launch.js swaps it per task.
            self.initial.setdefault("program", default.starter_program)
        self.fields["program"].widget.attrs.update(
            {
                "data-starter-url": reverse("runs:editor-starter"),
                "data-api-url": reverse("runs:editor-api"),
                "data-check-url": reverse("runs:editor-check"),
            }
        )

    @staticmethod
    def _starters() -> set[str]:
        rows = Task.objects.exclude(starter_program="").values_list("starter_program", flat=True).distinct()
        return {text.strip() for text in rows}

    def clean_program(self):
        # Browsers submit a textarea's lines with CRLF endings (HTML's form encoding); programs are kept
        # with LF, so the starter program sent back unchanged is recognised as the starter.
        return (self.cleaned_data.get("program") or "").replace("\r\n", "\n")

    def clean(self):
        data = super().clean()
        task = data.get("task")
        text = (data.get("seeds") or "").strip().lower().replace("-", "").replace(" ", "")
        if text in ("debug", "heldout") and task is not None:
            data["seeds"] = list(task.debug_seeds if text == "debug" else task.heldout_seeds)
        elif "seeds" in data:
            try:
                data["seeds"] = validate_seeds(data["seeds"], limit=django_settings.ASPIRE["MAX_SEEDS_PER_RUN"])
            except SeedError as exc:
                self.add_error("seeds", str(exc))
        program = (data.get("program") or "").strip()
        if data.get("program_source") == "starter" and program and program not in self._starters():
            # The box shows the starter program; text that is no task's starter was edited there (a plain
            # textarea without JS cannot flip the radio), so it is launched as written.
            data["program_source"] = "pasted"
        if data.get("program_source") == "pasted":
            if not (data.get("program") or "").strip():
                self.add_error("program", "Paste a program, or choose the built-in starter program.")
            else:
                try:  # the sandbox's own policy check, so a refused program is a form error, not a failed run
                    check_program(data["program"])
                except LaunchError as exc:
                    self.add_error("program", str(exc))
        elif task is not None and not task.starter_program:
            self.add_error("program_source", f"{task.key} has no built-in starter program; paste one.")
        return data
