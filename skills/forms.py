from django import forms

from .models import Skill

MAX_MARKDOWN_BYTES = 200_000
MAX_ZIP_BYTES = 5_000_000
MAX_FILES = 200


class SkillFilterForm(forms.Form):
    status = forms.ChoiceField(choices=[("", "any status")] + Skill.Status.choices, required=False)
    kind = forms.ChoiceField(choices=[("", "any kind")] + Skill.Kind.choices, required=False)
    embodiment = forms.CharField(max_length=50, required=False)
    q = forms.CharField(max_length=200, required=False, label="text")


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ".md,.zip"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, (list, tuple)) else [data]
        files = [f for f in files if f]
        if not files:
            raise forms.ValidationError("Choose one or more .md files or a .zip of them.")
        return [super(MultipleFileField, self).clean(f, initial) for f in files]


class SkillImportForm(forms.Form):
    files = MultipleFileField(
        help_text="Markdown skill files (ours, or published ASPIRE files as they are), or a .zip of a skills folder."
    )
    default_kind = forms.ChoiceField(
        choices=[("", "(inferred from the name and title, else blank for the reviewer)")] + Skill.Kind.choices,
        required=False,
        help_text="Kind for files whose front matter has none (published ASPIRE files).",
    )

    def clean_files(self):
        files = self.cleaned_data["files"]
        if len(files) > MAX_FILES:
            raise forms.ValidationError(f"at most {MAX_FILES} files at once")
        for f in files:
            name = f.name.lower()
            if not name.endswith((".md", ".zip")):
                raise forms.ValidationError(f"{f.name}: only .md files and .zip archives of them")
            limit = MAX_ZIP_BYTES if name.endswith(".zip") else MAX_MARKDOWN_BYTES
            if f.size > limit:
                raise forms.ValidationError(f"{f.name} is larger than {limit // 1000} kB")
        return files
