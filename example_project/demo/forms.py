from django import forms

from django_smsgw.models import Channel


class SendForm(forms.Form):
    number = forms.CharField(help_text="Any way a person writes it: 0812-3456-7890, +62 812…")
    message = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=480)
    channel = forms.ChoiceField(choices=Channel.choices)


class BulkForm(forms.Form):
    rows = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="One message per line: number, text",
    )
    channel = forms.ChoiceField(choices=Channel.choices)

    def items(self) -> list[tuple[str, str]]:
        lines = [line.strip() for line in self.cleaned_data["rows"].splitlines() if line.strip()]
        return [tuple(part.strip() for part in (line.split(",", 1) + [""])[:2]) for line in lines]
