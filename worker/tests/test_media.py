"""Where the engine's files go (worker.robot.media): the filesystem adapter, keyframes written through any
adapter, and an episode on real MuJoCo writing only through the adapter it is handed. No Django."""

import io

import numpy as np
import pytest
from PIL import Image

from worker.engine import EngineSettings, run_episode
from worker.events import MemorySink
from worker.robot.media import LocalMediaStorage, MediaStorage, MediaStore, as_storage, clean_name
from worker.search.core import Proposal
from worker.search.local import LocalWorkbench


class DictStorage:
    """A MediaStorage keeping files in a dict; like an object store that renames on a clash, it returns
    a name other than the one asked for when that name is taken."""

    def __init__(self):
        self.files: dict[str, tuple[bytes, str]] = {}

    def save(self, name, data, content_type):
        if name in self.files:
            name = name.replace(".jpg", "-again.jpg")
        self.files[name] = (bytes(data), content_type)
        return name

    def read(self, name):
        if name not in self.files:
            raise FileNotFoundError(name)
        return self.files[name][0]

    def delete_tree(self, prefix):
        for name in [n for n in self.files if n.startswith(prefix.rstrip("/") + "/")]:
            del self.files[name]


def image(value=120, shape=(24, 32, 3)):
    return np.full(shape, value, dtype=np.uint8)


def test_the_filesystem_adapter_saves_reads_and_deletes_a_tree(tmp_path):
    store = LocalMediaStorage(tmp_path / "media")
    assert store.save("runs/1/episodes/2/a.jpg", b"one", "image/jpeg") == "runs/1/episodes/2/a.jpg"
    store.save("runs/1/episodes/2/attempt-2/b.jpg", b"two", "image/jpeg")
    store.save("runs/1/episodes/3/c.jpg", b"three", "image/jpeg")
    assert store.read("runs/1/episodes/2/a.jpg") == b"one"
    assert (tmp_path / "media/runs/1/episodes/2/attempt-2/b.jpg").read_bytes() == b"two"
    assert not list((tmp_path / "media").rglob("*.part"))  # written whole, then renamed into place

    store.delete_tree("runs/1/episodes/2")
    assert not (tmp_path / "media/runs/1/episodes/2").exists()
    assert store.read("runs/1/episodes/3/c.jpg") == b"three"  # a sibling stays
    store.delete_tree("runs/1/episodes/99")  # nothing there: no error
    with pytest.raises(FileNotFoundError):
        store.read("runs/1/episodes/2/a.jpg")


@pytest.mark.parametrize("name", ["../outside.jpg", "runs/../../outside.jpg", "/etc/passwd", "", "."])
def test_the_filesystem_adapter_keeps_names_inside_its_root(tmp_path, name):
    (tmp_path / "outside.jpg").write_bytes(b"secret")
    store = LocalMediaStorage(tmp_path / "media")
    with pytest.raises(ValueError):
        store.save(name, b"x", "image/jpeg")
    with pytest.raises(FileNotFoundError):
        store.read(name)
    with pytest.raises(ValueError):
        clean_name(name)
    assert (tmp_path / "outside.jpg").read_bytes() == b"secret"


def test_names_are_normalised():
    assert clean_name("runs//1/./episodes/2/a.jpg") == "runs/1/episodes/2/a.jpg"
    assert clean_name("runs\\1\\a.jpg") == "runs/1/a.jpg"


def test_what_the_engine_is_handed_becomes_a_storage(tmp_path):
    assert as_storage(None) is None and as_storage("") is None
    assert isinstance(as_storage(str(tmp_path)), LocalMediaStorage)
    assert isinstance(as_storage(tmp_path), LocalMediaStorage)
    mine = DictStorage()
    assert as_storage(mine) is mine and isinstance(mine, MediaStorage)
    with pytest.raises(TypeError):
        as_storage(42)


