"""vidsift batch: manifests, resumable JSONL, error isolation, local engine (in-process and
process pool) and the CLI, with a small deterministic answerer standing in for a model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vidsift.batch import Job
from vidsift.batch import ResultsFile, WorkerSpec, build_engine, read_manifest, run_batch
from vidsift.errors import ConfigError

ANSWERER = "test_batch:echo_answerer"


def echo_answerer(spec: WorkerSpec):
    """Answers from the video file's bytes: deterministic, fails on missing files."""
    import hashlib

    def answer(video: str, question: str, **overrides):
        data = Path(video).read_bytes()
        digest = hashlib.sha1(data + question.encode()).hexdigest()[:8]
        return {"answer": f"{digest}:{overrides.get('budget', spec.budget)}", "plan": None,
                "stats": {"bytes": len(data)}}

    return answer


@pytest.fixture()
def videos(tmp_path: Path) -> Path:
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in ("a.mp4", "b.mkv", "c.webm"):
        (folder / name).write_bytes(name.encode() * 10)
    (folder / "notes.txt").write_text("not a video")
    return folder


def test_folder_manifest_needs_question_and_lists_videos(videos: Path) -> None:
    with pytest.raises(ConfigError, match="--question"):
        read_manifest(videos)
    jobs = read_manifest(videos, question="what happens?")
    assert [j.id for j in jobs] == ["a.mp4", "b.mkv", "c.webm"]
    assert all(Path(j.video).is_absolute() and j.question == "what happens?" for j in jobs)


def test_jsonl_and_csv_manifests(videos: Path, tmp_path: Path) -> None:
    jl = tmp_path / "m.jsonl"
    jl.write_text('{"video": "clips/a.mp4", "question": "q1", "id": "x", "lang": "en"}\n\n'
                  '{"video": "clips/b.mkv", "question": "q2"}\n')
    jobs = read_manifest(jl)
    assert [j.id for j in jobs] == ["x", "b.mkv#3"]
    assert jobs[0].video == str(videos / "a.mp4") and jobs[0].meta == {"lang": "en"}
    cs = tmp_path / "m.csv"
    cs.write_text("video,question,topic\nclips/a.mp4,q1,cats\nclips/c.webm,,dogs\n")
    with pytest.raises(ConfigError, match="line 3: missing 'question'"):
        read_manifest(cs)
    jobs = read_manifest(cs, question="default q")
    assert [j.question for j in jobs] == ["q1", "default q"] and jobs[1].meta == {"topic": "dogs"}


