from django import forms

from worker.sim.catalog import parse_seeds

from accounts.services import teams_of

from .models import Task


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
