"""Share links made through the real form (the sharing app's /s/new/), for the tests of every app whose
rows can be shared."""


def make_link(owner_client, kind, target):
    """The path of a new share link to ``target`` of ``kind``, made by the signed-in ``owner_client``."""
    response = owner_client.post(
        "/s/new/", {"kind": kind, "target": target, "label": "for a reviewer", "next": "/"}, follow=True
    )
    shown = [str(m) for m in response.context["messages"]]
    assert len(shown) == 1 and "/s/" in shown[0]
    return shown[0].split("testserver", 1)[1]
