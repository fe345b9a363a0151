from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0011_agent_turns"),
    ]

    operations = [
        migrations.AddField(
            model_name="episode",
            name="recording",
            field=models.FileField(
                blank=True,
                help_text="The episode's video (the run setting recording): an H.264 MP4 in the media storage",
                max_length=300,
                upload_to="",
            ),
        ),
        migrations.AddField(
            model_name="episode",
            name="recording_index",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="worker.robot.recording index: fps, each frame's sim time, each call's [seq, t_start, "
                "t_end] in video seconds",
            ),
        ),
    ]
