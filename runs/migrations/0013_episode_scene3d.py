from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0012_episode_recording"),
    ]

    operations = [
        migrations.AddField(
            model_name="episode",
            name="scene3d",
            field=models.FileField(
                blank=True,
                help_text="The episode's 3D view (worker.robot.scene3d): point clouds, masks' points, grasps, "
                "targets, planned and executed gripper paths, joint state over time; gzip'd JSON in the media "
                "storage",
                max_length=300,
                upload_to="",
            ),
        ),
    ]