def test_keyframes_are_jpegs_written_through_the_adapter_under_the_name_it_gives():
    storage = DictStorage()
    store = MediaStore(storage, "/runs/5/episodes/9/")
    first = store.save(image(10), kind="frame", camera="agentview", label="after", stem="1-get_observation-after")
    second = store.save(image(250), kind="overlay", camera="agentview", label="mask", stem="2 seg/ment?")
    assert first.path == "runs/5/episodes/9/0001-1-get_observation-after.jpg"
    assert second.path == "runs/5/episodes/9/0002-2_seg_ment_.jpg"  # unsafe characters replaced
    data, content_type = storage.files[first.path]
    assert content_type == "image/jpeg" and data[:3] == b"\xff\xd8\xff"
    decoded = np.asarray(Image.open(io.BytesIO(data)))
    assert decoded.shape == (24, 32, 3) and abs(int(decoded.mean()) - 10) <= 3
    assert (first.width, first.height, first.kind, first.camera, first.label) == (32, 24, "frame", "agentview", "after")

    storage.files["runs/6/0001-x.jpg"] = (b"taken", "image/jpeg")
    renamed = MediaStore(storage, "runs/6").save(image(), kind="frame", camera="c", label="l", stem="x")
    assert renamed.path == "runs/6/0001-x-again.jpg"  # the record names the file the storage made


def test_a_path_still_means_the_local_filesystem(tmp_path):
    record = MediaStore(str(tmp_path), "keyframes/abc").save(image(), kind="frame", camera="c", label="l", stem="s")
    assert Image.open(tmp_path / record.path).format == "JPEG"


def test_an_episode_writes_its_keyframes_only_through_the_adapter(lift_spec, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a file written relative to the working directory would show up here
    storage = DictStorage()
    program = 'obs = get_observation(["agentview"])\nmove_to_pose([5.0, 5.0, 5.0])\n'
    sink = MemorySink()
    result = run_episode(lift_spec, program, 4, sink, EngineSettings(wall_seconds=60), storage)
    assert not result.success, result.error
    recorded = [k.path for call in sink.episodes[0]["calls"] for k in call.keyframes] + [
        k.path for k in result.keyframes
    ]
    # The keyframes and the episode's 3D view (worker.robot.scene3d), all in the storage.
    assert recorded and result.scene3d and set(recorded) | {result.scene3d} == set(storage.files)
    assert all(p.startswith("keyframes/") and p.endswith(".jpg") for p in recorded)
    assert all(storage.read(p)[:3] == b"\xff\xd8\xff" for p in recorded)
    assert [k.label for k in result.keyframes] == ["final"]  # the failed episode's last scene
    assert not list(tmp_path.rglob("*"))


def test_the_local_search_driver_keeps_keyframes_on_disk_and_reads_them_back(lift_spec, tmp_path):
    program = 'obs = get_observation(["agentview"])\nmove_to_pose([5.0, 5.0, 5.0])\n'
    bench = LocalWorkbench(lift_spec, media_root=str(tmp_path / "media"))
    (record,) = bench.evaluate([Proposal("unreachable", program)], 0, [4])
    refs = [ref for call in bench.calls(record.episodes[0].ref) for ref in call.keyframes]
    refs.append(record.episodes[0].final_frame)  # the failed episode's final scene
    files = sorted((tmp_path / "media").rglob("*.jpg"))
    assert refs and len(set(refs)) == len(files)  # one short ref ("f1") per file written
    assert {bench.keyframe(ref) for ref in refs} == {f.read_bytes() for f in files}
    (tmp_path / "secret.jpg").write_bytes(b"secret")
    paths = [str(f.relative_to(tmp_path / "media")) for f in files]
    for bad in ("../secret.jpg", str(tmp_path / "secret.jpg"), "keyframes/none.jpg", paths[0], "f999"):
        with pytest.raises(KeyError):
            bench.keyframe(bad)
    with pytest.raises(KeyError):
        LocalWorkbench(lift_spec, keyframes=False).keyframe(refs[0])  # nothing recorded
    other = LocalWorkbench(lift_spec)  # its own temporary directory, holding nothing yet
    with pytest.raises(KeyError):
        other.keyframe(refs[0])
    other.close()