@pytest.mark.parametrize("text, reason", [
    ('{"video": "a.mp4", "question": "q", "id": 1}\n{"video": "b.mp4", "question": "q", "id": 1}\n', "duplicate job id"),
    ("not json\n", "line 1: not JSON"),
    ('{"question": "q"}\n', "missing 'video'"),
])
def test_bad_manifests_say_why(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    with pytest.raises(ConfigError, match=reason) as err:
        read_manifest(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_results_file_skips_torn_lines_and_retries_errors(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"id": "a", "error": null}\n{"id": "b", "error": "boom"}\n{"id": "c", "err')
    res = ResultsFile(path)
    assert res.done_ids() == {"a"} and res.done_ids(retry_errors=False) == {"a", "b"}
    res.append({"id": "b", "error": None})
    assert res.done_ids() == {"a", "b"}
    assert [r["id"] for r in res.records()] == ["a", "b", "b"]


def test_run_batch_records_failures_and_resumes(videos: Path, tmp_path: Path) -> None:
    jobs = read_manifest(videos, question="q")
    jobs.append(Job(id="missing", video=str(videos / "nope.mp4"), question="q"))
    spec = WorkerSpec(model="", answerer=ANSWERER, budget="25%")
    out = tmp_path / "answers.jsonl"
    summary = run_batch(jobs, spec, engine=build_engine("local"), out=out, progress=False)
    assert (summary.ok, summary.failed, summary.skipped) == (3, 1, 0)
    records = ResultsFile(out).latest()
    assert records["missing"]["error"].startswith("FileNotFoundError") and records["missing"]["answer"] is None
    assert records["a.mp4"]["answer"].endswith(":25%") and records["a.mp4"]["stats"] == {"bytes": 50}
    # resume: the three answered jobs are skipped, the failed one is retried (and fails again)
    again = run_batch(jobs, spec, engine=build_engine("local"), out=out, progress=False)
    assert (again.ok, again.failed, again.skipped) == (0, 1, 3)


def test_process_pool_gives_the_same_answers(videos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    jobs = read_manifest(videos, question="q")
    spec = WorkerSpec(model="", answerer=ANSWERER)
    one = {r["id"]: r["answer"] for r in build_engine("local").map(spec, jobs)}
    two = {r["id"]: r for r in build_engine("local", workers=2).map(spec, jobs)}
    assert {k: r["answer"] for k, r in two.items()} == one
    assert all(r["error"] is None for r in two.values())


def test_engine_choice_is_validated() -> None:
    with pytest.raises(ConfigError, match="choose one of: local, ray"):
        build_engine("spark")
    with pytest.raises(ConfigError, match="only the ray engine"):
        build_engine("local", address="auto")


def test_cli_batch_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from vidsift.cli.app import run as cli

    assert cli(["batch", str(tmp_path / "none.jsonl"), "--model", "random:tiny-qwen2.5-vl"]) == 1
    assert capsys.readouterr().err == f"error: {tmp_path / 'none.jsonl'}: no such file or folder\n"
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "a.mp4").write_bytes(b"x")
    assert cli(["batch", str(tmp_path / "clips"), "--model", "random:tiny-qwen2.5-vl", "--engine", "spark"]) == 1
    assert "spark: unknown engine; choose one of: local, ray" in capsys.readouterr().err


@pytest.mark.parametrize("video, reason", [
    ("/etc/passwd", "/etc/passwd: outside"),
    ("../x.mp4", "../x.mp4: outside"),
    ("clips/../../x.mp4", "clips/../../x.mp4: outside"),
    ("http://127.0.0.1:9/x.mp4", "http://127.0.0.1:9/x.mp4: a URL; pass --allow-urls"),
    ("file:///etc/passwd", "file:///etc/passwd: a URL"),
    ("concat:a.mp4|b.mp4", "concat:a.mp4|b.mp4: a URL"),
])
def test_manifest_rows_stay_inside_their_folder(videos: Path, tmp_path: Path, video: str, reason: str) -> None:
    """A row naming a path outside the manifest's folder or a URL is refused with one line, unless
    allowed (--allow-outside / --allow-urls)."""
    import json

    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps({"video": "clips/a.mp4", "question": "q"}) + "\n"
                    + json.dumps({"video": video, "question": "q"}) + "\n")
    with pytest.raises(ConfigError) as err:
        read_manifest(path)
    text = str(err.value)
    assert text.startswith(f"{path}: line 2: {reason}") and "\n" not in text, text
    url = reason.endswith("a URL; pass --allow-urls") or ": a URL" in reason
    allowed = read_manifest(path, allow_urls=True) if url else read_manifest(path, allow_outside=True)
    assert allowed[1].video == (video if url or video.startswith("/") else os.path.normpath(tmp_path / video))
    with pytest.raises(ConfigError):  # one permission does not grant the other
        read_manifest(path, allow_outside=True) if url else read_manifest(path, allow_urls=True)


def test_manifest_roots_widen_where_videos_may_be(videos: Path, tmp_path: Path) -> None:
    path = tmp_path / "sub" / "m.jsonl"
    path.parent.mkdir()
    path.write_text('{"video": "../clips/a.mp4", "question": "q"}\n')
    with pytest.raises(ConfigError, match="outside"):
        read_manifest(path)
    assert read_manifest(path, roots=[videos])[0].video == str(videos / "a.mp4")


@pytest.mark.parametrize("overrides, reason", [
    ({"scorer": "clip:/tmp/evil"}, "a row's scorer may only be uniform or mllm"),
    ({"scorer": "text:someone/model"}, "a row's scorer may only be"),
    ({"prune": "fastv"}, "a row may only override plan settings"),
    ({"model": "x"}, r"a row may only override plan settings \(.*\), not model$"),
    ("budget=10", "'overrides' must be an object"),
])
def test_manifest_row_overrides_are_plan_settings_only(tmp_path: Path, overrides, reason: str) -> None:
    import json

    (tmp_path / "a.mp4").write_bytes(b"x")
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps({"video": "a.mp4", "question": "q", "overrides": overrides}) + "\n")
    with pytest.raises(ConfigError, match=f"line 1: {reason}"):
        read_manifest(path)
    path.write_text(json.dumps({"video": "a.mp4", "question": "q", "overrides": {"budget": "25%", "scorer": "mllm", "selector": "topk"}}) + "\n")
    assert read_manifest(path)[0].overrides == {"budget": "25%", "scorer": "mllm", "selector": "topk"}


def test_cli_batch_refuses_outside_rows_unless_allowed(videos: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from vidsift.cli.app import run as cli

    path = tmp_path / "m.jsonl"
    path.write_text('{"video": "/etc/passwd", "question": "q"}\n')
    out = tmp_path / "answers.jsonl"
    assert cli(["batch", str(path), "--model", "x", "--out", str(out), "--no-progress"]) == 1
    assert capsys.readouterr().err == (f"error: {path}: line 1: /etc/passwd: outside {tmp_path}; "
                                       "pass --allow-outside to read it\n")
    assert not out.exists()


def test_ray_engine_keeps_the_working_directory_off_the_workers_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray puts the driver's current directory on every worker's sys.path; vidsift starts a local
    cluster from an empty private directory and leaves the working directory out of PYTHONPATH.
    Relative videos and model folders are made absolute first (a stand-in ray module records it)."""
    import sys
    import types

    from vidsift.batch.ray_engine import RayEngine

    seen: dict = {}

    class Ref:  # hashable, as Ray's object refs are
        def __init__(self, value):
            self.value = value

    class Actor:
        def __init__(self, spec):
            self.spec = spec

        def run(self, job):
            return {"id": job["id"], "video": job["video"], "model": self.spec.model}

    def remote(**options):
        def wrap(cls):
            class Remote:
                @staticmethod
                def remote(spec):
                    actor = Actor(spec)
                    actor.run = types.SimpleNamespace(remote=lambda job, a=actor: Ref(Actor.run(a, job)))
                    return actor
            return Remote
        return wrap

    def init(**kwargs):
        seen.update(cwd=os.getcwd(), listing=os.listdir("."), pythonpath=os.environ.get("PYTHONPATH", "").split(os.pathsep))

    fake = types.SimpleNamespace(
        is_initialized=lambda: False, init=init, shutdown=lambda: seen.update(shutdown=True),
        cluster_resources=lambda: {"CPU": 1}, remote=remote, kill=lambda actor: None,
        wait=lambda refs, num_returns: (refs[:1], refs[1:]), get=lambda ref: ref.value,
        exceptions=types.SimpleNamespace(RayError=RuntimeError))
    monkeypatch.setitem(sys.modules, "ray", fake)
    work = tmp_path / "work"
    (work / "ckpt").mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.syspath_prepend(str(work))
    spec = WorkerSpec(model="ckpt", answerer=ANSWERER)
    out = list(RayEngine(workers=1).map(spec, [Job(id="a", video="clips/a.mp4", question="q")]))
    assert seen["cwd"] != str(work) and seen["listing"] == [] and os.path.basename(seen["cwd"]).startswith("vidsift-ray-")
    assert str(work) not in seen["pythonpath"] and "" not in seen["pythonpath"]
    assert os.getcwd() == str(work) and seen["shutdown"] and not os.path.exists(seen["cwd"])
    assert out == [{"id": "a", "video": str(work / "clips" / "a.mp4"), "model": str(work / "ckpt")}]


def test_resume_cuts_a_torn_last_line(videos: Path, tmp_path: Path) -> None:
    """A run killed mid-write leaves a torn last line: a resumed batch cuts it, so every line of the
    file is JSON again (it used to be skipped on resume but left in the file)."""
    import json

    jobs = read_manifest(videos, question="q")
    spec = WorkerSpec(model="", answerer=ANSWERER)
    out = tmp_path / "answers.jsonl"
    run_batch(jobs[:2], spec, engine=build_engine("local"), out=out, progress=False)
    whole = out.read_bytes()
    out.write_bytes(whole + b'{"id": "c.webm", "answer": "cut sh')  # killed while writing the third record
    again = run_batch(jobs, spec, engine=build_engine("local"), out=out, progress=False)
    assert (again.ok, again.skipped) == (1, 2)
    lines = out.read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["a.mp4", "b.mkv", "c.webm"]  # every line parses
    assert out.read_bytes().startswith(whole)
    # nothing to answer: the repair still happens on resume; a whole record missing only its newline is kept
    out.write_bytes(out.read_bytes() + b'{"id": "c.webm", "err')
    run_batch(jobs, spec, engine=build_engine("local"), out=out, progress=False)
    assert out.read_text().endswith("\n") and len(out.read_text().splitlines()) == 3
    out.write_bytes(out.read_bytes() + b'{"id": "x", "error": null}')
    assert ResultsFile(out).repair() == 0 and out.read_text().endswith('{"id": "x", "error": null}\n')


def test_symlinks_in_the_manifest_folder_must_lead_inside(videos: Path, tmp_path: Path) -> None:
    """Links are resolved and the inside-the-folder rule applies to where they lead: a linked file,
    a linked folder and a link to /etc/passwd in folder mode are refused without --allow-outside
    (they were followed); a link to a video inside the folder still works."""
    import json

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.mp4").write_bytes(b"secret" * 10)
    (videos / "inner.mp4").symlink_to(videos / "a.mp4")  # inside: fine
    (videos / "linked").symlink_to(outside, target_is_directory=True)
    (videos / "escape.mp4").symlink_to(outside / "secret.mp4")
    manifest = videos / "m.jsonl"
    for row in ("escape.mp4", "linked/secret.mp4"):
        manifest.write_text(json.dumps({"video": "inner.mp4", "question": "q"}) + "\n"
                            + json.dumps({"video": row, "question": "q"}) + "\n")
        with pytest.raises(ConfigError) as err:
            read_manifest(manifest)
        assert str(err.value) == (f"{manifest}: line 2: {row}: a symlink to {outside / 'secret.mp4'}, outside {videos}; "
                                  "pass --allow-outside to read it")
        assert read_manifest(manifest, allow_outside=True)[1].video == str(videos / row)
    manifest.unlink()
    (videos / "escape.mp4").unlink()
    (videos / "passwd.mp4").symlink_to("/etc/passwd")
    with pytest.raises(ConfigError, match="passwd.mp4: a symlink to /etc/passwd, outside"):
        read_manifest(videos, question="q")
    assert {j.id: j.video for j in read_manifest(videos, question="q", allow_outside=True)}["passwd.mp4"] == "/etc/passwd"
    (videos / "passwd.mp4").unlink()
    assert [j.id for j in read_manifest(videos, question="q")] == ["a.mp4", "b.mkv", "c.webm", "inner.mp4"]
    assert "symlinks are resolved" in _help("batch")


def _help(command: str) -> str:
    from typer.testing import CliRunner

    from vidsift.cli.app import app

    return " ".join(CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "300"}).output.split())
